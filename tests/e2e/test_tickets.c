/*
 * End-to-end: tickets that stay readable (docs/cli.md, "Tickets"):
 * comments, reopening, list filters and pages with the "how many more"
 * line, the audit trail paged by the relay (10,000 rows, every page under
 * the frame cap) and rendered as readable lines, and long titles shortened
 * in tables but never in --json.  Rows and tickets the console cannot make
 * (health tickets, thousands of audit rows) are written through the
 * relay's own store into the running relay's database.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include <tether/ctrl.h>

#include "harness.h"
#include "relay-store.h"

TestSuite(tickets, .init = h_setup, .fini = h_teardown);

static void relay_up(struct h_relay *r)
{
	h_relay_up(r, NULL);
	h_login(r);
}

/* The running relay's store, opened beside it (WAL lets both write). */
static struct relay_store *store_of(const struct h_relay *r)
{
	struct relay_store *st = NULL;
	char db[H_PATH_MAX + 16];

	snprintf(db, sizeof(db), "%s/tether.db", r->data);
	cr_assert_eq(relay_store_open(db, &st), 0, "open %s", db);
	return st;
}

static json_t *json_of(const struct h_res *res, const char *what)
{
	json_error_t jerr;
	json_t *j = json_loads(res->out, 0, &jerr);

	cr_assert(j != NULL, "%s: not JSON: %s", what, res->out);
	return j;
}

/* Lines of s that contain part. */
static int count_lines(const char *s, const char *part)
{
	const char *nl;
	int n = 0;

	for (; s != NULL && *s != '\0'; s = nl != NULL ? nl + 1 : NULL) {
		nl = strchr(s, '\n');
		if (memmem(s, nl != NULL ? (size_t)(nl - s) : strlen(s), part,
			   strlen(part)) != NULL)
			n++;
		if (nl == NULL)
			break;
	}
	return n;
}

/* Lines of s that start with prefix. */
static int count_starting(const char *s, const char *prefix)
{
	int n = strncmp(s, prefix, strlen(prefix)) == 0;

	for (s = strchr(s, '\n'); s != NULL; s = strchr(s + 1, '\n'))
		n += strncmp(s + 1, prefix, strlen(prefix)) == 0;
	return n;
}

/* The audit row of ticket j named event, or NULL. */
static json_t *audit_row(json_t *j, const char *event)
{
	json_t *row;
	size_t i;

	json_array_foreach (json_object_get(j, "audit"), i, row)
		if (strcmp(json_string_value(json_object_get(row, "event")),
			   event) == 0)
			return row;
	return NULL;
}

