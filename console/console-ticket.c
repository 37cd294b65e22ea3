/*
 * `tether ticket new|list|show|close|assign`: one request each, printed either
 * as JSON (--json, for scripts: the tickets as the protocol writes them) or as
 * aligned text for people.  Text from the relay (titles, names, audit details)
 * may have been typed by anyone, so the readable forms print it cleaned.
 */
#include <string.h>

#include <tether/text.h>

#include "console.h"

static const char ticket_usage[] =
    "Usage: tether ticket new TITLE [--customer NAME] [--json]\n"
    "       tether ticket list [--status open|closed] [--json]\n"
    "       tether ticket show T-N [--json]\n"
    "       tether ticket close T-N --resolution TEXT [--json]\n"
    "       tether ticket assign T-N NAME|me|none [--json]\n"
    "\n"
    "assign gives the ticket to a technician (me: yourself, none: back to\n"
    "the unassigned queue).  Admins may assign any ticket; a technician\n"
    "may take an unassigned one and give their own away.  Whoever loses\n"
    "a ticket loses their open channels and session on it at once.\n";

enum sub { SUB_NEW, SUB_LIST, SUB_SHOW, SUB_CLOSE, SUB_ASSIGN, SUBS };

static const char *const sub_names[] = {"new", "list", "show", "close",
					"assign"};

/* Options every ticket subcommand understands, and their values. */
struct ticket_args {
	const char *customer;
	const char *status;
	const char *resolution;
	struct console_args args;
};

/* A request of any subcommand, built from the arguments. */
struct ticket_request {
	enum tether_ctrl_type type;
	union {
		struct tether_ctrl_ticket_new new_;
		struct tether_ctrl_ticket_list list;
		struct tether_ctrl_ticket_ref show;
		struct tether_ctrl_ticket_close close;
		struct tether_ctrl_ticket_assign assign;
	} body;
	char name[TETHER_ID_TICKET_LEN]; /* T-N, for the error messages */
};

/* "user@host (os)" from an agent's facts, or "-". */
static void table_add_agent(struct console_table *t,
			    const struct tether_ctrl_session_row *s)
{
	const struct tether_ctrl_facts *f = &s->agent;
	char buf[1024];

	if (!s->has_agent) {
		console_table_add(t, NULL);
		return;
	}
	snprintf(buf, sizeof(buf), "%s@%s (%s)", f->user ? f->user : "?",
		 f->hostname ? f->hostname : "?", f->os ? f->os : "?");
	console_table_add(t, buf);
}

static void table_add_ticket_id(struct console_table *t, int64_t id)
{
	char name[TETHER_ID_TICKET_LEN];

	console_table_add(
	    t,
	    tether_id_ticket_format(id, name, sizeof(name)) == 0 ? name : NULL);
}

static int print_list(const struct tether_ctrl_ticket_list_ok *ok)
{
	static const char *const heads[] = {"ID",	"STATUS",   "TITLE",
					    "CUSTOMER", "ASSIGNEE", "CREATED"};
	struct console_table t;
	size_t i;
	int r;

	console_table_init(&t, 6, heads);
	for (i = 0; i < ok->ntickets; i++) {
		const struct tether_ctrl_ticket *tk = &ok->tickets[i];

		table_add_ticket_id(&t, tk->id);
		console_table_add(&t, tether_ctrl_name_of(status, tk->status));
		console_table_add(&t, tk->title);
		console_table_add(&t, tk->customer);
		console_table_add(&t, tk->assignee);
		console_table_add_time(&t, tk->created_at);
	}
	r = console_table_print(&t, 0, 0);
	console_table_free(&t);
	return r;
}

static void print_field(const char *label, const char *s)
{
	if (s == NULL || s[0] == '\0')
		return;
	printf("%-12s", label);
	tether_text_print_clean(stdout, s);
	putchar('\n');
}

static void print_time(const char *label, int64_t when)
{
	char text[TETHER_CTRL_TIME_LEN];

	if (when != 0 && tether_ctrl_time_format(when, text) == 0)
		print_field(label, text);
}

