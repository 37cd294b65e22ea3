/*
 * tether-relay: command line.  `init` makes the data directory (database,
 * certificate, first admin), `technician` manages technicians and their
 * login tokens, `run` serves.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <tether/crypto.h>
#include <tether/ctrl.h>
#include <tether/err.h>
#include <tether/id.h>
#include <tether/log.h>
#include <tether/num.h>
#include <tether/proto.h>
#include <tether/tls.h>

#include "relay.h"

static const char usage[] =
    "usage: tether-relay init --data DIR [--json]\n"
    "       tether-relay technician add NAME "
    "[--role admin|technician|auditor] --data DIR [--json]\n"
    "       tether-relay technician role NAME admin|technician|auditor "
    "--data DIR [--json]\n"
    "       tether-relay technician list --data DIR [--json]\n"
    "       tether-relay technician remove NAME --data DIR\n"
    "       tether-relay technician token NAME --data DIR [--json]\n"
    "       tether-relay enroll-token --data DIR [--ttl DURATION] "
    "[--json]\n"
    "       tether-relay run --data DIR [--listen HOST:PORT] "
    "[--idle-timeout SECONDS]\n"
    "                         [--metrics-listen HOST:PORT|off] [-v]\n"
    "\n"
    "The relay pairs technicians' consoles with customers' agents and\n"
    "forwards their end-to-end encrypted channels; it never sees their\n"
    "content.  Default listen address: " TETHER_DEFAULT_LISTEN ";\n"
    "Prometheus metrics and /healthz on " TETHER_DEFAULT_METRICS
    " (skipped with a warning if busy).\n";

struct opts {
	const char *data;
	const char *role;
	const char *listen;
	const char *metrics;
	bool metrics_given;
	unsigned idle_s;
	long ttl_s;
	bool json;
	bool verbose;
};

static int die_usage(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "tether-relay: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s", usage);
	return 2;
}

/* "90", "90s", "15m", "1h", "2d" in seconds; -1 if malformed. */
static long parse_duration(const char *s)
{
	static const char units[] = "smhd";
	static const long scale[] = {1, 60, 3600, 86400};
	const char *p = s, *u;
	uint64_t v;

	/* Digits first: the scanner would skip blanks. */
	if (*p < '0' || *p > '9' || tether_num_scan_u64(&p, &v) != 0 ||
	    v > 100u * 86400)
		return -1;
	if (*p == '\0')
		return (long)v;
	u = strchr(units, *p);
	if (u == NULL || p[1] != '\0')
		return -1;
	return (long)v * scale[u - units];
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
	    {"data", required_argument, NULL, 'd'},
	    {"role", required_argument, NULL, 'r'},
	    {"listen", required_argument, NULL, 'l'},
	    {"idle-timeout", required_argument, NULL, 'i'},
	    {"metrics-listen", required_argument, NULL, 'm'},
	    {"ttl", required_argument, NULL, 't'},
	    {"json", no_argument, NULL, 'j'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c;

	while ((c = getopt_long(argc, argv, "d:r:l:i:m:t:jvh", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'd':
			o->data = optarg;
			break;
		case 'r':
			o->role = optarg;
			break;
		case 'l':
			o->listen = optarg;
			break;
		case 'i':
			if (tether_num_parse_u64(optarg, 5, 86400, &v) != 0)
				return die_usage("--idle-timeout wants 5 to "
						 "86400 seconds, not '%s'",
						 optarg);
			o->idle_s = (unsigned)v;
			break;
		case 'm':
			o->metrics = optarg;
			o->metrics_given = true;
			break;
		case 't':
			o->ttl_s = parse_duration(optarg);
			if (o->ttl_s < 1 || o->ttl_s > 30L * 86400)
				return die_usage("--ttl wants a duration from "
						 "1s to 30d (90s, 15m, 1h, "
						 "2d), not '%s'",
						 optarg);
			break;
		case 'j':
			o->json = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		default:
			return die_usage("%s", "bad option");
		}
	}
	return 0;
}

static int data_path(char *out, size_t len, const char *dir, const char *f)
{
	int n = snprintf(out, len, "%s/%s", dir, f);

	return n < 0 || (size_t)n >= len ? TETHER_ERR_TOO_LARGE : TETHER_OK;
}

static struct relay_store *open_store(const char *dir)
{
	struct relay_store *st = NULL;
	char db[4096];
	int rc;

	if (data_path(db, sizeof(db), dir, "tether.db") != 0 ||
	    access(db, F_OK) != 0) {
		fprintf(stderr,
			"tether-relay: %s is not initialised (run: "
			"tether-relay init --data %s)\n",
			dir, dir);
		return NULL;
	}
	if ((rc = relay_store_open(db, &st)) != 0) {
		fprintf(stderr, "tether-relay: cannot open %s: %s\n", db,
			tether_strerror(rc));
		return NULL;
	}
	return st;
}

/* Prints a --json answer (taken) for scripts: indented, one newline. */
static void print_json(json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2));
	putchar('\n');
	json_decref(j);
}