Test(tickets, comment_and_reopen, .timeout = 120)
{
	char big[TETHER_CTRL_COMMENT_MAX + 2], id[H_ID_MAX];
	struct h_relay r;
	struct h_res res;
	json_t *j, *c, *row;

	relay_up(&r);
	h_ticket_new("Printer jams", id, sizeof(id));

	h_console(&res, NULL, "ticket", "comment", id,
		  "called back,\nno answer", NULL);
	h_expect(&res, 0, "T-1\n", "", "ticket comment");
	h_res_free(&res);
	h_console(&res, NULL, "ticket", "comment", id, "rebooted it", "--json",
		  NULL);
	h_expect(&res, 0, NULL, "", "ticket comment --json");
	j = json_of(&res, "ticket comment --json");
	c = json_object_get(j, "comment");
	cr_assert_str_eq(json_string_value(json_object_get(j, "ticket")),
			 "T-1");
	cr_assert_str_eq(json_string_value(json_object_get(c, "text")),
			 "rebooted it");
	cr_assert_eq(json_integer_value(json_object_get(c, "id")), 2);
	cr_assert(json_is_string(json_object_get(c, "by")));
	cr_assert(json_is_string(json_object_get(c, "at")));
	json_decref(j);
	h_res_free(&res);

	/* Too long, or on no ticket: clear errors, exit 255. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	h_console(&res, NULL, "ticket", "comment", id, big, NULL);
	h_expect_fail(&res, 255,
		      "a comment is 1 to 2000 bytes (this one is 2001)",
		      "a long comment");
	h_res_free(&res);
	h_console(&res, NULL, "ticket", "comment", "T-9", "x", NULL);
	h_expect_fail(&res, 255, "no such ticket T-9", "comment on T-9");
	h_res_free(&res);
	h_console(&res, NULL, "ticket", "comment", id, NULL);
	h_expect_fail(&res, 2, "expected T-N and TEXT", "comment without text");
	h_res_free(&res);

	/* Shown with author and time, the text's own lines kept. */
	h_console_ok(&res, NULL, "ticket", "show", id, NULL);
	cr_assert(strstr(res.out, "Comments:\n"), "%s", res.out);
	cr_assert(strstr(res.out, "    called back,\n    no answer\n"), "%s",
		  res.out);
	cr_assert(strstr(res.out, "    rebooted it\n"), "%s", res.out);
	cr_assert(strstr(res.out, " commented (comment 2)\n"), "%s", res.out);
	h_res_free(&res);
	j = h_ticket_show(id);
	cr_assert_eq(json_array_size(json_object_get(j, "comments")), 2);
	row = audit_row(j, "ticket_comment");
	cr_assert(row != NULL, "no ticket_comment row");
	cr_assert_str_eq(json_string_value(json_object_get(
			     json_object_get(row, "detail"), "ticket")),
			 "T-1");
	cr_assert(json_is_string(
	    json_object_get(json_object_get(row, "detail"), "by")));
	cr_assert_null(json_object_get(json_object_get(row, "detail"), "text"),
		       "the text is the comment table's, not the audit's");
	json_decref(j);

	/* Closed, a ticket says how to reopen it; reopened, it is open. */
	h_console_ok(&res, NULL, "ticket", "close", id, "--resolution",
		     "new toner", NULL);
	h_res_free(&res);
	h_console(&res, NULL, "invite", id, NULL);
	h_expect_fail(&res, 255,
		      "T-1 is closed (run: tether ticket reopen T-1 to work on "
		      "it again)",
		      "invite on a closed ticket");
	h_res_free(&res);
	h_console(&res, NULL, "ticket", "reopen", id, NULL);
	h_expect(&res, 0, "T-1\n", "", "ticket reopen");
	h_res_free(&res);
	h_console(&res, NULL, "ticket", "reopen", id, NULL);
	h_expect_fail(&res, 255, "T-1 is open already", "reopen an open one");
	h_res_free(&res);
	h_console(&res, NULL, "ticket", "reopen", "T-9", NULL);
	h_expect_fail(&res, 255, "no such ticket T-9", "reopen T-9");
	h_res_free(&res);

	h_console_ok(&res, NULL, "ticket", "close", id, "--resolution", "again",
		     NULL);
	h_res_free(&res);
	h_console(&res, NULL, "ticket", "reopen", id, "--json", NULL);
	h_expect(&res, 0, NULL, "", "ticket reopen --json");
	j = json_of(&res, "ticket reopen --json");
	cr_assert_str_eq(json_string_value(json_object_get(j, "status")),
			 "open");
	cr_assert(json_is_null(json_object_get(j, "resolution")) ||
		      json_object_get(j, "resolution") == NULL,
		  "the resolution is cleared: %s", res.out);
	json_decref(j);
	h_res_free(&res);

	j = h_ticket_show(id);
	row = audit_row(j, "ticket_reopened");
	cr_assert(row != NULL, "no ticket_reopened row");
	cr_assert_str_eq(json_string_value(json_object_get(
			     json_object_get(row, "detail"), "resolution")),
			 "new toner", "the audit keeps what was undone");
	json_decref(j);
	h_console_ok(&res, NULL, "ticket", "show", id, NULL);
	cr_assert(strstr(res.out, "reopened the ticket (it was closed: new "
				  "toner)"),
		  "%s", res.out);
	cr_assert(strstr(res.out, "closed the ticket: new toner"), "%s",
		  res.out);
	h_res_free(&res);
	h_relay_stop(&r);
}