static void print_head(const struct tether_ctrl_ticket *tk)
{
	char name[TETHER_ID_TICKET_LEN];

	if (tether_id_ticket_format(tk->id, name, sizeof(name)) == 0)
		print_field("Ticket:", name);
	print_field("Title:", tk->title);
	print_field("Status:", tether_ctrl_name_of(status, tk->status));
	print_field("Customer:", tk->customer);
	print_field("Source:", tether_ctrl_name_of(source, tk->source));
	print_time("Created:", tk->created_at);
	print_field("Created by:", tk->created_by);
	print_field("Assigned to:", tk->assignee != NULL
					? tk->assignee
					: "nobody (unassigned)");
	print_time("Closed:", tk->closed_at);
	print_field("Resolution:", tk->resolution);
}

static int print_sessions(const struct tether_ctrl_ticket *tk)
{
	static const char *const heads[] = {"NAMEPLATE", "STATE", "CREATED",
					    "EXPIRES", "AGENT"};
	struct console_table t;
	size_t i;
	int r = 0;

	printf("\nSessions:\n");
	if (tk->nsessions == 0) {
		printf("  none\n");
		return 0;
	}
	console_table_init(&t, 5, heads);
	for (i = 0; i < tk->nsessions; i++) {
		const struct tether_ctrl_session_row *s = &tk->sessions[i];

		console_table_add(&t, s->nameplate);
		console_table_add(&t,
				  tether_ctrl_name_of(session_state, s->state));
		console_table_add_time(&t, s->created_at);
		console_table_add_time(&t, s->expires_at);
		table_add_agent(&t, s);
	}
	r = console_table_print(&t, 2, 0);
	console_table_free(&t);
	return r;
}

/* Diagnostics bundles saved on the ticket (tether diag --saved). */
static int print_attachments(const struct tether_ctrl_ticket *tk)
{
	static const char *const heads[] = {"KIND", "SOURCE", "SAVED", "SIZE"};
	struct console_table t;
	char size[32];
	size_t i;
	int r;

	if (tk->nattachments == 0)
		return 0;
	printf("\nAttachments:\n");
	console_table_init(&t, 4, heads);
	for (i = 0; i < tk->nattachments; i++) {
		const struct tether_ctrl_attachment_row *a =
		    &tk->attachments[i];

		console_table_add(&t, a->kind);
		console_table_add(&t, a->source);
		console_table_add_time(&t, a->created_at);
		snprintf(size, sizeof(size), "%.1f KiB",
			 (double)a->size / 1024);
		console_table_add(&t, size);
	}
	r = console_table_print(&t, 2, 0);
	console_table_free(&t);
	return r;
}

static int print_audit(const struct tether_ctrl_ticket *tk)
{
	struct console_table t;
	size_t i;
	int r;

	printf("\nAudit trail:\n");
	if (tk->naudit == 0) {
		printf("  none\n");
		return 0;
	}
	console_table_init(&t, 4, NULL);
	for (i = 0; i < tk->naudit; i++) {
		const struct tether_ctrl_audit_row *ev = &tk->audit[i];

		console_table_add_time(&t, ev->ts);
		console_table_add(&t, ev->actor);
		console_table_add(&t, ev->event);
		console_table_add_json(&t, ev->detail);
	}
	r = console_table_print(&t, 2, 0);
	console_table_free(&t);
	return r;
}

static int print_show(const struct tether_ctrl_ticket *tk)
{
	print_head(tk);
	if (print_sessions(tk) != 0 || print_attachments(tk) != 0)
		return -1;
	return print_audit(tk);
}

/* One positional T-N argument into the request (n operands in all). */
static int want_ticket(const struct ticket_args *a, int64_t *ticket,
		       struct ticket_request *q, int n)
{
	if (a->args.argc != n)
		return console_usage_error("ticket", n == 1
							 ? "expected one T-N"
							 : "expected T-N and "
							   "NAME, me or none");
	return console_opts_ticket("ticket", a->args.argv[0], ticket, q->name,
				   sizeof(q->name));
}

