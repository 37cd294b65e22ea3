/*
 * `tether ticket new|list|show|comment|close|reopen|assign`: printed either as
 * JSON (--json, for scripts: the tickets as the protocol writes them) or
 * as aligned text for people.  Text from the relay (titles, names, audit
 * details, comments) may have been typed by anyone, so the readable forms
 * print it cleaned.  list and show read pages: list says how to ask for
 * the next one, show --all asks for every page of the audit on one
 * connection and prints them in order.
 */
#include <string.h>

#include <tether/alloc.h>
#include <tether/text.h>

#include "console.h"

static const char ticket_usage[] =
    "Usage: tether ticket new TITLE [--customer NAME] [--json]\n"
    "       tether ticket list [--status open|closed|all] "
    "[--source manual|health]\n"
    "                          [--assignee NAME|me|none] [--customer TEXT]\n"
    "                          [--search TEXT] [--limit N] [--before T-N] "
    "[--json]\n"
    "       tether ticket show T-N [--limit N] [--before ROW] [--all] "
    "[--json]\n"
    "       tether ticket comment T-N TEXT [--json]\n"
    "       tether ticket close T-N --resolution TEXT [--json]\n"
    "       tether ticket reopen T-N [--json]\n"
    "       tether ticket assign T-N NAME|me|none [--json]\n"
    "\n"
    "assign gives the ticket to a technician (me: yourself, none: back to\n"
    "the unassigned queue).  Admins may assign any ticket; a technician\n"
    "may take an unassigned one and give their own away.  Whoever loses\n"
    "a ticket loses their open channels and session on it at once.\n"
    "list --assignee picks the tickets of one technician (me: yours,\n"
    "none: the unassigned queue); a technician lists only the tickets\n"
    "they may see.\n";

enum sub {
	SUB_NEW,
	SUB_LIST,
	SUB_SHOW,
	SUB_CLOSE,
	SUB_COMMENT,
	SUB_REOPEN,
	SUB_ASSIGN
};

static const char *const sub_names[] = {"new",	   "list",   "show",  "close",
					"comment", "reopen", "assign"};

/* Titles and customers in the list table: a row fits 120 columns. */
#define LIST_TITLE_COLS 50
#define LIST_CUSTOMER_COLS 24

/* Long options without a short one. */
enum {
	OPT_SOURCE = CONSOLE_OPT_OWN,
	OPT_SEARCH,
	OPT_LIMIT,
	OPT_BEFORE,
	OPT_ALL,
	OPT_ASSIGNEE,
};

/* Options every ticket subcommand understands, and their values. */
struct ticket_args {
	const char *customer;
	const char *status;
	const char *resolution;
	const char *source;
	const char *search;
	const char *limit;
	const char *before;
	const char *assignee;
	bool all;
	struct console_args args;
};