/* The ids of a list --json, as "T-3,T-1". */
static void list_ids(char *buf, size_t len, struct h_res *res, const char *what)
{
	json_t *j = json_of(res, what), *t;
	size_t i, k = 0;

	cr_assert(json_is_array(j), "%s: %s", what, res->out);
	buf[0] = '\0';
	json_array_foreach (j, i, t)
		k += (size_t)snprintf(
		    buf + k, len - k, "%s%s", i > 0 ? "," : "",
		    json_string_value(json_object_get(t, "id")));
	json_decref(j);
}

/* `tether ticket list ARGS... --json`: its ids; *err its stderr. */
#define LIST(buf, ...)                                                         \
	do {                                                                   \
		struct h_res res_;                                             \
                                                                               \
		h_console(&res_, NULL, "ticket", "list", __VA_ARGS__,          \
			  "--json", NULL);                                     \
		h_expect(&res_, 0, NULL, NULL, "ticket list --json");          \
		list_ids(buf, sizeof(buf), &res_, "ticket list");              \
		snprintf(err, sizeof(err), "%s", res_.err);                    \
		h_res_free(&res_);                                             \
	} while (0)

Test(tickets, list_filters_and_pages, .timeout = 120)
{
	char ids[4096], err[512], title[64];
	struct relay_store *st;
	struct h_relay r;
	struct h_res res;
	int64_t tid;
	int i;

	relay_up(&r);
	st = store_of(&r);
	/* T-1..T-60: every third health, T-5 and T-7 closed. */
	for (i = 1; i <= 60; i++) {
		snprintf(title, sizeof(title), "%s %d",
			 i == 10   ? "disk 90% full"
			 : i == 11 ? "disk 90x full"
				   : "ticket",
			 i);
		cr_assert_eq(relay_store_ticket_new(st, title,
						    i == 20   ? "ACME / Jo"
						    : i == 21 ? "acme_b"
							      : "Zed",
						    i % 3 == 0
							? TETHER_SOURCE_HEALTH
							: TETHER_SOURCE_MANUAL,
						    0, &tid),
			     0);
	}
	cr_assert_eq(relay_store_ticket_close(st, 5, "x"), 0);
	cr_assert_eq(relay_store_ticket_close(st, 7, "x"), 0);
	relay_store_close(st);

	/* Newest first, 50 by default, and how to see the rest. */
	h_console_ok(&res, NULL, "ticket", "list", NULL);
	cr_assert_eq(count_starting(res.out, "T-"), 50, "%s", res.out);
	cr_assert(strstr(res.out, "ID    STATUS") == res.out, "%s", res.out);
	cr_assert(strstr(res.out, "\nT-60 ") && !strstr(res.out, "\nT-10 "),
		  "%s", res.out);
	cr_assert(strstr(res.out, "\n10 more: tether ticket list --before "
				  "T-11\n"),
		  "%s", res.out);
	h_res_free(&res);
	h_console_ok(&res, NULL, "ticket", "list", "--before", "T-11", NULL);
	cr_assert_eq(count_starting(res.out, "T-"), 10, "%s", res.out);
	cr_assert_null(strstr(res.out, "more:"), "%s", res.out);
	h_res_free(&res);

	LIST(ids, "--limit", "3");
	cr_assert_str_eq(ids, "T-60,T-59,T-58");
	cr_assert_str_eq(err, "57 more: tether ticket list --limit 3 --before "
			      "T-58\n");
	LIST(ids, "--status", "closed");
	cr_assert_str_eq(ids, "T-7,T-5");
	LIST(ids, "--status", "all", "--before", "T-6", "--limit", "2");
	cr_assert_str_eq(ids, "T-5,T-4");
	cr_assert_str_eq(err, "3 more: tether ticket list --status all --limit "
			      "2 --before T-4\n");
	LIST(ids, "--status", "open", "--before", "T-9", "--limit", "500");
	cr_assert_str_eq(ids, "T-8,T-6,T-4,T-3,T-2,T-1");
	LIST(ids, "--source", "health", "--before", "T-13");
	cr_assert_str_eq(ids, "T-12,T-9,T-6,T-3");
	LIST(ids, "--source", "manual", "--status", "closed");
	cr_assert_str_eq(ids, "T-7,T-5");
	LIST(ids, "--customer", "acme");
	cr_assert_str_eq(ids, "T-21,T-20", "a substring, any case");
	LIST(ids, "--customer", "acme_");
	cr_assert_str_eq(ids, "T-21", "_ is no wildcard");
	LIST(ids, "--search", "90%");
	cr_assert_str_eq(ids, "T-10", "%% is no wildcard");
	LIST(ids, "--search", "DISK");
	cr_assert_str_eq(ids, "T-11,T-10");
	LIST(ids, "--search", "jo");
	cr_assert_str_eq(ids, "T-20", "search: the customer too");
	LIST(ids, "--search", "ticket 5", "--status", "open");
	cr_assert_str_eq(ids, "T-59,T-58,T-57,T-56,T-55,T-54,T-53,T-52,T-51,"
			      "T-50");
	cr_assert_str_eq(err, "");
	LIST(ids, "--search", "nothing like it");
	cr_assert_str_eq(ids, "");

	/* The next-page line keeps every filter, quoted for the shell. */
	h_console_ok(&res, NULL, "ticket", "list", "--search", "ticket",
		     "--customer", "Zed", "--limit", "1", NULL);
	cr_assert(strstr(res.out, "55 more: tether ticket list --customer Zed "
				  "--search ticket --limit 1 --before T-60\n"),
		  "%s", res.out);
	h_res_free(&res);
	h_console_ok(&res, NULL, "ticket", "list", "--search", "ticket 1",
		     "--limit", "1", NULL);
	cr_assert(strstr(res.out, "more: tether ticket list --search 'ticket "
				  "1' --limit 1 --before T-19\n"),
		  "%s", res.out);
	h_res_free(&res);

	/* Bad values: usage errors that say what is wanted. */
	h_console(&res, NULL, "ticket", "list", "--limit", "501", NULL);
	h_expect_fail(&res, 2, "--limit is a number from 1 to 500",
		      "--limit 501");
	h_res_free(&res);
	h_console(&res, NULL, "ticket", "list", "--limit", "0", NULL);
	h_expect_fail(&res, 2, "--limit is a number from 1 to 500",
		      "--limit 0");
	h_res_free(&res);
	h_console(&res, NULL, "ticket", "list", "--status", "gone", NULL);
	h_expect_fail(&res, 2, "--status is open, closed or all", "--status");
	h_res_free(&res);
	h_console(&res, NULL, "ticket", "list", "--source", "robot", NULL);
	h_expect_fail(&res, 2, "--source is manual or health", "--source");
	h_res_free(&res);
	h_console(&res, NULL, "ticket", "list", "--before", "X-1", NULL);
	h_expect_fail(&res, 2, "bad ticket X-1", "--before");
	h_res_free(&res);
	h_console(&res, NULL, "ticket", "show", "T-1", "--source", "health",
		  NULL);
	h_expect_fail(&res, 2, "option not valid for ticket show", "show");
	h_res_free(&res);
	h_relay_stop(&r);
}