static int cmd_init(struct opts *o)
{
	char db[4096], cert[4096], key[4096], fp[TETHER_TLS_FP_LEN];
	char token[RELAY_ADMIN_TOKEN_MAX];
	struct relay_store *st = NULL;
	struct relay_store_tech t;
	int rc, ret = 1;

	if (mkdir(o->data, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "tether-relay: cannot create %s: %s\n", o->data,
			strerror(errno));
		return 1;
	}
	if (data_path(db, sizeof(db), o->data, "tether.db") != 0 ||
	    data_path(cert, sizeof(cert), o->data, "cert.pem") != 0 ||
	    data_path(key, sizeof(key), o->data, "key.pem") != 0) {
		fprintf(stderr, "tether-relay: path too long\n");
		return 1;
	}
	if (access(db, F_OK) == 0 || access(key, F_OK) == 0) {
		fprintf(stderr, "tether-relay: %s is already initialised\n",
			o->data);
		return 1;
	}
	if ((rc = tether_tls_cert_generate(cert, key, "tether-relay", fp)) !=
	    0) {
		fprintf(stderr, "tether-relay: cannot make a certificate: %s\n",
			tether_strerror(rc));
		return 1;
	}
	if ((rc = relay_store_open(db, &st)) != 0 ||
	    (rc = relay_admin_tech_add(st, "relay", "relay", "admin",
				       TETHER_TECH_ADMIN, token, sizeof(token),
				       &t)) != 0) {
		fprintf(stderr,
			"tether-relay: cannot create the database: "
			"%s\n",
			tether_strerror(rc));
		goto out;
	}
	if (o->json) {
		print_json(json_pack("{s:s, s:s, s:s}", "data", o->data,
				     "fingerprint", fp, "admin_token", token));
	} else {
		printf("Initialised relay data in %s\n"
		       "Relay fingerprint: %s\n"
		       "Admin token (shown once, keep it secret): %s\n"
		       "Next: tether-relay run --data %s\n",
		       o->data, fp, token, o->data);
	}
	ret = 0;
out:
	tether_wipe(token, sizeof(token));
	relay_store_close(st);
	return ret;
}

static int tech_add(struct relay_store *st, const char *name,
		    const struct opts *o)
{
	int role = tether_ctrl_word_of(tech_role, o->role);
	char token[RELAY_ADMIN_TOKEN_MAX];
	struct relay_store_tech t;
	int rc;

	rc = relay_admin_tech_add(st, "relay", "relay", name,
				  (enum tether_tech_role)role, token,
				  sizeof(token), &t);
	if (rc == TETHER_ERR_EXISTS) {
		fprintf(stderr, "tether-relay: technician %s already exists\n",
			name);
		return 1;
	}
	if (rc != 0) {
		fprintf(stderr, "tether-relay: %s\n", tether_strerror(rc));
		return 1;
	}
	if (o->json)
		print_json(json_pack("{s:s, s:s, s:s}", "name", name, "role",
				     o->role, "token", token));
	else
		printf("Token for %s (%s), shown once: %s\n", name, o->role,
		       token);
	tether_wipe(token, sizeof(token));
	return 0;
}

/* What relay-admin.c refused, in words: exit 1. */
static int admin_failed(const char *name, int rc)
{
	fprintf(stderr, "tether-relay: %s: %s\n", name,
		rc == TETHER_ERR_NOT_FOUND ? "no such technician"
		: rc == TETHER_ERR_STATE
		    ? "the only admin cannot be removed or lowered (make "
		      "another admin first)"
		    : tether_strerror(rc));
	return 1;
}

/*
 * A fresh one-time login token for an existing technician (a new laptop,
 * a lost key): the login it makes replaces the registered key, and the
 * running relay then cuts the consoles still signing with the old one.
 */
