/*
 * The console's audit lines (console/console-audit.c): each event the
 * relay writes has a renderer that reads its detail, a detail without
 * what a renderer reads falls back to the generic "event key=value" line
 * (nothing hidden), an unknown event gets the generic line, and what is
 * too long is cut, never overrun.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "console.h"

/* What row (event, detail as JSON text or NULL) reads as. */
static void describe(const char *event, const char *detail, char *buf,
		     size_t len)
{
	struct tether_ctrl_audit_row ev = {
	    .id = 1, .ts = 1765000000, .actor = "tech:alice", .event = event};

	ev.detail =
	    detail != NULL ? json_loads(detail, JSON_DECODE_ANY, NULL) : NULL;
	cr_assert(detail == NULL || ev.detail != NULL, "bad JSON: %s", detail);
	console_audit_describe(&ev, buf, len);
	json_decref(ev.detail);
}

static void expect(const char *event, const char *detail, const char *want)
{
	char buf[512];

	describe(event, detail, buf, sizeof(buf));
	cr_assert_str_eq(buf, want, "%s %s", event, detail ? detail : "null");
}

Test(console_audit, known_events_read_as_sentences)
{
	expect("ticket_created", NULL, "created the ticket");
	expect("ticket_closed", "{\"resolution\":\"new toner\"}",
	       "closed the ticket: new toner");
	expect("ticket_reopened", "{\"resolution\":\"x\",\"closed_at\":5}",
	       "reopened the ticket (it was closed: x)");
	expect("ticket_comment",
	       "{\"ticket\":\"T-1\",\"by\":\"alice\",\"comment\":3}",
	       "commented (comment 3)");
	expect("invite_created", "{\"nameplate\":\"85\",\"expires_in\":600}",
	       "invited the customer: code 85-..., valid 10 min");
	expect("agent_joined",
	       "{\"nameplate\":\"85\",\"addr\":\"127.0.0.1:4000\",\"facts\":"
	       "{\"user\":\"jo\",\"hostname\":\"pc\",\"os\":\"Debian\"}}",
	       "customer agent joined from 127.0.0.1:4000 (jo@pc) running "
	       "Debian");
	expect("paired", "{\"nameplate\":\"85\",\"technician\":\"alice\"}",
	       "code confirmed: paired with alice");
	expect("channel_open",
	       "{\"channel\":3,\"kind\":\"exec\",\"technician\":\"alice\"}",
	       "channel exec opened (#3) by alice");
	expect("channel_close",
	       "{\"channel\":3,\"kind\":\"shell\",\"bytes_to_agent\":10,"
	       "\"bytes_to_console\":2048,\"duration_ms\":1500,\"reason\":"
	       "\"closed by the agent\"}",
	       "channel shell closed (#3, 1.5 s, 10 B sent, 2.0 KiB received): "
	       "closed by the agent");
	expect(
	    "xfer",
	    "{\"channel\":4,\"direction\":\"get\",\"type\":\"file\",\"path\":"
	    "\"/etc/hosts\",\"size\":1229,\"ok\":true}",
	    "file get /etc/hosts 1.2 KiB");
	expect("xfer",
	       "{\"direction\":\"put\",\"type\":\"file\",\"path\":\"/x\","
	       "\"size\":0,\"ok\":false,\"reason\":\"no space\"}",
	       "file put /x 0 B FAILED: no space");
	expect("forward",
	       "{\"channel\":5,\"host\":\"127.0.0.1\",\"port\":22,\"ok\":false,"
	       "\"reason\":\"refused\"}",
	       "forward to 127.0.0.1:22 refused: refused");
	expect("session_ended",
	       "{\"nameplate\":\"85\",\"was\":\"paired\",\"reason\":\"ticket "
	       "closed\"}",
	       "session 85-... ended (was paired): ticket closed");
	expect(
	    "health_open",
	    "{\"agent\":\"web-01\",\"check\":\"disk\",\"state\":\"CRITICAL\","
	    "\"output\":\"95% full\"}",
	    "web-01/disk is CRITICAL: 95% full");
}

Test(console_audit, the_rest_reads_as_key_value)
{
	expect("teleported", "{\"to\":\"mars\",\"n\":2}",
	       "teleported to=mars n=2");
	expect("teleported", NULL, "teleported");
	expect("teleported", "\"plain text\"", "teleported plain text");
	/* A known event whose detail lacks what its renderer reads. */
	expect("xfer", "{\"channel\":1}", "xfer channel=1");
	expect("channel_open", "{}", "channel_open");
}

Test(console_audit, long_lines_are_cut_not_overrun)
{
	char path[600], detail[700], buf[64];

	memset(path, 'p', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	snprintf(detail, sizeof(detail),
		 "{\"direction\":\"get\",\"path\":\"%s\",\"size\":1}", path);
	memset(buf, 'X', sizeof(buf));
	describe("xfer", detail, buf, 32);
	cr_assert_eq(strlen(buf), 31);
	cr_assert_eq(strncmp(buf, "file get ppp", 12), 0, "%s", buf);
	cr_assert_eq(buf[40], 'X', "nothing written past the buffer");
}