Test(tickets, long_titles_are_shortened_in_tables, .timeout = 120)
{
	char title[91], id[H_ID_MAX];
	const char *line, *nl;
	struct h_relay r;
	struct h_res res;
	json_t *j;

	relay_up(&r);
	memset(title, 'T', 90);
	title[90] = '\0';
	memcpy(title, "Customer's", 10);
	h_ticket_new(title, id, sizeof(id));
	h_ticket_new("short one", id, sizeof(id));
	h_console_ok(&res, NULL, "ticket", "list", NULL);
	for (line = res.out; *line != '\0'; line = nl + 1) {
		nl = strchr(line, '\n');
		cr_assert(nl != NULL);
		cr_assert_leq(nl - line, 120, "a row of %d columns: %.*s",
			      (int)(nl - line), (int)(nl - line), line);
	}
	cr_assert(strstr(res.out, "Customer'sTTTT"), "%s", res.out);
	cr_assert(strstr(res.out, "TTT...  "), "an ellipsis: %s", res.out);
	cr_assert_null(strstr(res.out, title), "%s", res.out);
	h_res_free(&res);
	h_console_ok(&res, NULL, "ticket", "list", "--json", NULL);
	j = json_of(&res, "ticket list --json");
	cr_assert_str_eq(
	    json_string_value(json_object_get(json_array_get(j, 1), "title")),
	    title, "--json keeps the whole title");
	json_decref(j);
	h_res_free(&res);
	h_relay_stop(&r);
}

