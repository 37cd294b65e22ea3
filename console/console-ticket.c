/*
 * `tether ticket new|list|show|close`: one request each, printed either as
 * the relay's JSON (--json, for scripts) or as aligned text for people.
 * Text from the relay (titles, names, audit details) may have been typed
 * by anyone, so the readable forms print it through console_print_clean().
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"

static const char ticket_usage[] =
	"Usage: tether ticket new TITLE [--customer NAME] [--json]\n"
	"       tether ticket list [--status open|closed] [--json]\n"
	"       tether ticket show T-N [--json]\n"
	"       tether ticket close T-N --resolution TEXT [--json]\n";

/* Options every ticket subcommand understands, and their values. */
struct ticket_args {
	const char *customer;
	const char *status;
	const char *resolution;
	bool json;
	int npos;
	char **pos;
};

/* "user@host (os)" from an agent's facts, or "-". */
static void table_add_agent(struct console_table *t, const json_t *facts)
{
	const char *user = console_json_str(facts, "user");
	const char *host = console_json_str(facts, "hostname");
	const char *os = console_json_str(facts, "os");
	char buf[512];

	if (!json_is_object(facts)) {
		console_table_add(t, NULL);
		return;
	}
	if (snprintf(buf, sizeof(buf), "%s@%s (%s)", user ? user : "?",
		     host ? host : "?", os ? os : "?") >= (int)sizeof(buf))
		buf[sizeof(buf) - 1] = '\0';
	console_table_add(t, buf);
}

static int print_list(const json_t *tickets)
{
	static const char *const heads[] = {"ID", "STATUS", "TITLE", "CUSTOMER",
					    "CREATED"};
	struct console_table t;
	const json_t *tk;
	size_t i;
	int r;

	console_table_init(&t, 5, heads);
	json_array_foreach(tickets, i, tk) {
		console_table_add_json(&t, json_object_get(tk, "id"));
		console_table_add_json(&t, json_object_get(tk, "status"));
		console_table_add_json(&t, json_object_get(tk, "title"));
		console_table_add_json(&t, json_object_get(tk, "customer"));
		console_table_add_json(&t, json_object_get(tk, "created_at"));
	}
	r = console_table_print(&t, 0, 0);
	console_table_free(&t);
	return r;
}

static void print_field(const char *label, const json_t *tk, const char *key)
{
	const char *s = console_json_str(tk, key);

	if (s == NULL || s[0] == '\0')
		return;
	printf("%-12s", label);
	console_print_clean(stdout, s);
	putchar('\n');
}

static int print_show(const json_t *tk)
{
	static const char *const sess_heads[] = {"NAMEPLATE", "STATE",
						 "CREATED", "EXPIRES", "AGENT"};
	static const char *const att_heads[] = {"KIND", "SOURCE", "SAVED",
						"SIZE"};
	struct console_table sess, audit, att;
	const json_t *sessions = json_object_get(tk, "sessions");
	const json_t *atts;
	char size[32];
	const json_t *trail = json_object_get(tk, "audit");
	const json_t *v;
	size_t i;
	int r;

	print_field("Ticket:", tk, "id");
	print_field("Title:", tk, "title");
	print_field("Status:", tk, "status");
	print_field("Customer:", tk, "customer");
	print_field("Source:", tk, "source");
	print_field("Created:", tk, "created_at");
	print_field("Created by:", tk, "created_by");
	print_field("Closed:", tk, "closed_at");
	print_field("Resolution:", tk, "resolution");

	printf("\nSessions:\n");
	console_table_init(&sess, 5, sess_heads);
	console_table_init(&audit, 4, NULL);
	json_array_foreach(sessions, i, v) {
		console_table_add_json(&sess, json_object_get(v, "nameplate"));
		console_table_add_json(&sess, json_object_get(v, "state"));
		console_table_add_json(&sess, json_object_get(v, "created_at"));
		console_table_add_json(&sess, json_object_get(v, "expires_at"));
		table_add_agent(&sess, json_object_get(v, "agent"));
	}
	r = json_array_size(sessions) > 0 ? console_table_print(&sess, 2, 0)
					  : (printf("  none\n"), 0);

	/* Diagnostics bundles saved on the ticket (tether diag --saved). */
	atts = json_object_get(tk, "attachments");
	if (r == 0 && json_array_size(atts) > 0) {
		printf("\nAttachments:\n");
		console_table_init(&att, 4, att_heads);
		json_array_foreach(atts, i, v) {
			console_table_add_json(&att, json_object_get(v, "kind"));
			console_table_add_json(&att, json_object_get(v, "source"));
			console_table_add_json(&att,
					       json_object_get(v, "created_at"));
			snprintf(size, sizeof(size), "%.1f KiB",
				 (double)json_integer_value(
				     json_object_get(v, "size")) /
				     1024);
			console_table_add(&att, size);
		}
		r = console_table_print(&att, 2, 0);
		console_table_free(&att);
	}

	printf("\nAudit trail:\n");
	json_array_foreach(trail, i, v) {
		console_table_add_json(&audit, json_object_get(v, "ts"));
		console_table_add_json(&audit, json_object_get(v, "actor"));
		console_table_add_json(&audit, json_object_get(v, "event"));
		console_table_add_json(&audit, json_object_get(v, "detail"));
	}
	if (r == 0)
		r = json_array_size(trail) > 0
			? console_table_print(&audit, 2, 0)
			: (printf("  none\n"), 0);
	console_table_free(&sess);
	console_table_free(&audit);
	return r;
}