static int tech_token(struct relay_store *st, const char *name,
		      const struct opts *o)
{
	char token[128];
	int64_t id = 0;
	int rc;

	rc = relay_admin_tech_token(st, "relay", "relay", name, token,
				    sizeof(token), &id);
	if (rc != 0)
		return admin_failed(name, rc);
	if (o->json)
		print_json(json_pack("{s:s, s:I, s:s}", "name", name, "id",
				     (json_int_t)id, "token", token));
	else
		printf("Login token for %s, shown once (one login; it "
		       "replaces the registered key): %s\n",
		       name, token);
	tether_wipe(token, sizeof(token));
	return 0;
}

static int tech_remove(struct relay_store *st, const char *name)
{
	struct relay_store_tech t;
	int rc;

	rc = relay_admin_tech_remove(st, "relay", "relay", name, &t);
	if (rc != 0)
		return admin_failed(name, rc);
	printf("Removed %s\n", name);
	return 0;
}

/*
 * The running relay sees the change within RELAY_ACCESS_CHECK_MS and cuts
 * what the technician may no longer do (relay-access.c).
 */
static int tech_role(struct relay_store *st, const char *name,
		     const struct opts *o)
{
	int role = tether_ctrl_word_of(tech_role, o->role);
	enum tether_tech_role from;
	struct relay_store_tech t;
	int rc;

	rc = relay_admin_tech_role(st, "relay", "relay", name,
				   (enum tether_tech_role)role, &t, &from);
	if (rc != 0)
		return admin_failed(name, rc);
	if (o->json)
		print_json(json_pack("{s:s, s:s, s:s}", "name", name, "from",
				     tether_ctrl_name_of(tech_role, from),
				     "role",
				     tether_ctrl_name_of(tech_role, role)));
	else if (from == (enum tether_tech_role)role)
		printf("%s is already %s\n", name, o->role);
	else
		printf("%s is now %s (was %s)\n", name, o->role,
		       tether_ctrl_name_of(tech_role, from));
	return 0;
}

/* --json: [{id, name, role, created_at}], times in ISO-8601 UTC. */
static json_t *techs_json(const struct relay_store_tech *v, size_t n)
{
	char when[TETHER_CTRL_TIME_LEN];
	json_t *list = json_array();
	size_t i;

	for (i = 0; list != NULL && i < n; i++) {
		tether_ctrl_time_format(v[i].created_at, when);
		if (json_array_append_new(
			list,
			json_pack("{s:I, s:s, s:s, s:s}", "id",
				  (json_int_t)v[i].id, "name", v[i].name,
				  "role",
				  tether_ctrl_name_of(tech_role, v[i].role),
				  "created_at", when)) != 0) {
			json_decref(list);
			list = NULL;
		}
	}
	return list;
}

static int tech_list(struct relay_store *st, const struct opts *o)
{
	struct relay_store_tech *v;
	json_t *list;
	size_t n, i;

	if (relay_store_tech_list(st, &v, &n) != 0)
		return 1;
	if (o->json) {
		list = techs_json(v, n);
		if (list == NULL) {
			relay_store_techs_free(v, n);
			return 1;
		}
		print_json(list);
	} else {
		printf("%-6s %-24s %s\n", "ID", "NAME", "ROLE");
		for (i = 0; i < n; i++)
			printf("%-6lld %-24s %s\n", (long long)v[i].id,
			       v[i].name,
			       tether_ctrl_name_of(tech_role, v[i].role));
	}
	relay_store_techs_free(v, n);
	return 0;
}

