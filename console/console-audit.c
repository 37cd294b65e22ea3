/*
 * A ticket's audit rows as lines people read ("12:03:09 alice channel exec
 * opened"): one renderer per event the relay writes (relay_audit() in
 * relay/), each reading the members of its detail, and a generic one for
 * events this console does not know (a newer relay's), which lists the
 * detail's members as key=value.  A detail that lacks what its renderer
 * reads falls back to the generic line too, so nothing is hidden.  --json
 * keeps the rows as the relay sent them; this is for people only.
 */
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include <tether/text.h>

#include "console.h"

/* A line being written: what does not fit is cut, never overrun. */
struct line {
	char *buf;
	size_t len;
	size_t used;
};

__attribute__((format(printf, 2, 3))) static void put(struct line *l,
						      const char *fmt, ...)
{
	va_list ap;
	int n;

	if (l->used + 1 >= l->len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(l->buf + l->used, l->len - l->used, fmt, ap);
	va_end(ap);
	if (n > 0)
		l->used += (size_t)n < l->len - l->used ? (size_t)n
							: l->len - l->used - 1;
}

/* The detail's string member key, or NULL. */
static const char *str(const json_t *d, const char *key)
{
	return json_string_value(json_object_get(d, key));
}

/* The detail's integer member key into *v: true if it is one. */
static bool num(const json_t *d, const char *key, int64_t *v)
{
	const json_t *x = json_object_get(d, key);

	if (!json_is_integer(x))
		return false;
	*v = json_integer_value(x);
	return true;
}

static void put_size(struct line *l, int64_t bytes)
{
	char size[32];

	tether_text_size(bytes > 0 ? (uint64_t)bytes : 0, size, sizeof(size));
	put(l, "%s", size);
}

/* ": reason" when there is one. */
static void put_reason(struct line *l, const json_t *d, const char *key)
{
	const char *why = str(d, key);

	if (why != NULL && why[0] != '\0')
		put(l, ": %s", why);
}

/*
 * The renderers: true when the line is written, false to leave it to the
 * generic one (the detail lacks a member the renderer needs).
 */
typedef bool (*render_fn)(const json_t *d, struct line *l);

static bool r_ticket_created(const json_t *d, struct line *l)
{
	(void)d;
	put(l, "created the ticket");
	return true;
}

static bool r_ticket_closed(const json_t *d, struct line *l)
{
	put(l, "closed the ticket");
	put_reason(l, d, "resolution");
	return true;
}

static bool r_ticket_reopened(const json_t *d, struct line *l)
{
	const char *was = str(d, "resolution");

	put(l, "reopened the ticket");
	if (was != NULL)
		put(l, " (it was closed: %s)", was);
	return true;
}

static bool r_ticket_comment(const json_t *d, struct line *l)
{
	int64_t id;

	put(l, "commented");
	if (num(d, "comment", &id))
		put(l, " (comment %lld)", (long long)id);
	return true;
}

static bool r_invite_created(const json_t *d, struct line *l)
{
	const char *np = str(d, "nameplate");
	int64_t secs;

	if (np == NULL)
		return false;
	put(l, "invited the customer: code %s-...", np);
	if (num(d, "expires_in", &secs))
		put(l, ", valid %lld min", (long long)((secs + 59) / 60));
	return true;
}

static bool r_invite_expired(const json_t *d, struct line *l)
{
	const char *np = str(d, "nameplate");

	if (np == NULL)
		return false;
	put(l, "code %s-... expired unused", np);
	return true;
}

static bool r_join_failed(const json_t *d, struct line *l)
{
	const char *np = str(d, "nameplate"), *addr = str(d, "addr");

	put(l, "a customer's join failed");
	if (np != NULL)
		put(l, " (code %s-...)", np);
	if (addr != NULL)
		put(l, " from %s", addr);
	put_reason(l, d, "why");
	return true;
}

static bool r_agent_joined(const json_t *d, struct line *l)
{
	const json_t *f = json_object_get(d, "facts");
	const char *addr = str(d, "addr");

	put(l, "customer agent joined");
	if (addr != NULL)
		put(l, " from %s", addr);
	if (str(f, "user") != NULL || str(f, "hostname") != NULL)
		put(l, " (%s@%s)", str(f, "user") ? str(f, "user") : "?",
		    str(f, "hostname") ? str(f, "hostname") : "?");
	if (str(f, "os") != NULL)
		put(l, " running %s", str(f, "os"));
	return true;
}

static bool r_agent_reconnected(const json_t *d, struct line *l)
{
	put(l, "customer agent reconnected");
	if (str(d, "addr") != NULL)
		put(l, " from %s", str(d, "addr"));
	return true;
}

static bool r_agent_disconnected(const json_t *d, struct line *l)
{
	put(l, "customer agent disconnected");
	if (str(d, "addr") != NULL)
		put(l, " (%s)", str(d, "addr"));
	return true;
}

static bool r_agent_left(const json_t *d, struct line *l)
{
	(void)d;
	put(l, "customer ended the session");
	return true;
}

static bool r_declined(const json_t *d, struct line *l)
{
	(void)d;
	put(l, "customer declined the session");
	return true;
}

static bool r_join_abandoned(const json_t *d, struct line *l)
{
	(void)d;
	put(l, "customer abandoned the join before confirming");
	return true;
}

static bool r_paired(const json_t *d, struct line *l)
{
	const char *tech = str(d, "technician");

	put(l, "code confirmed: paired");
	if (tech != NULL)
		put(l, " with %s", tech);
	return true;
}

static bool r_pake_failed(const json_t *d, struct line *l)
{
	const char *by = str(d, "by");

	put(l, "wrong code entered");
	if (str(d, "nameplate") != NULL)
		put(l, " for %s-...", str(d, "nameplate"));
	if (by != NULL)
		put(l, " (seen by the %s)", by);
	return true;
}

static bool r_code_burned(const json_t *d, struct line *l)
{
	const char *np = str(d, "nameplate");

	if (np == NULL)
		return false;
	put(l, "code %s-... burned", np);
	put_reason(l, d, "reason");
	return true;
}

static bool r_session_ended(const json_t *d, struct line *l)
{
	const char *was = str(d, "was");

	put(l, "session");
	if (str(d, "nameplate") != NULL)
		put(l, " %s-...", str(d, "nameplate"));
	put(l, " ended");
	if (was != NULL)
		put(l, " (was %s)", was);
	put_reason(l, d, "reason");
	return true;
}

static bool r_channel_open(const json_t *d, struct line *l)
{
	const char *kind = str(d, "kind"), *tech = str(d, "technician");
	int64_t ch;

	if (kind == NULL)
		return false;
	put(l, "channel %s opened", kind);
	if (num(d, "channel", &ch))
		put(l, " (#%lld)", (long long)ch);
	if (tech != NULL)
		put(l, " by %s", tech);
	return true;
}

static bool r_channel_refused(const json_t *d, struct line *l)
{
	const char *kind = str(d, "kind");

	if (kind == NULL)
		return false;
	put(l, "channel %s refused by the agent", kind);
	put_reason(l, d, "reason");
	return true;
}

static bool r_channel_close(const json_t *d, struct line *l)
{
	const char *kind = str(d, "kind");
	int64_t ch, in = 0, out = 0, ms = 0;

	if (kind == NULL || !num(d, "channel", &ch))
		return false;
	put(l, "channel %s closed (#%lld", kind, (long long)ch);
	if (num(d, "duration_ms", &ms))
		put(l, ", %.1f s", (double)ms / 1000);
	if (num(d, "bytes_to_agent", &in) && num(d, "bytes_to_console", &out)) {
		put(l, ", ");
		put_size(l, in);
		put(l, " sent, ");
		put_size(l, out);
		put(l, " received");
	}
	put(l, ")");
	put_reason(l, d, "reason");
	return true;
}

static bool r_xfer(const json_t *d, struct line *l)
{
	const char *dir = str(d, "direction"), *path = str(d, "path");
	const char *type = str(d, "type");
	int64_t size;

	if (dir == NULL || path == NULL)
		return false;
	put(l, "file %s %s", dir, path);
	if (type != NULL && strcmp(type, "file") != 0)
		put(l, " (%s)", type);
	else if (num(d, "size", &size)) {
		put(l, " ");
		put_size(l, size);
	}
	if (json_is_false(json_object_get(d, "ok"))) {
		put(l, " FAILED");
		put_reason(l, d, "reason");
	}
	return true;
}

static bool r_forward(const json_t *d, struct line *l)
{
	const char *host = str(d, "host");
	int64_t port;

	if (host == NULL || !num(d, "port", &port))
		return false;
	put(l, "forward to %s:%lld", host, (long long)port);
	if (json_is_false(json_object_get(d, "ok"))) {
		put(l, " refused");
		put_reason(l, d, "reason");
	}
	return true;
}

static bool r_diag_attached(const json_t *d, struct line *l)
{
	int64_t size;

	put(l, "diagnostics saved");
	if (num(d, "size", &size)) {
		put(l, " (");
		put_size(l, size);
		put(l, ")");
	}
	return true;
}

static bool r_diag_failed(const json_t *d, struct line *l)
{
	put(l, "diagnostics failed");
	put_reason(l, d, "reason");
	return true;
}

/* Health tickets (relay-health.c): a check's state opened or noted it. */
static bool r_health(const json_t *d, struct line *l)
{
	const char *agent = str(d, "agent"), *check = str(d, "check");
	const char *state = str(d, "state"), *out = str(d, "output");

	if (agent == NULL || check == NULL || state == NULL)
		return false;
	put(l, "%s/%s is %s", agent, check, state);
	if (out != NULL && out[0] != '\0')
		put(l, ": %s", out);
	if (str(d, "note") != NULL)
		put(l, " (%s)", str(d, "note"));
	return true;
}

static const struct {
	const char *event;
	render_fn render;
} renderers[] = {
    {"ticket_created", r_ticket_created},
    {"ticket_closed", r_ticket_closed},
    {"ticket_reopened", r_ticket_reopened},
    {"ticket_comment", r_ticket_comment},
    {"invite_created", r_invite_created},
    {"invite_expired", r_invite_expired},
    {"join_failed", r_join_failed},
    {"agent_joined", r_agent_joined},
    {"agent_reconnected", r_agent_reconnected},
    {"agent_disconnected", r_agent_disconnected},
    {"agent_left", r_agent_left},
    {"declined", r_declined},
    {"join_abandoned", r_join_abandoned},
    {"paired", r_paired},
    {"pake_failed", r_pake_failed},
    {"code_burned", r_code_burned},
    {"session_ended", r_session_ended},
    {"channel_open", r_channel_open},
    {"channel_refused", r_channel_refused},
    {"channel_close", r_channel_close},
    {"xfer", r_xfer},
    {"forward", r_forward},
    {"diag_attached", r_diag_attached},
    {"diag_failed", r_diag_failed},
    {"health_open", r_health},
    {"health_change", r_health},
    {"health_recovered", r_health},
    {"health_flapping", r_health},
};

/* "event key=value ..." for what no renderer words. */
static void generic(const char *event, const json_t *d, struct line *l)
{
	const char *key;
	json_t *v;
	char *text;

	put(l, "%s", event);
	if (json_is_string(d)) {
		put(l, " %s", json_string_value(d));
		return;
	}
	if (!json_is_object(d))
		return;
	json_object_foreach ((json_t *)d, key, v) {
		if (json_is_string(v)) {
			put(l, " %s=%s", key, json_string_value(v));
			continue;
		}
		text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		put(l, " %s=%s", key, text != NULL ? text : "?");
		free(text);
	}
}

void console_audit_describe(const struct tether_ctrl_audit_row *ev, char *buf,
			    size_t len)
{
	struct line l = {buf, len, 0};
	size_t i;

	if (len == 0)
		return;
	buf[0] = '\0';
	for (i = 0; i < sizeof(renderers) / sizeof(renderers[0]); i++) {
		if (strcmp(renderers[i].event, ev->event) != 0)
			continue;
		if (renderers[i].render(ev->detail, &l))
			return;
		l.used = 0; /* half written: start over, generic */
		buf[0] = '\0';
		break;
	}
	generic(ev->event, ev->detail, &l);
}

void console_audit_print(const struct tether_ctrl_audit_row *rows, size_t n,
			 int64_t *day)
{
	char text[1024], clock[16], date[16];
	struct tm tm;
	time_t t;
	size_t i;

	for (i = 0; i < n; i++) {
		const struct tether_ctrl_audit_row *ev = &rows[i];

		t = (time_t)ev->ts;
		if (ev->ts <= 0 || gmtime_r(&t, &tm) == NULL) {
			snprintf(clock, sizeof(clock), "--:--:--");
		} else {
			/* A line with the date (UTC) whenever it changes. */
			if (ev->ts / 86400 != *day) {
				*day = ev->ts / 86400;
				strftime(date, sizeof(date), "%Y-%m-%d", &tm);
				printf("  %s (UTC)\n", date);
			}
			strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
		}
		console_audit_describe(ev, text, sizeof(text));
		printf("  %s ", clock);
		tether_text_print_clean(stdout, ev->actor);
		putchar(' ');
		tether_text_print_clean(stdout, text);
		putchar('\n');
	}
}
