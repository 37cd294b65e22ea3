/*
 * The enrolled agent's results queue (agent/service/queue.c): numbering,
 * cumulative acknowledgements, renumbering after the relay says where it
 * is, and the gap a full queue reports with its next result; and the
 * HOST:PORT parser every command shares (agent/session/cli.c).
 */
#include <criterion/criterion.h>

#include <string.h>

#include <tether/alloc.h>
#include <tether/ctrl.h>
#include <tether/err.h>

#include "service/check.h"
#include "service/queue.h"
#include "session/cli.h"

/* A result as check.c makes one, for check name. */
static struct agent_result *result(const char *name)
{
	struct agent_result *r = tether_calloc(1, sizeof(*r));

	cr_assert_not_null(r);
	r->check = tether_strdup(name);
	r->output = tether_strdup("OK - fine");
	cr_assert(r->check != NULL && r->output != NULL);
	r->msg.check = r->check;
	r->msg.output = r->output;
	r->msg.state = TETHER_CHECK_OK;
	r->msg.type = TETHER_CHECK_HARD;
	r->msg.attempt = 1;
	r->msg.max_attempts = 3;
	return r;
}

Test(agent_queue, numbers_and_acknowledges)
{
	struct agent_queue *q = agent_queue_new(8);
	char *text;
	size_t len;

	cr_assert_not_null(q);
	cr_expect_eq(agent_queue_push(q, result("a")), 1);
	cr_expect_eq(agent_queue_push(q, result("b")), 2);
	cr_expect_eq(agent_queue_push(q, result("c")), 3);
	cr_expect_eq(agent_queue_len(q), 3);
	/* Each is a check message the relay accepts. */
	cr_assert_eq(tether_ctrl_encode(TETHER_CTRL_CHECK, 0,
					agent_queue_at(q, 1), &text, &len),
		     0);
	cr_expect(strstr(text, "\"seq\":2") != NULL, "%s", text);
	cr_expect(strstr(text, "\"check\":\"b\"") != NULL, "%s", text);
	tether_free(text);
	agent_queue_ack(q, 2);
	cr_expect_eq(agent_queue_len(q), 1);
	cr_expect_str_eq(agent_queue_at(q, 0)->check, "c");
	cr_expect_null(agent_queue_at(q, 1));
	/* An old acknowledgement changes nothing. */
	agent_queue_ack(q, 1);
	cr_expect_eq(agent_queue_len(q), 1);
	agent_queue_free(q);
}

Test(agent_queue, renumbers_from_the_relays_count)
{
	struct agent_queue *q = agent_queue_new(8);

	agent_queue_push(q, result("a"));
	agent_queue_push(q, result("b"));
	agent_queue_renumber(q, 41);
	cr_expect_eq(agent_queue_at(q, 0)->seq, 41);
	cr_expect_eq(agent_queue_at(q, 1)->seq, 42);
	cr_expect_eq(agent_queue_next_seq(q), 43);
	cr_expect_eq(agent_queue_push(q, result("c")), 43);
	agent_queue_free(q);
}

Test(agent_queue, full_queue_drops_the_oldest_and_says_so)
{
	struct agent_queue *q = agent_queue_new(2);

	agent_queue_push(q, result("a"));
	agent_queue_push(q, result("b"));
	agent_queue_push(q, result("c")); /* a goes */
	agent_queue_push(q, result("d")); /* b goes, with a's count */
	cr_assert_eq(agent_queue_len(q), 2);
	cr_expect_str_eq(agent_queue_at(q, 0)->check, "c");
	cr_expect_eq(agent_queue_at(q, 0)->dropped, 2);
	cr_expect_eq(agent_queue_at(q, 1)->dropped, 0);
	agent_queue_free(q);
}

Test(agent_queue, single_slot_carries_the_gap_to_the_new_result)
{
	struct agent_queue *q = agent_queue_new(1);

	agent_queue_push(q, result("a"));
	agent_queue_push(q, result("b"));
	cr_assert_eq(agent_queue_len(q), 1);
	cr_expect_eq(agent_queue_at(q, 0)->seq, 2);
	cr_expect_eq(agent_queue_at(q, 0)->dropped, 1);
	agent_queue_free(q);
}

Test(agent_cli, targets)
{
	struct agent_target t;
	const char *why;

	cr_assert_eq(agent_target_parse("relay.example.com:7443", 0, &t, &why),
		     0);
	cr_expect_str_eq(t.host, "relay.example.com");
	cr_expect_eq(t.port, 7443);
	cr_assert_eq(agent_target_parse("[::1]:22", 0, &t, &why), 0);
	cr_expect_str_eq(t.host, "::1");
	cr_expect_eq(t.port, 22);
	/* A default port makes the port optional. */
	cr_assert_eq(agent_target_parse("relay", 7443, &t, &why), 0);
	cr_expect_eq(t.port, 7443);
	cr_assert_eq(agent_target_parse("[::1]", 7443, &t, &why), 0);
	cr_expect_str_eq(t.host, "::1");
	cr_expect_neq(agent_target_parse("relay", 0, &t, &why), 0);
	cr_expect_neq(agent_target_parse("::1:22", 0, &t, &why), 0);
	cr_expect_str_eq(why, "write an IPv6 address as [ADDRESS]:PORT");
	cr_expect_neq(agent_target_parse("a b:22", 0, &t, &why), 0);
	cr_expect_str_eq(why, "invalid host name");
	cr_expect_neq(agent_target_parse("a:0", 0, &t, &why), 0);
	cr_expect_neq(agent_target_parse("a:65536", 0, &t, &why), 0);
	cr_expect_neq(agent_target_parse(":22", 0, &t, &why), 0);
	cr_expect_eq(t.port, 0, "a failed parse leaves no port");
}

Test(agent_cli, target_lists_have_no_duplicates)
{
	struct agent_targets ts = {0};
	struct agent_target t;
	const char *why;

	cr_assert_eq(agent_target_parse("DB.local:5432", 0, &t, &why), 0);
	cr_assert_eq(agent_targets_add(&ts, &t), 0);
	cr_assert_eq(agent_target_parse("db.LOCAL:5432", 0, &t, &why), 0);
	cr_assert_eq(agent_targets_add(&ts, &t), 0);
	cr_expect_eq(ts.n, 1);
	cr_expect(agent_targets_have(&ts, "db.local", 5432));
	cr_expect_not(agent_targets_have(&ts, "db.local", 5433));
	agent_targets_free(&ts);
	cr_expect_eq(ts.n, 0);
}

Test(agent_cli, option_values)
{
	char *argv[] = {"x",	  "--config", "a.conf", "--config=b.conf",
			"--conf", "--config", NULL};
	bool missing = false;
	int i = 1;

	cr_expect_str_eq(agent_opt_value(6, argv, &i, "--config", &missing),
			 "a.conf");
	cr_expect_eq(i, 2);
	i = 3;
	cr_expect_str_eq(agent_opt_value(6, argv, &i, "--config", &missing),
			 "b.conf");
	i = 4;
	cr_expect_null(agent_opt_value(6, argv, &i, "--config", &missing));
	cr_expect_not(missing);
	i = 5;
	cr_expect_null(agent_opt_value(6, argv, &i, "--config", &missing));
	cr_expect(missing);
}