#define ROWS 10000

/* Row i's path: long, so that 500 rows are well over one frame. */
static void row_path(char *buf, size_t len, int i)
{
	char pad[701];

	memset(pad, 'p', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	snprintf(buf, len, "/var/log/%05d/%s", i, pad);
}

Test(tickets, audit_pages_over_10000_rows, .timeout = 300)
{
	char detail[1024], path[800], want[900];
	struct relay_store *st;
	struct h_relay r;
	struct h_res res;
	json_t *j, *audit, *row;
	int64_t tid, prev = 0, first;
	size_t i;
	int k;

	relay_up(&r);
	st = store_of(&r);
	/* Made through the store: no ticket_created row, ROWS rows exactly. */
	cr_assert_eq(relay_store_ticket_new(st, "Busy", NULL,
					    TETHER_SOURCE_MANUAL, 0, &tid),
		     0);
	for (k = 1; k <= ROWS; k++) {
		row_path(path, sizeof(path), k);
		snprintf(detail, sizeof(detail),
			 "{\"channel\":3,\"direction\":\"get\",\"type\":"
			 "\"file\",\"path\":\"%s\",\"size\":%d,\"ok\":true}",
			 path, 1229 + k);
		cr_assert_eq(
		    relay_store_audit(st, "alice", tid, 0, "xfer", detail), 0);
	}
	relay_store_close(st);

	/* The default: the newest 50, and how to see the rest. */
	h_console_ok(&res, NULL, "ticket", "show", "T-1", "--json", NULL);
	j = json_of(&res, "show --json");
	audit = json_object_get(j, "audit");
	cr_assert_eq(json_array_size(audit), 50);
	cr_assert_eq(json_integer_value(json_object_get(j, "audit_more")),
		     ROWS - 50);
	first =
	    json_integer_value(json_object_get(json_array_get(audit, 0), "id"));
	json_decref(j);
	h_res_free(&res);
	h_console_ok(&res, NULL, "ticket", "show", "T-1", NULL);
	cr_assert_eq(count_lines(res.out, " alice file get /var/log/"), 50);
	cr_assert(strstr(res.out, "Audit trail (the 50 newest of 10000 "
				  "rows):\n"),
		  "%s", res.out);
	row_path(path, sizeof(path), ROWS);
	snprintf(want, sizeof(want), " alice file get %s 11 KiB\n", path);
	cr_assert(strstr(res.out, want), "the newest row, readable: %s",
		  res.out);
	snprintf(want, sizeof(want),
		 "  9950 earlier rows: tether ticket show T-1 --all (or "
		 "--before %lld for the page before)\n",
		 (long long)first);
	cr_assert(strstr(res.out, want), "%s", res.out);
	h_res_free(&res);

	snprintf(want, sizeof(want), "%lld", (long long)first);
	h_console_ok(&res, NULL, "ticket", "show", "T-1", "--limit", "7",
		     "--before", want, NULL);
	cr_assert_eq(count_lines(res.out, " alice file get /var/log/"), 7);
	cr_assert(strstr(res.out, "/var/log/09950/") &&
		      strstr(res.out, "/var/log/09944/") &&
		      !strstr(res.out, "/var/log/09943/"),
		  "%s", res.out);
	h_res_free(&res);

	/* 500 rows of 700-byte paths are over a frame: the relay cuts. */
	h_console_ok(&res, NULL, "ticket", "show", "T-1", "--limit", "500",
		     "--json", NULL);
	j = json_of(&res, "show --limit 500 --json");
	audit = json_object_get(j, "audit");
	cr_assert(json_array_size(audit) > 100 && json_array_size(audit) < 500,
		  "%zu rows in one page", json_array_size(audit));
	cr_assert_eq(json_integer_value(json_object_get(j, "audit_more")) +
			 (json_int_t)json_array_size(audit),
		     ROWS);
	row_path(path, sizeof(path), ROWS);
	cr_assert_str_eq(
	    json_string_value(json_object_get(
		json_object_get(
		    json_array_get(audit, json_array_size(audit) - 1),
		    "detail"),
		"path")),
	    path, "the page keeps the newest rows");
	json_decref(j);
	h_res_free(&res);

	/* --all: every row once, in order. */
	h_console_ok(&res, NULL, "ticket", "show", "T-1", "--all", "--json",
		     NULL);
	j = json_of(&res, "show --all --json");
	audit = json_object_get(j, "audit");
	cr_assert_eq(json_array_size(audit), ROWS);
	cr_assert_null(json_object_get(j, "audit_more"));
	json_array_foreach (audit, i, row) {
		int64_t id = json_integer_value(json_object_get(row, "id"));

		cr_assert_gt(id, prev, "row %zu out of order", i);
		prev = id;
		row_path(path, sizeof(path), (int)i + 1);
		cr_assert_str_eq(json_string_value(json_object_get(
				     json_object_get(row, "detail"), "path")),
				 path, "row %zu", i);
	}
	json_decref(j);
	h_res_free(&res);

	h_console_ok(&res, NULL, "ticket", "show", "T-1", "--all", NULL);
	cr_assert_eq(count_lines(res.out, " alice file get /var/log/"), ROWS);
	cr_assert(strstr(res.out, "Audit trail:\n"), "%s", res.out);
	cr_assert_null(strstr(res.out, "earlier rows"));
	cr_assert(strstr(res.out, "/var/log/00001/") <
		      strstr(res.out, "/var/log/10000/"),
		  "oldest first");
	h_res_free(&res);

	h_console(&res, NULL, "ticket", "show", "T-1", "--all", "--limit", "5",
		  NULL);
	h_expect_fail(&res, 2, "--all shows every row", "--all --limit");
	h_res_free(&res);
	h_console(&res, NULL, "ticket", "show", "T-1", "--limit", "501", NULL);
	h_expect_fail(&res, 2, "--limit is a number from 1 to 500",
		      "show --limit 501");
	h_res_free(&res);
	h_relay_stop(&r);
}

/* A real session's rows, each as a line a person reads. */
Test(tickets, audit_rows_read_as_lines, .timeout = 120)
{
	const char *const cmd[] = {"true", NULL};
	struct h_session s;
	struct h_res res;

	h_session_start(&s, "Readable", NULL);
	h_exec(&res, NULL, s.ticket, cmd);
	h_expect(&res, 0, "", "", "exec true");
	h_res_free(&res);
	h_console_ok(&res, NULL, "ticket", "show", s.ticket, NULL);
	cr_assert(strstr(res.out, " created the ticket\n"), "%s", res.out);
	cr_assert(strstr(res.out, " invited the customer: code "), "%s",
		  res.out);
	cr_assert(strstr(res.out, " agent customer agent joined from "
				  "127.0.0.1"),
		  "%s", res.out);
	cr_assert(strstr(res.out, " code confirmed: paired with "), "%s",
		  res.out);
	cr_assert(strstr(res.out, " channel exec opened (#"), "%s", res.out);
	cr_assert(strstr(res.out, " channel exec closed (#"), "%s", res.out);
	cr_assert_null(strstr(res.out, "{\""), "no raw JSON: %s", res.out);
	h_res_free(&res);
	h_proc_kill(&s.agent);
	h_relay_stop(&s.relay);
}