static int cmd_technician(int argc, char **argv, struct opts *o)
{
	const char *verb = argc > 0 ? argv[0] : NULL;
	struct relay_store *st;
	int ret = 1;

	if (verb == NULL)
		return die_usage("%s", "technician add|list|remove|role|token");
	if (strcmp(verb, "role") == 0) {
		if (argc != 3)
			return die_usage("%s", "technician role needs NAME and "
					       "ROLE");
		o->role = argv[2];
	} else if ((strcmp(verb, "add") == 0 || strcmp(verb, "remove") == 0 ||
		    strcmp(verb, "token") == 0) &&
		   argc != 2) {
		return die_usage("technician %s needs one NAME", verb);
	}
	if (strcmp(verb, "add") == 0 && !tether_id_name_valid(argv[1]))
		return die_usage("bad name '%s' (letters, digits, -_. only)",
				 argv[1]);
	if (tether_ctrl_word_of(tech_role, o->role) < 0)
		return die_usage("the role is admin, technician or auditor, "
				 "not '%s'",
				 o->role);
	st = open_store(o->data);
	if (st == NULL)
		return 1;
	if (strcmp(verb, "add") == 0)
		ret = tech_add(st, argv[1], o);
	else if (strcmp(verb, "remove") == 0)
		ret = tech_remove(st, argv[1]);
	else if (strcmp(verb, "token") == 0)
		ret = tech_token(st, argv[1], o);
	else if (strcmp(verb, "list") == 0)
		ret = tech_list(st, o);
	else if (strcmp(verb, "role") == 0)
		ret = tech_role(st, argv[1], o);
	else
		fprintf(stderr,
			"tether-relay: unknown technician command '%s'\n",
			verb);
	relay_store_close(st);
	return ret;
}

/*
 * A one-time enrolment token "tte_" + 43 base64url characters (256 bits);
 * only its SHA-256 is stored, with the expiry.
 */
static int cmd_enroll_token(struct opts *o)
{
	char token[RELAY_ADMIN_TOKEN_MAX], cert[4096],
	    fp[TETHER_TLS_FP_LEN] = "";
	char when[TETHER_CTRL_TIME_LEN];
	struct relay_store *st;
	int64_t expires;
	int rc, ret = 1;

	st = open_store(o->data);
	if (st == NULL)
		return 1;
	if ((rc = relay_admin_enroll_token(st, "relay", "relay", o->ttl_s,
					   token, sizeof(token), &expires)) !=
		0 ||
	    (rc = tether_ctrl_time_format(expires, when)) != 0)
		goto out;
	if (data_path(cert, sizeof(cert), o->data, "cert.pem") == 0)
		tether_tls_cert_fingerprint(cert, fp);
	if (o->json) {
		print_json(json_pack("{s:s, s:s, s:s}", "token", token,
				     "expires_at", when, "fingerprint", fp));
	} else {
		printf("Enrollment token (one use, valid until %s):\n  %s\n"
		       "On the machine to enroll, as root:\n"
		       "  tether-agent enroll --relay HOST:PORT --token %s "
		       "--fingerprint %s\n",
		       when, token, token, fp);
	}
	ret = 0;
out:
	if (ret != 0)
		fprintf(stderr, "tether-relay: cannot make a token: %s\n",
			tether_strerror(rc));
	tether_wipe(token, sizeof(token));
	relay_store_close(st);
	return ret;
}

int main(int argc, char **argv)
{
	struct opts o = {.role = "technician",
			 .listen = TETHER_DEFAULT_LISTEN,
			 .metrics = TETHER_DEFAULT_METRICS,
			 .idle_s = TETHER_IDLE_TIMEOUT_MS / 1000,
			 .ttl_s = TETHER_ENROLL_TTL_DEFAULT};
	const char *cmd;
	int rc;

	tether_log_set_ident("tether-relay");
	if (argc < 2)
		return die_usage("%s", "a command is required");
	cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0) {
		printf("tether-relay %s (protocol %d)\n", TETHER_VERSION,
		       TETHER_PROTOCOL_VERSION);
		return 0;
	}
	/* GNU getopt moves the positional words after the options. */
	optind = 2;
	if ((rc = parse_opts(argc, argv, &o)) != 0)
		return rc;
	if (o.data == NULL)
		return die_usage("%s", "--data DIR is required");
	if (strcmp(cmd, "technician") == 0)
		return cmd_technician(argc - optind, argv + optind, &o);
	if (optind != argc)
		return die_usage("unexpected argument '%s'", argv[optind]);
	if (o.verbose)
		tether_log_set_level(TETHER_LOG_DEBUG);
	if (strcmp(cmd, "init") == 0)
		return cmd_init(&o);
	if (strcmp(cmd, "enroll-token") == 0)
		return cmd_enroll_token(&o);
	if (strcmp(cmd, "run") == 0) {
		struct relay_opts ro = {
		    .data_dir = o.data,
		    .listen = o.listen,
		    .metrics_listen = o.metrics,
		    .metrics_required = o.metrics_given,
		    .idle_s = o.idle_s,
		};

		return relay_run(&ro) == 0 ? 0 : 1;
	}
	return die_usage("unknown command '%s'", cmd);
}