/* A request of any subcommand, built from the arguments. */
struct ticket_request {
	enum tether_ctrl_type type;
	union {
		struct tether_ctrl_ticket_new new_;
		struct tether_ctrl_ticket_list list;
		struct tether_ctrl_ticket_show show;
		struct tether_ctrl_ticket_close close;
		struct tether_ctrl_ticket_comment comment;
		struct tether_ctrl_ticket_ref ref;
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

/* word as a shell reads it back: quoted unless it is plain. */
static void print_shell_word(FILE *fp, const char *word)
{
	const char *p;

	if (word[0] != '\0' &&
	    strspn(word, "abcdefghijklmnopqrstuvwxyz"
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789-_./:@,+%=") == strlen(word)) {
		tether_text_print_clean(fp, word);
		return;
	}
	fputc('\'', fp);
	for (p = word; *p != '\0'; p++) {
		if (*p == '\'')
			fputs("'\\''", fp);
		else if ((unsigned char)*p < 0x20 || *p == 0x7f)
			fputc('?', fp);
		else
			fputc(*p, fp);
	}
	fputc('\'', fp);
}

/*
 * "37 more: tether ticket list --status open --before T-113": the same
 * filters, from below the last ticket shown.
 */
static void print_more(FILE *fp, const struct ticket_args *a,
		       const struct tether_ctrl_ticket_list_ok *ok)
{
	const struct {
		const char *opt;
		const char *value;
	} kept[] = {
	    {"--status", a->status},	 {"--source", a->source},
	    {"--assignee", a->assignee}, {"--customer", a->customer},
	    {"--search", a->search},	 {"--limit", a->limit},
	};
	char name[TETHER_ID_TICKET_LEN];
	size_t i;

	if (ok->more <= 0 || ok->ntickets == 0 ||
	    tether_id_ticket_format(ok->tickets[ok->ntickets - 1].id, name,
				    sizeof(name)) != 0)
		return;
	fprintf(fp, "%lld more: tether ticket list", (long long)ok->more);
	for (i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		if (kept[i].value == NULL)
			continue;
		fprintf(fp, " %s ", kept[i].opt);
		print_shell_word(fp, kept[i].value);
	}
	fprintf(fp, " --before %s\n", name);
}

static int print_list(const struct ticket_args *a,
		      const struct tether_ctrl_ticket_list_ok *ok)
{
	static const char *const heads[] = {"ID",	"STATUS",   "TITLE",
					    "CUSTOMER", "ASSIGNEE", "CREATED"};
	struct console_table t;
	size_t i;
	int r;

	console_table_init(&t, 6, heads);
	console_table_limit(&t, 2, LIST_TITLE_COLS);
	console_table_limit(&t, 3, LIST_CUSTOMER_COLS);
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
	if (r == 0)
		print_more(stdout, a, ok);
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

/* Comments, oldest first: who and when, then the text indented. */
static void print_comments(const struct tether_ctrl_ticket *tk)
{
	char when[TETHER_CTRL_TIME_LEN];
	const char *p, *nl;
	size_t i;

	if (tk->ncomments == 0 && tk->comments_more == 0)
		return;
	printf("\nComments:\n");
	if (tk->comments_more > 0)
		printf("  (%lld older comments not shown)\n",
		       (long long)tk->comments_more);
	for (i = 0; i < tk->ncomments; i++) {
		const struct tether_ctrl_comment_row *c = &tk->comments[i];

		if (c->at == 0 || tether_ctrl_time_format(c->at, when) != 0)
			snprintf(when, sizeof(when), "-");
		printf("  %s ", when);
		tether_text_print_clean(stdout, c->by);
		putchar('\n');
		/* Line by line: a newline typed in a comment stays one. */
		for (p = c->text; p != NULL; p = nl != NULL ? nl + 1 : NULL) {
			char line[TETHER_CTRL_COMMENT_MAX + 1];
			size_t k;

			nl = strchr(p, '\n');
			k = nl != NULL ? (size_t)(nl - p) : strlen(p);
			if (k >= sizeof(line))
				k = sizeof(line) - 1;
			memcpy(line, p, k);
			line[k] = '\0';
			printf("    ");
			tether_text_print_clean(stdout, line);
			putchar('\n');
		}
	}
}

/* The pages of a ticket_show, newest first as they were asked for. */
struct pages {
	struct tether_ctrl_msg *v;
	size_t n;
	size_t cap;
};

static void pages_free(struct pages *pg)
{
	size_t i;

	for (i = 0; i < pg->n; i++)
		tether_ctrl_msg_free(&pg->v[i]);
	tether_free(pg->v);
	memset(pg, 0, sizeof(*pg));
}

static const struct tether_ctrl_ticket *page_ticket(const struct pages *pg,
						    size_t i)
{
	return &pg->v[i].body.ticket_ok.ticket;
}

static int64_t pages_rows(const struct pages *pg)
{
	int64_t rows = 0;
	size_t i;

	for (i = 0; i < pg->n; i++)
		rows += (int64_t)page_ticket(pg, i)->naudit;
	return rows;
}

/*
 * The audit, oldest first, and what is left out: how many earlier rows
 * and the commands that show them.
 */
static void print_audit(const struct ticket_request *q, const struct pages *pg)
{
	const struct tether_ctrl_ticket *last = page_ticket(pg, pg->n - 1);
	int64_t shown = pages_rows(pg), day = 0;
	size_t i;

	if (last->audit_more > 0)
		printf("\nAudit trail (the %lld newest of %lld rows):\n",
		       (long long)shown, (long long)(shown + last->audit_more));
	else
		printf("\nAudit trail:\n");
	if (shown == 0 && last->audit_more == 0) {
		printf("  none\n");
		return;
	}
	for (i = pg->n; i-- > 0;)
		console_audit_print(page_ticket(pg, i)->audit,
				    page_ticket(pg, i)->naudit, &day);
	if (last->audit_more > 0 && last->naudit > 0)
		printf("  %lld earlier rows: tether ticket show %s --all (or "
		       "--before %lld for the page before)\n",
		       (long long)last->audit_more, q->name,
		       (long long)last->audit[0].id);
}

static int print_show(const struct ticket_request *q, const struct pages *pg)
{
	const struct tether_ctrl_ticket *tk = page_ticket(pg, 0);

	print_head(tk);
	if (print_sessions(tk) != 0 || print_attachments(tk) != 0)
		return -1;
	print_comments(tk);
	print_audit(q, pg);
	return 0;
}

/*
 * The ticket as JSON: the protocol's object, with every page's rows in
 * one "audit" list, oldest first, and "audit_more" what is still left.
 */
static json_t *show_json(const struct pages *pg)
{
	json_t *v = tether_ctrl_part_to_json(TETHER_CTRL_PART_TICKET,
					     page_ticket(pg, 0));
	json_t *all = json_array(), *rows;
	int64_t more = page_ticket(pg, pg->n - 1)->audit_more;
	size_t i;

	for (i = pg->n; v != NULL && all != NULL && i-- > 0;) {
		rows = tether_ctrl_part_to_json(TETHER_CTRL_PART_TICKET,
						page_ticket(pg, i));
		if (json_array_extend(all, json_object_get(rows, "audit")) != 0)
			json_decref(all), all = NULL;
		json_decref(rows);
	}
	if (v == NULL || all == NULL ||
	    json_object_set_new(v, "audit", all) != 0) {
		json_decref(v);
		return NULL;
	}
	if (more > 0)
		json_object_set_new(v, "audit_more", json_integer(more));
	else
		json_object_del(v, "audit_more");
	return v;
}

/*
 * ticket_show, once, or with --all every page back to the first row on
 * one connection: 0, or -1 once reported.
 */
static int fetch_show(const struct ticket_args *a, struct ticket_request *q,
		      struct pages *pg)
{
	const struct tether_ctrl_ticket *tk;
	struct console_client c;
	struct tether_ctrl_msg *grown;
	int r = 0;

	if (console_client_open(&c) != 0) {
		console_client_close(&c);
		return -1;
	}
	for (;;) {
		if (pg->n == pg->cap) {
			grown = tether_reallocarray(pg->v, pg->cap * 2 + 4,
						    sizeof(*grown));
			if (grown == NULL) {
				console_error("out of memory");
				r = -1;
				break;
			}
			pg->v = grown;
			pg->cap = pg->cap * 2 + 4;
		}
		r = console_client_call(&c, q->type, &q->body, &pg->v[pg->n]);
		pg->n++;
		if (r == CONSOLE_EREMOTE)
			console_client_report_err(&pg->v[pg->n - 1].body.err,
						  q->name);
		if (r != 0) {
			r = -1;
			break;
		}
		tk = page_ticket(pg, pg->n - 1);
		/* A page without rows cannot lead further back. */
		if (!a->all || tk->audit_more == 0 || tk->naudit == 0)
			break;
		q->body.show.before = tk->audit[0].id;
	}
	if (r != 0) {
		pages_free(pg);
	}
	console_client_close(&c);
	return r;
}

static int run_show(const struct ticket_args *a, struct ticket_request *q)
{
	struct pages pg = {0};
	json_t *v;
	int r;

	if (fetch_show(a, q, &pg) != 0)
		return CONSOLE_EXIT_FAIL;
	if (a->args.json) {
		v = show_json(&pg);
		r = v != NULL ? console_json_print(v) : -1;
		if (v == NULL)
			console_error("out of memory");
		json_decref(v);
	} else {
		r = print_show(q, &pg);
	}
	pages_free(&pg);
	return r == 0 ? 0 : CONSOLE_EXIT_FAIL;
}

/* One positional T-N argument into the request. */
static int want_ticket(const struct ticket_args *a, int64_t *ticket,
		       struct ticket_request *q)
{
	if (a->args.argc != 1)
		return console_usage_error("ticket", "expected one T-N");
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
	const char *comment = sub == SUB_COMMENT ? a->args.argv[0] : NULL;

	if (!is_text(title) || !is_text(a->customer) ||
	    !is_text(a->resolution) || !is_text(a->search) ||
	    !is_text(comment)) {
		console_error("out of memory (or text that is not UTF-8)");
		return CONSOLE_EXIT_FAIL;
	}
	if (comment != NULL && strlen(comment) > TETHER_CTRL_COMMENT_MAX) {
		console_error("a comment is 1 to %d bytes (this one is %zu)",
			      TETHER_CTRL_COMMENT_MAX, strlen(comment));
		return CONSOLE_EXIT_FAIL;
	}
	if (sub == SUB_LIST && ((a->customer != NULL &&
				 strlen(a->customer) > TETHER_CTRL_TITLE_MAX) ||
				(a->search != NULL &&
				 strlen(a->search) > TETHER_CTRL_TITLE_MAX))) {
		console_error("--customer and --search take 1 to %d bytes",
			      TETHER_CTRL_TITLE_MAX);
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

/* --limit N for list and show: 0, or the usage status. */
static int want_limit(const struct ticket_args *a, int64_t *limit)
{
	uint64_t v;

	*limit = TETHER_CTRL_PAGE_DEFAULT;
	if (a->limit == NULL)
		return 0;
	if (console_opts_number(a->limit, 1, TETHER_CTRL_PAGE_MAX, &v) != 0)
		return console_usage_error("ticket",
					   "--limit is a number from 1 to %d",
					   TETHER_CTRL_PAGE_MAX);
	*limit = (int64_t)v;
	return 0;
}

/*
 * --assignee NAME|me|none into l: 0, or the usage status.  me and none
 * go as flags, never as a technician's name.
 */
static int want_assignee(const char *assignee,
			 struct tether_ctrl_ticket_list *l)
{
	if (assignee == NULL)
		return 0;
	if (strcmp(assignee, "me") == 0)
		l->assignee_me = true;
	else if (strcmp(assignee, "none") == 0)
		l->unassigned = true;
	else if (tether_id_name_valid(assignee))
		l->assignee = assignee;
	else
		return console_usage_error(
		    "ticket", "--assignee is a technician's name, me or none");
	return 0;
}

/* list's filters into its request: 0, or the usage status. */
static int build_list(const struct ticket_args *a,
		      struct tether_ctrl_ticket_list *l)
{
	char name[TETHER_ID_TICKET_LEN];
	int r;

	if (a->status != NULL && strcmp(a->status, "all") != 0) {
		r = tether_ctrl_word_of(status, a->status);
		if (r < 0)
			return console_usage_error(
			    "ticket", "--status is open, closed or all");
		l->has_status = true;
		l->status = (enum tether_ticket_status)r;
	}
	if (a->source != NULL) {
		r = tether_ctrl_word_of(source, a->source);
		if (r < 0)
			return console_usage_error(
			    "ticket", "--source is manual or health");
		l->has_source = true;
		l->source = (enum tether_ticket_source)r;
	}
	if ((a->customer != NULL && a->customer[0] == '\0') ||
	    (a->search != NULL && a->search[0] == '\0'))
		return console_usage_error(
		    "ticket", "--customer and --search need some text");
	l->customer = a->customer;
	l->search = a->search;
	if (want_assignee(a->assignee, l) != 0)
		return CONSOLE_EXIT_USAGE;
	if (a->before != NULL &&
	    console_opts_ticket("ticket", a->before, &l->before, name,
				sizeof(name)) != 0)
		return CONSOLE_EXIT_USAGE;
	return want_limit(a, &l->limit);
}

/* show's page: 0, or the usage status. */
static int build_show(const struct ticket_args *a,
		      struct tether_ctrl_ticket_show *sh)
{
	uint64_t v;

	if (a->all && (a->limit != NULL || a->before != NULL))
		return console_usage_error(
		    "ticket", "--all shows every row: not with --limit or "
			      "--before");
	if (a->before != NULL) {
		if (console_opts_number(a->before, 1, INT64_MAX, &v) != 0)
			return console_usage_error(
			    "ticket", "--before is an audit row number");
		sh->before = (int64_t)v;
	}
	if (a->all) {
		sh->limit = TETHER_CTRL_PAGE_MAX;
		return 0;
	}
	return want_limit(a, &sh->limit);
}

/* Whether sub takes each option that was given. */
static bool options_fit(int sub, const struct ticket_args *a)
{
	return (a->customer == NULL || sub == SUB_NEW || sub == SUB_LIST) &&
	       ((a->status == NULL && a->source == NULL && a->search == NULL &&
		 a->assignee == NULL) ||
		sub == SUB_LIST) &&
	       ((a->limit == NULL && a->before == NULL) || sub == SUB_LIST ||
		sub == SUB_SHOW) &&
	       (!a->all || sub == SUB_SHOW) &&
	       (a->resolution == NULL || sub == SUB_CLOSE);
}

/*
 * Builds the request for subcommand name (sub: its index, or -1): 0, or
 * the exit status once said.
 */
static int build_request(const char *name, int sub, const struct ticket_args *a,
			 struct ticket_request *q)
{
	int n = a->args.argc;

	if (sub >= 0 && !options_fit(sub, a))
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
		if (build_list(a, &q->body.list) != 0)
			return CONSOLE_EXIT_USAGE;
		break;
	case SUB_SHOW:
		q->type = TETHER_CTRL_TICKET_SHOW;
		if (want_ticket(a, &q->body.show.ticket, q) != 0 ||
		    build_show(a, &q->body.show) != 0)
			return CONSOLE_EXIT_USAGE;
		break;
	case SUB_COMMENT:
		q->type = TETHER_CTRL_TICKET_COMMENT;
		if (n != 2 || a->args.argv[1][0] == '\0')
			return console_usage_error("ticket",
						   "expected T-N and TEXT");
		if (console_opts_ticket("ticket", a->args.argv[0],
					&q->body.comment.ticket, q->name,
					sizeof(q->name)) != 0)
			return CONSOLE_EXIT_USAGE;
		q->body.comment.text = a->args.argv[1];
		/* check_text() reads the text where TITLE would be. */
		return check_text(
		    &(struct ticket_args){.args.argc = 1,
					  .args.argv = a->args.argv + 1},
		    SUB_COMMENT);
	case SUB_REOPEN:
		q->type = TETHER_CTRL_TICKET_REOPEN;
		if (want_ticket(a, &q->body.ref.ticket, q) != 0)
			return CONSOLE_EXIT_USAGE;
		break;
	case SUB_ASSIGN:
		q->type = TETHER_CTRL_TICKET_ASSIGN;
		if (n != 2)
			return console_usage_error(
			    "ticket", "expected T-N and NAME, me or none");
		if (console_opts_ticket("ticket", a->args.argv[0],
					&q->body.assign.ticket, q->name,
					sizeof(q->name)) != 0)
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
	case SUB_CLOSE:
		q->type = TETHER_CTRL_TICKET_CLOSE;
		if (want_ticket(a, &q->body.close.ticket, q) != 0)
			return CONSOLE_EXIT_USAGE;
		if (a->resolution == NULL || a->resolution[0] == '\0')
			return console_usage_error("ticket",
						   "--resolution needed");
		q->body.close.resolution = a->resolution;
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

/* The comment as the relay stored it: {"ticket","comment":{...}}. */
static json_t *comment_json(const struct tether_ctrl_msg *ans)
{
	json_t *v = tether_ctrl_answer_to_json(TETHER_CTRL_TICKET_COMMENT,
					       ans->id, &ans->body);

	json_object_del(v, "t");
	json_object_del(v, "id");
	return v;
}

static int print_answer(enum sub sub, const struct ticket_args *a,
			const struct tether_ctrl_msg *ans)
{
	const struct tether_ctrl_ticket *tk = &ans->body.ticket_ok.ticket;
	char name[TETHER_ID_TICKET_LEN];
	json_t *v;
	int r;

	if (a->args.json) {
		v = sub == SUB_LIST ? tickets_json(&ans->body.ticket_list_ok)
		    : sub == SUB_COMMENT
			? comment_json(ans)
			: tether_ctrl_part_to_json(TETHER_CTRL_PART_TICKET, tk);
		r = console_json_print(v);
		json_decref(v);
		/* The array stays the list itself; the rest is said aside. */
		if (r == 0 && sub == SUB_LIST)
			print_more(stderr, a, &ans->body.ticket_list_ok);
		return r;
	}
	if (sub == SUB_LIST)
		return print_list(a, &ans->body.ticket_list_ok);
	if (sub == SUB_ASSIGN &&
	    tether_id_ticket_format(tk->id, name, sizeof(name)) == 0) {
		if (tk->assignee != NULL)
			printf("%s is assigned to %s\n", name, tk->assignee);
		else
			printf("%s is unassigned\n", name);
		return 0;
	}
	/* new, close, reopen and comment: the id alone, for scripts. */
	if (tether_id_ticket_format(sub == SUB_COMMENT
					? ans->body.ticket_comment_ok.ticket
					: tk->id,
				    name, sizeof(name)) != 0) {
		console_error("the relay sent a malformed ticket");
		return -1;
	}
	printf("%s\n", name);
	return 0;
}

static int ticket_option(void *arg, int opt, char *optarg)
{
	struct ticket_args *a = arg;

	switch (opt) {
	case 'c':
		a->customer = optarg;
		break;
	case 's':
		a->status = optarg;
		break;
	case 'r':
		a->resolution = optarg;
		break;
	case OPT_SOURCE:
		a->source = optarg;
		break;
	case OPT_SEARCH:
		a->search = optarg;
		break;
	case OPT_LIMIT:
		a->limit = optarg;
		break;
	case OPT_BEFORE:
		a->before = optarg;
		break;
	case OPT_ASSIGNEE:
		a->assignee = optarg;
		break;
	default:
		a->all = true;
		break;
	}
	return -1;
}

static const struct option ticket_longs[] = {
    {"customer", required_argument, NULL, 'c'},
    {"status", required_argument, NULL, 's'},
    {"resolution", required_argument, NULL, 'r'},
    {"source", required_argument, NULL, OPT_SOURCE},
    {"search", required_argument, NULL, OPT_SEARCH},
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"before", required_argument, NULL, OPT_BEFORE},
    {"all", no_argument, NULL, OPT_ALL},
    {"assignee", required_argument, NULL, OPT_ASSIGNEE},
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
	sub = tether_ctrl_word(
	    sub_names, sizeof(sub_names) / sizeof(sub_names[0]), argv[1]);
	status = build_request(argv[1], sub, &a, &q);
	if (status != 0)
		return status;
	if (sub == SUB_SHOW)
		return run_show(&a, &q);
	if (console_call(q.type, &q.body, q.name[0] != '\0' ? q.name : NULL,
			 &ans) != 0)
		return CONSOLE_EXIT_FAIL;
	status =
	    print_answer((enum sub)sub, &a, &ans) == 0 ? 0 : CONSOLE_EXIT_FAIL;
	tether_ctrl_msg_free(&ans);
	return status;
}