/* One positional T-N argument into ticket. */
static int want_ticket(const char *sub, const struct ticket_args *a,
		       char *ticket, size_t len)
{
	if (a->npos != 1)
		return console_usage_error(sub, "expected one T-N");
	return console_ticket_arg(sub, a->pos[0], ticket, len);
}

/* Builds the request for the subcommand; NULL after a usage error. */
static json_t *build_request(const char *sub, const struct ticket_args *a,
			     char *ticket, size_t len, int *status)
{
	json_t *req = NULL;

	*status = CONSOLE_EXIT_USAGE;
	if ((a->customer != NULL && strcmp(sub, "new") != 0) ||
	    (a->status != NULL && strcmp(sub, "list") != 0) ||
	    (a->resolution != NULL && strcmp(sub, "close") != 0)) {
		console_usage_error("ticket", "option not valid for ticket %s",
				    sub);
		return NULL;
	}
	if (strcmp(sub, "new") == 0) {
		if (a->npos != 1 || a->pos[0][0] == '\0') {
			console_usage_error("ticket", "expected one TITLE");
			return NULL;
		}
		req = json_pack("{s:s, s:s}", "t", "ticket_new", "title",
				a->pos[0]);
		if (req != NULL && a->customer != NULL &&
		    json_object_set_new(req, "customer",
					json_string(a->customer)) != 0) {
			json_decref(req);
			req = NULL;
		}
	} else if (strcmp(sub, "list") == 0) {
		if (a->npos != 0) {
			console_usage_error("ticket", "list takes no operand");
			return NULL;
		}
		if (a->status != NULL && strcmp(a->status, "open") != 0 &&
		    strcmp(a->status, "closed") != 0) {
			console_usage_error("ticket",
					    "--status is open or closed");
			return NULL;
		}
		req = a->status != NULL
			      ? json_pack("{s:s, s:s}", "t", "ticket_list",
					  "status", a->status)
			      : json_pack("{s:s}", "t", "ticket_list");
	} else if (strcmp(sub, "show") == 0) {
		if (want_ticket("ticket", a, ticket, len) != 0)
			return NULL;
		req = json_pack("{s:s, s:s}", "t", "ticket_show", "ticket",
				ticket);
	} else if (strcmp(sub, "close") == 0) {
		if (want_ticket("ticket", a, ticket, len) != 0)
			return NULL;
		if (a->resolution == NULL || a->resolution[0] == '\0') {
			console_usage_error("ticket", "--resolution needed");
			return NULL;
		}
		req = json_pack("{s:s, s:s, s:s}", "t", "ticket_close",
				"ticket", ticket, "resolution", a->resolution);
	} else {
		console_usage_error("ticket", "unknown subcommand %s", sub);
		return NULL;
	}
	*status = CONSOLE_EXIT_FAIL;
	if (req == NULL)
		console_error("out of memory (or text that is not UTF-8)");
	return req;
}

static int print_answer(const char *sub, const struct ticket_args *a,
			const json_t *ans)
{
	const json_t *v = json_object_get(ans, strcmp(sub, "list") == 0
						       ? "tickets"
						       : "ticket");

	if (v == NULL) {
		console_error("the relay sent an incomplete answer");
		return -1;
	}
	if (a->json)
		return console_json_print(v);
	if (strcmp(sub, "list") == 0)
		return print_list(v);
	if (strcmp(sub, "show") == 0)
		return print_show(v);
	/* new and close: the id alone, for scripts. */
	console_print_clean(stdout, console_json_str(v, "id"));
	putchar('\n');
	return 0;
}

int console_ticket(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "customer", required_argument, NULL, 'c' },
		{ "status", required_argument, NULL, 's' },
		{ "resolution", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ticket_args a = { 0 };
	char ticket[CONSOLE_TICKET_MAX] = "";
	const char *sub;
	json_t *req, *ans = NULL;
	int opt, status;

	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
				  strcmp(argv[1], "-h") == 0)) {
			fputs(ticket_usage, stdout);
			return 0;
		}
		fputs(ticket_usage, stderr);
		return CONSOLE_EXIT_USAGE;
	}
	sub = argv[1];
	argc--;
	argv++;
	optind = 0;
	while ((opt = getopt_long(argc, argv, ":c:s:r:jh", opts, NULL)) !=
	       -1) {
		switch (opt) {
		case 'c':
			a.customer = optarg;
			break;
		case 's':
			a.status = optarg;
			break;
		case 'r':
			a.resolution = optarg;
			break;
		case 'j':
			a.json = true;
			break;
		case 'h':
			fputs(ticket_usage, stdout);
			return 0;
		default:
			return console_bad_option("ticket", opt, argv);
		}
	}
	a.npos = argc - optind;
	a.pos = argv + optind;
	req = build_request(sub, &a, ticket, sizeof(ticket), &status);
	if (req == NULL)
		return status;
	if (console_call(req, ticket[0] != '\0' ? ticket : NULL, &ans) != 0)
		return CONSOLE_EXIT_FAIL;
	status = print_answer(sub, &a, ans) == 0 ? 0 : CONSOLE_EXIT_FAIL;
	json_decref(ans);
	return status;
}