/* JSON strings are UTF-8: jansson refuses anything else. */
static bool is_text(const char *s)
{
	json_t *v = s != NULL ? json_string(s) : NULL;

	json_decref(v);
	return s == NULL || v != NULL;
}

/* What the relay would refuse, refused here in its words (exit 255). */
static int check_text(const struct ticket_args *a, enum sub sub)
{
	const char *title = sub == SUB_NEW ? a->args.argv[0] : NULL;

	if (!is_text(title) || !is_text(a->customer) ||
	    !is_text(a->resolution)) {
		console_error("out of memory (or text that is not UTF-8)");
		return CONSOLE_EXIT_FAIL;
	}
	if (title != NULL && (strlen(title) > TETHER_CTRL_TITLE_MAX ||
			      (a->customer != NULL &&
			       strlen(a->customer) > TETHER_CTRL_TITLE_MAX))) {
		console_error("a ticket needs a title of 1 to %d bytes",
			      TETHER_CTRL_TITLE_MAX);
		return CONSOLE_EXIT_FAIL;
	}
	if (sub == SUB_CLOSE &&
	    strlen(a->resolution) > TETHER_CTRL_RESOLUTION_MAX) {
		console_error("closing a ticket needs a resolution");
		return CONSOLE_EXIT_FAIL;
	}
	return 0;
}

/*
 * Builds the request for subcommand name (sub: its index, or -1): 0, or
 * the exit status once said.
 */
static int build_request(const char *name, int sub, const struct ticket_args *a,
			 struct ticket_request *q)
{
	int n = a->args.argc, r;

	if ((a->customer != NULL && sub != SUB_NEW) ||
	    (a->status != NULL && sub != SUB_LIST) ||
	    (a->resolution != NULL && sub != SUB_CLOSE))
		return console_usage_error(
		    "ticket", "option not valid for ticket %s", name);
	switch (sub) {
	case SUB_NEW:
		if (n != 1 || a->args.argv[0][0] == '\0')
			return console_usage_error("ticket",
						   "expected one TITLE");
		q->type = TETHER_CTRL_TICKET_NEW;
		q->body.new_.title = a->args.argv[0];
		q->body.new_.customer = a->customer;
		break;
	case SUB_LIST:
		if (n != 0)
			return console_usage_error("ticket",
						   "list takes no operand");
		q->type = TETHER_CTRL_TICKET_LIST;
		if (a->status != NULL) {
			r = tether_ctrl_word_of(status, a->status);
			if (r < 0)
				return console_usage_error(
				    "ticket", "--status is open or closed");
			q->body.list.has_status = true;
			q->body.list.status = (enum tether_ticket_status)r;
		}
		break;
	case SUB_SHOW:
		q->type = TETHER_CTRL_TICKET_SHOW;
		if (want_ticket(a, &q->body.show.ticket, q, 1) != 0)
			return CONSOLE_EXIT_USAGE;
		break;
	case SUB_CLOSE:
		q->type = TETHER_CTRL_TICKET_CLOSE;
		if (want_ticket(a, &q->body.close.ticket, q, 1) != 0)
			return CONSOLE_EXIT_USAGE;
		if (a->resolution == NULL || a->resolution[0] == '\0')
			return console_usage_error("ticket",
						   "--resolution needed");
		q->body.close.resolution = a->resolution;
		break;
	case SUB_ASSIGN:
		q->type = TETHER_CTRL_TICKET_ASSIGN;
		if (want_ticket(a, &q->body.assign.ticket, q, 2) != 0)
			return CONSOLE_EXIT_USAGE;
		if (strcmp(a->args.argv[1], "me") == 0)
			q->body.assign.me = true;
		else if (strcmp(a->args.argv[1], "none") != 0 &&
			 !tether_id_name_valid(a->args.argv[1]))
			return console_usage_error(
			    "ticket", "assign wants a technician's name, me or "
				      "none");
		else if (strcmp(a->args.argv[1], "none") != 0)
			q->body.assign.to = a->args.argv[1];
		break;
	default:
		return console_usage_error("ticket", "unknown subcommand %s",
					   name);
	}
	return check_text(a, (enum sub)sub);
}

