/*
 * `tether sessions`: the live sessions as the relay sees them, with the
 * technician, ticket, customer machine and open channels; a technician
 * sees only the sessions they invited, an admin every one.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

TestSuite(sessions, .init = h_setup, .fini = h_teardown);

/* The only row of tether sessions --json (asserts there is one). */
static json_t *only_session(const struct h_opts *o)
{
	struct h_res res;
	json_t *v, *row;

	h_console_ok(&res, o, "sessions", "--json", NULL);
	v = json_loads(res.out, 0, NULL);
	cr_assert(json_is_array(v) && json_array_size(v) == 1,
		  "sessions --json: %s", res.out);
	h_res_free(&res);
	row = json_incref(json_array_get(v, 0));
	json_decref(v);
	return row;
}

static bool has_channel(json_t *row, const char *kind)
{
	json_t *chans = json_object_get(row, "channels"), *k;
	size_t i;

	json_array_foreach (chans, i, k)
		if (strcmp(json_string_value(k), kind) == 0)
			return true;
	return false;
}

Test(sessions, lists_live_sessions_by_owner, .timeout = 120)
{
	const char *const sleeper[] = {"sleep", "60", NULL};
	char cfg[H_PATH_MAX], env[H_PATH_MAX + 32], token[H_TOKEN_MAX];
	const char *envv[] = {env, NULL};
	struct h_opts bob = {.env = envv};
	struct h_session s;
	struct h_proc ex;
	struct h_res res;
	json_t *row;

	h_session_start(&s, "printer jams", NULL);
	h_console_start(&ex, "exec", "exec", s.ticket, "--", sleeper[0],
			sleeper[1], NULL);
	cr_assert(h_proc_wait_output(&s.agent, "runs: sleep 60", 20000),
		  "the agent never ran the command: %s",
		  h_proc_output(&s.agent));

	/* The admin who invited sees the session and its exec channel. */
	row = only_session(NULL);
	cr_assert_str_eq(json_string_value(json_object_get(row, "ticket")),
			 s.ticket);
	cr_assert_str_eq(json_string_value(json_object_get(row, "title")),
			 "printer jams");
	cr_assert_str_eq(json_string_value(json_object_get(row, "technician")),
			 "admin");
	cr_assert_str_eq(json_string_value(json_object_get(row, "state")),
			 "paired");
	cr_assert(json_is_true(json_object_get(row, "connected")));
	cr_assert(json_integer_value(json_object_get(row, "since")) > 0 ||
		      json_is_string(json_object_get(row, "since")),
		  "no since");
	cr_assert(json_is_object(json_object_get(row, "agent")),
		  "no customer machine");
	cr_assert(has_channel(row, "exec"), "no exec channel listed");
	json_decref(row);

	/* The table says the same in words. */
	h_console_ok(&res, NULL, "sessions", NULL);
	cr_assert(strstr(res.out, "TICKET") && strstr(res.out, s.ticket) &&
		      strstr(res.out, "paired") && strstr(res.out, "exec"),
		  "sessions table: %s", res.out);
	h_res_free(&res);

	/* Another technician sees none of it. */
	h_technician_add(&s.relay, "bob", "technician", token, sizeof(token));
	h_path(cfg, sizeof(cfg), "bob-config");
	cr_assert(mkdir(cfg, 0700) == 0, "mkdir %s", cfg);
	snprintf(env, sizeof(env), "XDG_CONFIG_HOME=%s", cfg);
	h_console_ok(&res, &bob, "login", s.relay.addr, "--token", token,
		     "--fingerprint", s.relay.fingerprint, NULL);
	h_res_free(&res);
	h_console_ok(&res, &bob, "sessions", "--json", NULL);
	cr_assert_str_eq(h_chomp(res.out), "[]");
	h_res_free(&res);
	h_console_ok(&res, &bob, "sessions", NULL);
	cr_assert_str_eq(res.out, "no live sessions\n");
	h_res_free(&res);

	/* Once the command is gone its channel is no longer listed. */
	h_proc_signal(&ex, SIGTERM);
	h_proc_wait(&ex, 10000);
	row = NULL;
	for (int i = 0; i < 100; i++) {
		json_decref(row);
		row = only_session(NULL);
		if (!has_channel(row, "exec"))
			break;
		usleep(50000);
	}
	cr_assert(!has_channel(row, "exec"),
		  "exec still listed after it ended");
	json_decref(row);

	h_console(&res, NULL, "sessions", "extra", NULL);
	h_expect_fail(&res, 2, "sessions takes no operand", "sessions extra");
	h_res_free(&res);
	h_proc_stop(&s.agent, SIGTERM);
	h_relay_stop(&s.relay);
}
