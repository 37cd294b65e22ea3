/*
 * Command-line and config words (cli.h): option values and HOST:PORT.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <tether/alloc.h>
#include <tether/err.h>
#include <tether/num.h>

#include "session/cli.h"

const char *agent_opt_value(int argc, char **argv, int *i, const char *name,
			    bool *missing)
{
	size_t n = strlen(name);
	const char *arg = argv[*i];

	if (strncmp(arg, name, n) != 0)
		return NULL;
	if (arg[n] == '=')
		return arg + n + 1;
	if (arg[n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		*missing = true;
		return NULL;
	}
	return argv[++*i];
}

int agent_port_parse(const char *s, uint16_t *port)
{
	uint64_t v;

	if (tether_num_parse_u64(s, 1, UINT16_MAX, &v) != 0)
		return TETHER_ERR_FORMAT;
	*port = (uint16_t)v;
	return 0;
}

/*
 * Letters, digits and "._-" (names), ':' (IPv6), '%' (an IPv6 scope):
 * nothing a terminal, a log or the resolver could take for more.
 */
static bool host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ||
	       c == ':' || c == '%';
}

int agent_target_parse(const char *spec, uint16_t default_port,
		       struct agent_target *t, const char **why)
{
	const char *h = spec, *hend, *port = NULL;
	size_t hl, i;

	memset(t, 0, sizeof(*t));
	*why = "want HOST:PORT";
	if (spec[0] == '[') {
		h = spec + 1;
		hend = strchr(h, ']');
		if (hend == NULL || (hend[1] != ':' && hend[1] != '\0'))
			return TETHER_ERR_FORMAT;
		if (hend[1] == ':')
			port = hend + 2;
	} else {
		hend = strchr(spec, ':');
		if (hend != NULL && strchr(hend + 1, ':') != NULL) {
			*why = "write an IPv6 address as [ADDRESS]:PORT";
			return TETHER_ERR_FORMAT;
		}
		if (hend != NULL)
			port = hend + 1;
		else
			hend = spec + strlen(spec);
	}
	if (port == NULL && default_port == 0)
		return TETHER_ERR_FORMAT;
	hl = (size_t)(hend - h);
	if (hl == 0 || hl >= sizeof(t->host))
		return TETHER_ERR_FORMAT;
	for (i = 0; i < hl; i++) {
		if (!host_char(h[i])) {
			*why = "invalid host name";
			return TETHER_ERR_FORMAT;
		}
	}
	memcpy(t->host, h, hl);
	t->port = default_port;
	if (port != NULL && agent_port_parse(port, &t->port) != 0) {
		memset(t, 0, sizeof(*t));
		*why = "invalid port (want 1 to 65535)";
		return TETHER_ERR_FORMAT;
	}
	*why = NULL;
	return 0;
}

void agent_target_name(const char *host, uint16_t port, char *out,
		       size_t outlen)
{
	if (strchr(host, ':') != NULL)
		snprintf(out, outlen, "[%s]:%u", host, port);
	else
		snprintf(out, outlen, "%s:%u", host, port);
}

bool agent_targets_have(const struct agent_targets *ts, const char *host,
			uint16_t port)
{
	size_t i;

	for (i = 0; i < ts->n; i++)
		if (ts->t[i].port == port &&
		    strcasecmp(ts->t[i].host, host) == 0)
			return true;
	return false;
}

int agent_targets_add(struct agent_targets *ts, const struct agent_target *t)
{
	struct agent_target *grown;

	if (agent_targets_have(ts, t->host, t->port))
		return 0;
	grown = tether_reallocarray(ts->t, ts->n + 1, sizeof(*ts->t));
	if (grown == NULL)
		return TETHER_ERR_NOMEM;
	ts->t = grown;
	ts->t[ts->n++] = *t;
	return 0;
}

void agent_targets_free(struct agent_targets *ts)
{
	tether_free(ts->t);
	ts->t = NULL;
	ts->n = 0;
}
