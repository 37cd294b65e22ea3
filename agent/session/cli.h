/*
 * What people write on a tether-agent command line or in its config:
 * option values (--name VALUE, --name=VALUE) and HOST:PORT addresses (the
 * relay, forward targets, ports of built-in checks).  One parser of each
 * for join, enroll, run and check.
 */
#ifndef TETHER_AGENT_SESSION_CLI_H
#define TETHER_AGENT_SESSION_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest host name kept, with its NUL. */
#define AGENT_HOST_MAX 256

/* A TCP endpoint as written (an IPv6 address without its []). */
struct agent_target {
	char host[AGENT_HOST_MAX];
	uint16_t port;
};

/* A list of targets without duplicates (hosts compared without case). */
struct agent_targets {
	struct agent_target *t; /* owned */
	size_t n;
};

/*
 * The value of --name VALUE or --name=VALUE at argv[*i] (*i moves past a
 * separate value); NULL if it is not this option, with *missing set when
 * the value is missing.
 */
const char *agent_opt_value(int argc, char **argv, int *i, const char *name,
			    bool *missing);
/* Decimal 1..65535 without sign or leading zeros; TETHER_ERR_FORMAT. */
int agent_port_parse(const char *s, uint16_t *port);
/*
 * HOST:PORT or [V6]:PORT into *t (HOST: letters, digits and ._-:%); with
 * default_port not 0, HOST or [V6] alone take it.  TETHER_ERR_FORMAT with
 * why (static text) otherwise; *t is zeroed first.
 */
int agent_target_parse(const char *spec, uint16_t default_port,
		       struct agent_target *t, const char **why);
/* "host:port", or "[v6]:port" so that the port stays readable. */
void agent_target_name(const char *host, uint16_t port, char *out,
		       size_t outlen);
/* Adds a copy of t unless ts has it; 0 or TETHER_ERR_NOMEM. */
int agent_targets_add(struct agent_targets *ts, const struct agent_target *t);
/* Whether ts has host (without case) and port. */
bool agent_targets_have(const struct agent_targets *ts, const char *host,
			uint16_t port);
/* Frees the list and empties it.  An empty list is fine. */
void agent_targets_free(struct agent_targets *ts);

#endif /* TETHER_AGENT_SESSION_CLI_H */
