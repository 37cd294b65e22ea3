/*
 * Small helpers shared by the console's commands: error lines, printing
 * text that came from the network without letting it drive the terminal,
 * argument parsers (HOST:PORT, T-N, durations) and JSON accessors.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/proto.h>

#include "console.h"

void console_error(const char *fmt, ...)
{
	va_list ap;

	fputs("tether: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	/* While `tether shell` has the terminal raw, "\n" alone stairs. */
	fputs(console_eol(), stderr);
}

static bool is_control(unsigned char ch)
{
	return ch < 0x20 || ch == 0x7f;
}

/*
 * Ticket titles, customer names and relay messages are typed by other
 * people: an escape sequence in them must not reach the terminal as one.
 */
void console_print_clean(FILE *fp, const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		fputc(is_control((unsigned char)*s) ? '?' : *s, fp);
}

/* Columns the text takes: UTF-8 continuation bytes take none. */
size_t console_clean_width(const char *s)
{
	size_t n = 0;

	for (; s != NULL && *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/* Parses a decimal in [min, max] with nothing else around it. */
static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/*
 * "HOST:PORT", "[V6ADDR]:PORT", or HOST alone for the default port.  norm
 * gets the spelling used as the key in known_relays and config.json.
 */
int console_parse_hostport(const char *arg, char *host, size_t hostlen,
			   int *port, char *norm, size_t normlen)
{
	const char *colon, *hstart, *hend;
	long p = TETHER_DEFAULT_PORT;
	bool v6 = false;
	size_t hlen;
	int n;

	if (arg == NULL || *arg == '\0')
		return -1;
	if (arg[0] == '[') {
		hstart = arg + 1;
		hend = strchr(hstart, ']');
		if (hend == NULL)
			return -1;
		colon = hend[1] == ':' ? hend + 1 : NULL;
		if (hend[1] != '\0' && colon == NULL)
			return -1;
		v6 = true;
	} else {
		hstart = arg;
		colon = strrchr(arg, ':');
		/* A bare IPv6 address has several colons and no port. */
		if (colon != NULL && strchr(arg, ':') != colon)
			return -1;
		hend = colon != NULL ? colon : arg + strlen(arg);
	}
	hlen = (size_t)(hend - hstart);
	if (hlen == 0 || hlen >= hostlen)
		return -1;
	if (colon != NULL && parse_long(colon + 1, 1, 65535, &p) != 0)
		return -1;
	memcpy(host, hstart, hlen);
	host[hlen] = '\0';
	if (strpbrk(host, " \t\r\n/") != NULL)
		return -1;
	*port = (int)p;
	n = snprintf(norm, normlen, v6 ? "[%s]:%ld" : "%s:%ld", host, p);
	if (n < 0 || (size_t)n >= normlen)
		return -1;
	return 0;
}

/* "T-12" (any case) or plain "12" into the canonical "T-12". */
int console_parse_ticket(const char *arg, char *out, size_t outlen)
{
	const char *num = arg;
	long v;
	int n;

	if (arg == NULL)
		return -1;
	if ((arg[0] == 'T' || arg[0] == 't') && arg[1] == '-')
		num = arg + 2;
	if (num[0] == '0' || parse_long(num, 1, LONG_MAX, &v) != 0)
		return -1;
	n = snprintf(out, outlen, "T-%ld", v);
	if (n < 0 || (size_t)n >= outlen)
		return -1;
	return 0;
}

/* "90s", "10m", "2h" or plain seconds, within what an invite may last. */
int console_parse_duration(const char *arg, long *secs)
{
	char num[16];
	size_t len;
	long v, mult = 1;

	if (arg == NULL || (len = strlen(arg)) == 0 || len >= sizeof(num))
		return -1;
	memcpy(num, arg, len + 1);
	if (num[len - 1] == 'm')
		mult = 60;
	else if (num[len - 1] == 'h')
		mult = 3600;
	if (num[len - 1] == 's' || mult != 1)
		num[len - 1] = '\0';
	if (parse_long(num, 1, TETHER_INVITE_TTL_MAX, &v) != 0 ||
	    v > TETHER_INVITE_TTL_MAX / mult)
		return -1;
	*secs = v * mult;
	return 0;
}

/* "SHA256:" and 43 characters of unpadded base64, as the relay prints. */
bool console_fingerprint_valid(const char *fp)
{
	static const char prefix[] = "SHA256:";
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;

	if (fp == NULL || strncmp(fp, prefix, sizeof(prefix) - 1) != 0)
		return false;
	fp += sizeof(prefix) - 1;
	for (i = 0; fp[i] != '\0'; i++)
		if (strchr(b64, fp[i]) == NULL)
			return false;
	return i == 43;
}

/* Session ids name files under sessions/: no separators, no dots. */
bool console_session_id_valid(const char *id)
{
	size_t i;

	if (id == NULL || id[0] == '\0')
		return false;
	for (i = 0; id[i] != '\0'; i++) {
		char ch = id[i];

		if (i + 1 >= CONSOLE_SESSION_MAX)
			return false;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return false;
	}
	return true;
}

/* The relay's session id, a number or a string, as text. */
int console_session_id(const json_t *v, char *out, size_t outlen)
{
	int n;

	if (json_is_integer(v)) {
		n = snprintf(out, outlen, "%" JSON_INTEGER_FORMAT,
			     json_integer_value(v));
		if (n < 0 || (size_t)n >= outlen)
			return -1;
	} else if (json_is_string(v)) {
		n = snprintf(out, outlen, "%s", json_string_value(v));
		if (n < 0 || (size_t)n >= outlen)
			return -1;
	} else {
		return -1;
	}
	return console_session_id_valid(out) ? 0 : -1;
}

/* The string member key, or NULL if it is missing or not a string. */
const char *console_json_str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

/*
 * A path as a JSON string.  Names need not be UTF-8 and JSON strings must
 * be: such a name is shown with "?" for every byte outside ASCII.
 */
json_t *console_json_path(const char *s)
{
	json_t *v;
	char *copy;
	size_t i;

	if (s == NULL)
		s = "";
	v = json_string(s);
	if (v != NULL)
		return v;
	copy = tether_strdup(s);
	if (copy == NULL)
		return NULL;
	for (i = 0; copy[i] != '\0'; i++)
		if ((unsigned char)copy[i] >= 0x80)
			copy[i] = '?';
	v = json_string(copy);
	tether_free(copy);
	return v;
}

int console_json_print(const json_t *v)
{
	/* 12 digits: seconds and rates without float noise. */
	if (json_dumpf(v, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(12)) !=
		0 ||
	    fputc('\n', stdout) == EOF) {
		console_error("cannot write output");
		return -1;
	}
	return 0;
}

/*
 * Writes all of buf, retrying interrupted and partial writes; waits when the
 * descriptor was left non-blocking by whoever shares it.
 */
int console_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	struct pollfd pfd;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			pfd.revents = 0;
			if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
				return -errno;
			continue;
		}
		return n < 0 ? -errno : -EIO;
	}
	return 0;
}
