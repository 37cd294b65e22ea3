/*
 * `tether sessions [--json]`: the live sessions on the relay right now
 * (docs/cli.md): who works on which ticket with which customer machine,
 * since when, over which open channels.  Admins and auditors see every
 * session, a technician the ones they invited: the relay decides, this
 * prints.
 */
#include <stdio.h>
#include <string.h>

#include "console.h"

static const char sessions_usage[] =
    "Usage: tether sessions [--json]\n"
    "\n"
    "Lists the live sessions: ticket, technician, the customer's machine,\n"
    "whether its agent is connected, since when, and the open channels.\n"
    "Admins and auditors see every session, a technician their own.\n";

/* "host (os)" of the customer's machine and where it joined from. */
static void machine_text(const struct tether_ctrl_live_row *s, char *out,
			 size_t len)
{
	const char *host = s->has_agent ? s->agent.hostname : NULL;
	const char *user = s->has_agent ? s->agent.user : NULL;

	snprintf(out, len, "%s%s%s%s%s%s", user != NULL ? user : "",
		 user != NULL ? "@" : "", host != NULL ? host : "?",
		 s->addr != NULL ? " (" : "", s->addr != NULL ? s->addr : "",
		 s->addr != NULL ? ")" : "");
}

/* "exec, forward x2": each kind once, with its count when more. */
static void channels_text(const struct tether_ctrl_live_row *s, char *out,
			  size_t len)
{
	size_t used = 0, i, j, count;
	bool seen;
	int n;

	snprintf(out, len, "-");
	for (i = 0; i < s->nchannels; i++) {
		for (seen = false, j = 0; j < i && !seen; j++)
			seen = strcmp(s->channels[j], s->channels[i]) == 0;
		if (seen)
			continue;
		for (count = 0, j = i; j < s->nchannels; j++)
			count += strcmp(s->channels[j], s->channels[i]) == 0;
		n = count > 1
			? snprintf(out + used, len - used, "%s%s x%zu",
				   used > 0 ? ", " : "", s->channels[i], count)
			: snprintf(out + used, len - used, "%s%s",
				   used > 0 ? ", " : "", s->channels[i]);
		if (n < 0 || (size_t)n >= len - used)
			return;
		used += (size_t)n;
	}
}

static int print_sessions(const struct tether_ctrl_sessions_ok *ok)
{
	static const char *const heads[] = {"TICKET", "TECHNICIAN", "MACHINE",
					    "AGENT",  "SINCE",	    "CHANNELS"};
	char id[TETHER_ID_TICKET_LEN], machine[512], chans[512];
	struct console_table t;
	size_t i;
	int r;

	if (ok->nsessions == 0) {
		printf("no live sessions\n");
		return 0;
	}
	console_table_init(&t, 6, heads);
	for (i = 0; i < ok->nsessions; i++) {
		const struct tether_ctrl_live_row *s = &ok->sessions[i];

		tether_id_ticket_format(s->ticket, id, sizeof(id));
		machine_text(s, machine, sizeof(machine));
		channels_text(s, chans, sizeof(chans));
		console_table_add(&t, id);
		console_table_add(&t, s->technician);
		console_table_add(&t, machine);
		console_table_add(
		    &t, s->connected
			    ? tether_ctrl_name_of(session_state, s->state)
			    : "disconnected");
		console_table_add_time(&t, s->since);
		console_table_add(&t, chans);
	}
	r = console_table_print(&t, 0, 0);
	console_table_free(&t);
	return r;
}

static const struct console_opts sessions_opts = {
    .name = "sessions",
    .usage = sessions_usage,
    .shorts = "j",
    .flags = CONSOLE_OPTS_JSON,
    .min = 0,
    .max = 0,
    .need = "sessions takes no operand",
};

int console_sessions(int argc, char **argv)
{
	const struct tether_ctrl_sessions_ok *ok;
	struct tether_ctrl_msg ans;
	struct console_args a;
	int r;

	r = console_opts_parse(&sessions_opts, argc, argv, NULL, &a);
	if (r >= 0)
		return r;
	if (console_call(TETHER_CTRL_SESSIONS, NULL, NULL, &ans) != 0)
		return CONSOLE_EXIT_FAIL;
	ok = &ans.body.sessions_ok;
	r = a.json ? console_json_print_rows(TETHER_CTRL_PART_LIVE_ROW,
					     ok->sessions, ok->nsessions,
					     sizeof(ok->sessions[0]))
		   : print_sessions(ok);
	tether_ctrl_msg_free(&ans);
	return r == 0 ? 0 : CONSOLE_EXIT_FAIL;
}