/* The tickets as JSON: the protocol's ticket objects. */
static json_t *tickets_json(const struct tether_ctrl_ticket_list_ok *ok)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; arr != NULL && i < ok->ntickets; i++)
		if (json_array_append_new(
			arr, tether_ctrl_part_to_json(TETHER_CTRL_PART_TICKET,
						      &ok->tickets[i])) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	return arr;
}

static int print_answer(enum sub sub, const struct ticket_args *a,
			const struct tether_ctrl_msg *ans)
{
	const struct tether_ctrl_ticket *tk = &ans->body.ticket_ok.ticket;
	char name[TETHER_ID_TICKET_LEN];
	json_t *v;
	int r;

	if (a->args.json) {
		v = sub == SUB_LIST
			? tickets_json(&ans->body.ticket_list_ok)
			: tether_ctrl_part_to_json(TETHER_CTRL_PART_TICKET, tk);
		r = console_json_print(v);
		json_decref(v);
		return r;
	}
	if (sub == SUB_LIST)
		return print_list(&ans->body.ticket_list_ok);
	if (sub == SUB_SHOW)
		return print_show(tk);
	if (sub == SUB_ASSIGN &&
	    tether_id_ticket_format(tk->id, name, sizeof(name)) == 0) {
		if (tk->assignee != NULL)
			printf("%s is assigned to %s\n", name, tk->assignee);
		else
			printf("%s is unassigned\n", name);
		return 0;
	}
	/* new and close: the id alone, for scripts. */
	if (tether_id_ticket_format(tk->id, name, sizeof(name)) != 0) {
		console_error("the relay sent a malformed ticket");
		return -1;
	}
	printf("%s\n", name);
	return 0;
}

static int ticket_option(void *arg, int opt, char *optarg)
{
	struct ticket_args *a = arg;

	if (opt == 'c')
		a->customer = optarg;
	else if (opt == 's')
		a->status = optarg;
	else
		a->resolution = optarg;
	return -1;
}

static const struct option ticket_longs[] = {
    {"customer", required_argument, NULL, 'c'},
    {"status", required_argument, NULL, 's'},
    {"resolution", required_argument, NULL, 'r'},
    {NULL, 0, NULL, 0},
};

static const struct console_opts ticket_opts = {
    .name = "ticket",
    .usage = ticket_usage,
    .shorts = "c:s:r:j",
    .longs = ticket_longs,
    .flags = CONSOLE_OPTS_JSON,
    .min = 0,
    .max = -1,
    .option = ticket_option,
};

int console_ticket(int argc, char **argv)
{
	struct ticket_request q;
	struct ticket_args a;
	struct tether_ctrl_msg ans;
	int sub, status;

	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
				  strcmp(argv[1], "-h") == 0)) {
			fputs(ticket_usage, stdout);
			return 0;
		}
		fputs(ticket_usage, stderr);
		return CONSOLE_EXIT_USAGE;
	}
	memset(&a, 0, sizeof(a));
	memset(&q, 0, sizeof(q));
	status =
	    console_opts_parse(&ticket_opts, argc - 1, argv + 1, &a, &a.args);
	if (status >= 0)
		return status;
	sub = tether_ctrl_word(sub_names, SUBS, argv[1]);
	status = build_request(argv[1], sub, &a, &q);
	if (status != 0)
		return status;
	if (console_call(q.type, &q.body, q.name[0] != '\0' ? q.name : NULL,
			 &ans) != 0)
		return CONSOLE_EXIT_FAIL;
	status =
	    print_answer((enum sub)sub, &a, &ans) == 0 ? 0 : CONSOLE_EXIT_FAIL;
	tether_ctrl_msg_free(&ans);
	return status;
}
