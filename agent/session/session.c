/*
 * The agent's relay session (session.h).  The relay client
 * (tether/client.h) connects with the pinned fingerprint, or after the
 * customer trusted the one shown, says hello, keeps the link alive and
 * reconnects with back-off; this file says what an attended agent says
 * once welcomed: join, or resume after a dropped connection.  Then the
 * customer's consent, SPAKE2 as party B and key confirmation, and once
 * paired the channels (chan.c), which reach the link only through the
 * struct agent_chan_io made here.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <tether/alloc.h>
#include <tether/buf.h>
#include <tether/client.h>
#include <tether/code.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/id.h>
#include <tether/link.h>
#include <tether/log.h>
#include <tether/msg.h>

#include "diag/text.h"
#include "session/chan.h"
#include "session/facts.h"
#include "session/file.h"
#include "session/forward.h"
#include "session/session.h"
#include "session/term.h"

#define CAPS_MAX 512
#define TITLE_MAX 256

/* How far the pairing has come; the session survives reconnects. */
enum phase {
	PH_START,   /* nothing claimed yet */
	PH_PAKE,    /* join_ok in, pake sent, waiting for pake_ok */
	PH_CONFIRM, /* resume token held, waiting for the console's confirm */
	PH_CONSENT, /* code proven, info opened: asking the customer */
	PH_PAIRED,  /* consent given: channels may open */
};

/* What the current connection is doing once welcomed. */
enum conn {
	CONN_DOWN,     /* connecting, backing off or asking */
	CONN_RESUMING, /* resume sent, waiting for resume_ok */
	CONN_READY,    /* talking */
};

struct session {
	uv_loop_t *loop;
	const struct agent_session_opts *o;
	struct tether_client *client;
	struct agent_term *term;
	struct agent_chans *chans;
	struct agent_facts facts;
	enum phase phase;
	enum conn conn;

	/* Secrets: never printed, wiped when no longer needed. */
	uint8_t w[TETHER_SPAKE2_W_LEN];
	struct tether_spake2 *pake;
	uint8_t ke[TETHER_SPAKE2_KE_LEN];
	bool have_resume;
	uint8_t resume[TETHER_CTRL_RESUME_LEN];

	/* The session, as the relay and the console described it. */
	int64_t id;
	uint8_t pake_a[TETHER_SPAKE2_ELEM_LEN];
	char technician[TETHER_ID_NAME_MAX + 1];
	char ticket[TETHER_ID_NAME_MAX + 1];
	char title[TITLE_MAX];
	unsigned requested; /* AGENT_CAP() bits the console asked for */
	unsigned caps;	    /* AGENT_CAP() bits, as the customer consented */
	int each_next;	    /* asking per capability: the next kind */

	/* The trust or consent question, while it is asked. */
	struct agent_question question;
	bool asking;
	void (*answered)(struct session *s, enum agent_answer a);

	uv_signal_t sigint;
	uv_signal_t sigterm;
	uv_signal_t sighup;
	bool ended;
	int exit_code;
};

static void send_ctrl(struct session *s, enum tether_ctrl_type t,
		      const void *body)
{
	int r = s->client != NULL ? tether_client_send(s->client, t, body)
				  : TETHER_ERR_CLOSED;

	if (r != 0 && r != TETHER_ERR_CLOSED)
		tether_log_warn("cannot send %s: %s", tether_ctrl_type_name(t),
				tether_strerror(r));
}

/*
 * Ends the session with an exit code: stops children, signals and the
 * client; uv_run() returns once their handles are closed.  Idempotent.
 */
static void finish(struct session *s, int code)
{
	if (s->ended)
		return;
	s->ended = true;
	s->exit_code = code;
	agent_term_end_questions(s->term);
	if (s->asking) {
		s->asking = false;
		agent_term_withdraw(s->term, &s->question);
	}
	uv_close((uv_handle_t *)&s->sigint, NULL);
	uv_close((uv_handle_t *)&s->sigterm, NULL);
	uv_close((uv_handle_t *)&s->sighup, NULL);
	agent_chans_abort(s->chans);
	agent_term_stop(s->term);
	/* Lets a last leave, decline or confirmed go out first. */
	tether_client_close(s->client);
	s->client = NULL;
}

/* Fails the connection on a message that makes no sense now. */
static void out_of_turn(struct session *s, enum tether_ctrl_type t)
{
	struct tether_link *l = tether_client_link(s->client);

	tether_log_warn("relay sent %s out of turn", tether_ctrl_type_name(t));
	if (l != NULL)
		tether_link_close_error(l, TETHER_ERR_PROTOCOL,
					"unexpected message");
}

/* ---- Questions to the customer ---------------------------------------- */

static void on_answered(struct agent_question *q, enum agent_answer a)
{
	struct session *s = q->arg;

	s->asking = false;
	if (!s->ended)
		s->answered(s, a);
}

static void ask(struct session *s, const char *text,
		void (*answered)(struct session *s, enum agent_answer a))
{
	s->question.text = text;
	s->question.timeout_ms = 0;
	s->question.answered = on_answered;
	s->question.arg = s;
	s->answered = answered;
	s->asking = true;
	agent_term_ask(s->term, &s->question);
}

/* ---- Trust on first use ------------------------------------------------ */

static void trust_answered(struct session *s, enum agent_answer a)
{
	if (a == AGENT_ANSWER_NO_TERMINAL) {
		agent_term_warn(s->term,
				"no terminal to confirm the relay fingerprint; "
				"pass --fingerprint or --yes");
		finish(s, 1);
	} else if (a != AGENT_ANSWER_YES) {
		agent_term_warn(s->term, "relay not trusted");
		finish(s, 1);
	} else if (tether_client_trust(s->client) != 0) {
		agent_term_warn(s->term,
				"cannot connect to %s:%d: out of memory",
				s->o->host, s->o->port);
		finish(s, 1);
	}
}

/* The probe connection told the fingerprint: the customer checks it. */
static void on_trust(struct tether_client *c, const char *fp)
{
	struct session *s = tether_client_arg(c);

	agent_term_say(s->term, "relay %s:%d has fingerprint %s", s->o->host,
		       s->o->port, fp);
	agent_term_say(s->term,
		       "check it with your technician before you go on");
	ask(s, "Trust this relay? [y/N] ", trust_answered);
}

static void on_open(struct tether_client *c, const char *fp, bool newly)
{
	struct session *s = tether_client_arg(c);

	if (newly)
		agent_term_say(s->term,
			       "relay %s:%d has fingerprint %s (accepted: "
			       "--yes)",
			       s->o->host, s->o->port, fp);
}

/* ---- Join and consent --------------------------------------------------- */

static void on_welcome(struct tether_client *c, const struct tether_ctrl_msg *w)
{
	struct session *s = tether_client_arg(c);
	struct tether_ctrl_join join = {.nameplate = s->o->nameplate,
					.has_facts = true};
	struct tether_ctrl_resume resume = {.session = s->id};

	(void)w;
	if (s->have_resume) {
		s->conn = CONN_RESUMING;
		memcpy(resume.token, s->resume, sizeof(resume.token));
		send_ctrl(s, TETHER_CTRL_RESUME, &resume);
		tether_wipe(resume.token, sizeof(resume.token));
		return;
	}
	s->conn = CONN_READY;
	agent_facts_ctrl(&s->facts, &join.facts);
	send_ctrl(s, TETHER_CTRL_JOIN, &join);
}

/*
 * The customer's answer to the consent question: the capabilities
 * allowed, reported with those requested in "confirmed", and the
 * channels they open from now on.
 */
static void grant(struct session *s, unsigned caps, const char *how)
{
	const char *allowed[TETHER_KINDS], *requested[TETHER_KINDS];
	struct tether_ctrl_confirmed answer = {
	    .ok = true, .allowed = allowed, .requested = requested};
	char list[CAPS_MAX], refused[CAPS_MAX];
	size_t lp = 0, rp = 0;
	int k;

	s->caps = caps & s->requested;
	list[0] = refused[0] = '\0';
	for (k = 0; k < TETHER_KINDS; k++) {
		const char *w = tether_ctrl_name_of(kind, k);

		if ((s->requested & AGENT_CAP(k)) == 0)
			continue;
		requested[answer.nrequested++] = w;
		if ((s->caps & AGENT_CAP(k)) != 0) {
			allowed[answer.nallowed++] = w;
			lp += (size_t)snprintf(list + lp, sizeof(list) - lp,
					       "%s%s", lp ? ", " : "", w);
		} else {
			rp +=
			    (size_t)snprintf(refused + rp, sizeof(refused) - rp,
					     "%s%s", rp ? ", " : "", w);
		}
	}
	if (s->caps == 0) {
		agent_term_say(s->term,
			       "nothing allowed (%s): connection "
			       "declined",
			       how);
		send_ctrl(s, TETHER_CTRL_DECLINE, NULL);
		finish(s, 1);
		return;
	}
	if (rp > 0)
		agent_term_say(s->term, "allowed: %s; not allowed: %s (%s)",
			       list, refused, how);
	else
		agent_term_say(s->term, "allowed: %s (%s)", list, how);
	send_ctrl(s, TETHER_CTRL_CONFIRMED, &answer);
	s->phase = PH_PAIRED;
	agent_chans_pair(s->chans, s->ke, sizeof(s->ke), s->caps);
	tether_wipe(s->ke, sizeof(s->ke));
	tether_spake2_free(s->pake);
	s->pake = NULL;
	agent_term_say(s->term, "paired with %s for %s \"%s\"", s->technician,
		       s->ticket, s->title);
}

static void decline(struct session *s, enum agent_answer a)
{
	send_ctrl(s, TETHER_CTRL_DECLINE, NULL);
	if (a == AGENT_ANSWER_NO_TERMINAL)
		agent_term_warn(s->term,
				"no terminal to ask for consent; "
				"pass --yes or --allow to pre-approve");
	else
		agent_term_say(s->term, "connection declined");
	finish(s, 1);
}

/* One capability in the customer's words, and the kind it allows. */
static int describe_cap(const struct session *s, const char *cap, char *item,
			size_t itemlen)
{
	char word[TETHER_ID_NAME_MAX];
	int k;

	agent_text_clean(cap, word, sizeof(word));
	k = tether_ctrl_word_of(kind, word);
	switch (k) {
	case TETHER_KIND_EXEC:
		snprintf(item, itemlen, "exec (run commands as %s)",
			 s->facts.user);
		break;
	case TETHER_KIND_SHELL:
		snprintf(item, itemlen, "shell (interactive terminal as %s)",
			 s->facts.user);
		break;
	case TETHER_KIND_FILE:
		snprintf(item, itemlen,
			 "file (copy files to and from this machine as %s)",
			 s->facts.user);
		break;
	case TETHER_KIND_FORWARD:
		snprintf(item, itemlen,
			 "forward (connect to TCP ports on this "
			 "machine or its network)");
		break;
	case TETHER_KIND_DIAG:
		snprintf(item, itemlen,
			 "diag (a report on this machine's health: disks, "
			 "memory, network, processes, recent errors; "
			 "passwords removed)");
		break;
	default:
		snprintf(item, itemlen, "%s", word);
		break;
	}
	return k;
}

static void ask_next_cap(struct session *s);

static void each_answered(struct session *s, enum agent_answer a)
{
	if (a == AGENT_ANSWER_NO_TERMINAL) {
		decline(s, a);
		return;
	}
	if (a == AGENT_ANSWER_YES)
		s->caps |= AGENT_CAP(s->each_next);
	s->each_next++;
	ask_next_cap(s);
}

/* Asking per capability: the next one requested, or the grant. */
static void ask_next_cap(struct session *s)
{
	static char q[2 * TETHER_ID_NAME_MAX + 200];
	char item[2 * TETHER_ID_NAME_MAX + 160];

	while (s->each_next < TETHER_KINDS &&
	       (s->requested & AGENT_CAP(s->each_next)) == 0)
		s->each_next++;
	if (s->each_next >= TETHER_KINDS) {
		grant(s, s->caps, "answered one by one");
		return;
	}
	describe_cap(s, tether_ctrl_name_of(kind, s->each_next), item,
		     sizeof(item));
	snprintf(q, sizeof(q), "Allow %s? [y/N] ", item);
	ask(s, q, each_answered);
}

/*
 * "exec,diag" (commas or blanks between) into AGENT_CAP() bits; false if
 * a word is not one of the requested capabilities, named in *bad.
 */
static bool parse_list(const struct session *s, const char *text,
		       unsigned *caps, char *bad, size_t badlen)
{
	char word[AGENT_PROMPT_LINE_MAX + 1];
	size_t n;
	int k;

	*caps = 0;
	while (*text != '\0') {
		n = strcspn(text, ", \t");
		if (n > 0) {
			snprintf(word, sizeof(word), "%.*s", (int)n, text);
			k = tether_ctrl_word_of(kind, word);
			if (k < 0 || (s->requested & AGENT_CAP(k)) == 0) {
				agent_text_clean(word, bad, badlen);
				return false;
			}
			*caps |= AGENT_CAP(k);
		}
		text += n;
		text += strspn(text, ", \t");
	}
	return true;
}

static void consent_answered(struct session *s, enum agent_answer a);

static void ask_consent(struct session *s)
{
	ask(s, "Allow? [y/N, or some: exec,diag, or each] ", consent_answered);
}

static void consent_answered(struct session *s, enum agent_answer a)
{
	const char *reply = s->question.reply;
	char bad[AGENT_PROMPT_LINE_MAX + 1];
	unsigned caps;

	if (a == AGENT_ANSWER_YES) {
		grant(s, s->requested, "all");
		return;
	}
	if (a != AGENT_ANSWER_NO || reply[0] == '\0' ||
	    strcasecmp(reply, "n") == 0 || strcasecmp(reply, "no") == 0) {
		decline(s, a);
		return;
	}
	if (strcasecmp(reply, "each") == 0) {
		s->caps = 0;
		s->each_next = 0;
		ask_next_cap(s);
		return;
	}
	if (!parse_list(s, reply, &caps, bad, sizeof(bad))) {
		agent_term_say(s->term,
			       "%s was not requested; answer y, n, some of "
			       "the requested capabilities (such as exec,diag) "
			       "or each",
			       bad);
		ask_consent(s);
		return;
	}
	grant(s, caps, "as answered");
}

/*
 * "exec (run commands as bob), shell (...), other" from the info's
 * capabilities, and the channel kinds they name into s->requested.  The
 * info came sealed under the key the code made, so the relay cannot
 * widen them.
 */
static void describe_caps(struct session *s, const struct tether_ctrl_info *in,
			  char *out, size_t outlen)
{
	char item[2 * TETHER_ID_NAME_MAX + 160];
	size_t pos = 0, n, i;
	int k;

	out[0] = '\0';
	if (in->ncapabilities == 0) {
		snprintf(out, outlen, "none stated");
		return;
	}
	for (i = 0; i < in->ncapabilities; i++) {
		k = describe_cap(s, in->capabilities[i], item, sizeof(item));
		n = strlen(item);
		/* Only what the customer is shown is allowed. */
		if (pos + n + 2 >= outlen)
			break;
		if (pos > 0) {
			memcpy(out + pos, ", ", 2);
			pos += 2;
		}
		memcpy(out + pos, item, n + 1);
		pos += n;
		if (k >= 0)
			s->requested |= AGENT_CAP(k);
	}
}

static void copy_clean(const char *s, const char *dflt, char *out,
		       size_t outlen)
{
	agent_text_clean(s != NULL ? s : dflt, out, outlen);
}

/* Who asks for what, and what it would mean on this machine. */
static void tell_request(struct session *s, const struct tether_ctrl_info *in)
{
	char caps[CAPS_MAX], policy[CAPS_MAX];

	copy_clean(in->technician, "someone", s->technician,
		   sizeof(s->technician));
	copy_clean(in->ticket, "?", s->ticket, sizeof(s->ticket));
	copy_clean(in->title, "", s->title, sizeof(s->title));
	describe_caps(s, in, caps, sizeof(caps));
	agent_term_say(s->term,
		       "%s wants to connect to this computer for %s \"%s\"",
		       s->technician, s->ticket, s->title);
	agent_term_say(s->term, "requested capabilities: %s", caps);
	/* What "file" means here is the customer's to know before yes. */
	if ((s->requested & AGENT_CAP(TETHER_KIND_FILE)) != 0) {
		agent_file_describe_policy(s->o->files, policy, sizeof(policy));
		agent_term_say(s->term, "file transfers may %s", policy);
	}
	if ((s->requested & AGENT_CAP(TETHER_KIND_FORWARD)) != 0) {
		agent_forward_describe_policy(s->o->forwards, policy,
					      sizeof(policy));
		agent_term_say(s->term, "forwarding may connect to %s; %s",
			       policy,
			       agent_term_attended(s->term)
				   ? "you will be asked about any other target"
				   : "any other target is refused");
	}
}

/* The consent question, or the answer --allow or --yes gave before. */
static void seek_consent(struct session *s)
{
	s->phase = PH_CONSENT;
	/* --allow narrows --yes, which then only trusts the relay. */
	if (s->o->has_allow)
		grant(s, s->o->allow, "--allow");
	else if (s->o->yes)
		grant(s, s->requested, "--yes");
	else
		ask_consent(s);
}

/* AAD = prefix + nameplate, as the console computes it. */
static struct tether_buf *pake_aad(const struct session *s)
{
	size_t plen = strlen(TETHER_PAKE_AAD_PREFIX);
	size_t nlen = strlen(s->o->nameplate);
	struct tether_buf *b = tether_buf_new(plen + nlen);

	if (b == NULL)
		return NULL;
	if (tether_buf_put(b, TETHER_PAKE_AAD_PREFIX, plen) != 0 ||
	    tether_buf_put(b, s->o->nameplate, nlen) != 0) {
		tether_buf_free(b);
		return NULL;
	}
	return b;
}

/*
 * SPAKE2 as party B at once, then pake {pB, cB}: nothing is shown before
 * the console has proven the same code (its confirmation, with the sealed
 * info), so a mistyped code reveals no one else's ticket.
 */
static void start_pake(struct session *s)
{
	struct tether_ctrl_pake m;
	struct tether_buf *aad = NULL;
	const char *fail = "internal error";
	int r;

	s->pake = tether_spake2_new(TETHER_SPAKE2_B, TETHER_PAKE_ID_A,
				    strlen(TETHER_PAKE_ID_A), TETHER_PAKE_ID_B,
				    strlen(TETHER_PAKE_ID_B), s->w);
	/* The state holds what it needs; w is not needed again. */
	tether_wipe(s->w, sizeof(s->w));
	if (s->pake == NULL || tether_spake2_start(s->pake, m.pake_b) != 0)
		goto fail;
	if ((aad = pake_aad(s)) == NULL)
		goto fail;
	r = tether_spake2_finish(s->pake, s->pake_a, tether_buf_ptr(aad),
				 tether_buf_len(aad), m.conf_b);
	if (r != 0) {
		fail = "invalid key exchange message from the relay";
		goto fail;
	}
	s->phase = PH_PAKE;
	send_ctrl(s, TETHER_CTRL_PAKE, &m);
	goto out;
fail:
	agent_term_warn(s->term, "pairing failed: %s", fail);
	finish(s, 1);
out:
	tether_buf_free(aad);
	tether_wipe(&m, sizeof(m));
}

static void on_join_ok(struct session *s, const struct tether_ctrl_join_ok *m)
{
	if (s->phase != PH_START || s->conn != CONN_READY) {
		out_of_turn(s, TETHER_CTRL_JOIN_OK);
		return;
	}
	s->id = m->session;
	memcpy(s->pake_a, m->pake_a, sizeof(s->pake_a));
	start_pake(s);
}

/* ---- Pairing ------------------------------------------------------------- */

static void on_pake_ok(struct session *s, const struct tether_ctrl_pake_ok *m)
{
	if (s->phase != PH_PAKE) {
		out_of_turn(s, TETHER_CTRL_PAKE_OK);
		return;
	}
	memcpy(s->resume, m->resume, sizeof(s->resume));
	s->have_resume = true;
	s->phase = PH_CONFIRM;
	/* Not "accepted": only the technician's check tells a right code. */
	agent_term_say(s->term,
		       "waiting for your technician to check the code");
}

/* The one thing a wrong code tells the customer. */
static void wrong_code(struct session *s)
{
	agent_term_warn(s->term, "the code is wrong; ask your technician for "
				 "the code again");
	finish(s, 1);
}

/* The console's sealed info, opened with Ke: 0, or -1 once refused. */
static int open_info(struct session *s, const char *sealed,
		     struct tether_ctrl_part_msg *info)
{
	char why[TETHER_CTRL_WHY_MAX];
	char *text = NULL;
	int r;

	r = tether_msg_open_info(s->ke, sizeof(s->ke), s->o->nameplate, sealed,
				 &text);
	if (r == 0)
		r = tether_ctrl_part_decode(TETHER_CTRL_PART_INFO, text,
					    strlen(text), info, why,
					    sizeof(why));
	else
		snprintf(why, sizeof(why), "%s", tether_strerror(r));
	tether_free(text);
	if (r == 0)
		return 0;
	tether_log_info("sealed invitation: %s", why);
	return -1;
}

static void on_confirm(struct session *s,
		       const struct tether_ctrl_agent_confirm *m)
{
	struct tether_ctrl_confirmed refused = {.ok = false};
	struct tether_ctrl_part_msg info = {0};

	/* pake_ok comes first, but nothing is lost by taking it early. */
	if ((s->phase != PH_CONFIRM && s->phase != PH_PAKE) ||
	    s->pake == NULL) {
		out_of_turn(s, TETHER_CTRL_AGENT_CONFIRM);
		return;
	}
	if (tether_spake2_verify(s->pake, m->conf) != 0 ||
	    tether_spake2_get_ke(s->pake, s->ke) != 0) {
		send_ctrl(s, TETHER_CTRL_CONFIRMED, &refused);
		wrong_code(s);
		return;
	}
	/* The code is proven; only now may the info be read, and shown. */
	if (open_info(s, m->info, &info) != 0) {
		send_ctrl(s, TETHER_CTRL_CONFIRMED, &refused);
		agent_term_warn(s->term,
				"the invitation did not arrive intact; ask "
				"your technician for a new code");
		finish(s, 1);
		goto out;
	}
	tell_request(s, &info.body.info);
	seek_consent(s);
out:
	tether_ctrl_part_free(&info);
}

static void on_resume_ok(struct session *s)
{
	if (s->conn != CONN_RESUMING) {
		out_of_turn(s, TETHER_CTRL_RESUME_OK);
		return;
	}
	s->conn = CONN_READY;
	tether_client_backoff_reset(s->client);
	agent_term_say(s->term, "reconnected");
}

static void on_ended(struct session *s, const struct tether_ctrl_ended *m)
{
	char reason[TITLE_MAX];

	copy_clean(m->reason, "no reason given", reason, sizeof(reason));
	/* Closing the ticket is the normal end; anything else is not. */
	if (strcmp(reason, "wrong code") == 0) {
		wrong_code(s);
	} else if (strcmp(reason, "ticket closed") == 0) {
		agent_term_say(s->term, "session ended: %s", reason);
		finish(s, 0);
	} else {
		agent_term_warn(s->term, "session ended: %s", reason);
		finish(s, 1);
	}
}

/* ---- The connection ---------------------------------------------------- */

static void on_ctrl(struct tether_client *c, struct tether_ctrl_msg *m)
{
	struct session *s = tether_client_arg(c);
	bool ready = s->conn == CONN_READY;

	switch (m->type) {
	case TETHER_CTRL_JOIN_OK:
		on_join_ok(s, &m->body.join_ok);
		break;
	case TETHER_CTRL_PAKE_OK:
		on_pake_ok(s, &m->body.pake_ok);
		break;
	case TETHER_CTRL_AGENT_CONFIRM:
		on_confirm(s, &m->body.agent_confirm);
		break;
	case TETHER_CTRL_RESUME_OK:
		on_resume_ok(s);
		break;
	case TETHER_CTRL_ENDED:
		on_ended(s, &m->body.ended);
		break;
	case TETHER_CTRL_CHAN_OPEN:
		if (ready)
			agent_chans_open(s->chans, &m->body.chan_open);
		break;
	case TETHER_CTRL_CHAN_CLOSE:
		if (ready)
			agent_chans_close(s->chans, &m->body.chan_close);
		break;
	case TETHER_CTRL_WELCOME:
		out_of_turn(s, m->type);
		break;
	default:
		tether_log_debug("control message \"%s\" ignored",
				 tether_ctrl_type_name(m->type));
		break;
	}
}

static void on_data(struct tether_client *c, const struct tether_frame *f)
{
	struct session *s = tether_client_arg(c);

	if (s->conn == CONN_READY && s->phase == PH_PAIRED)
		agent_chans_frame(s->chans, f);
}

static void on_drain(struct tether_client *c)
{
	struct session *s = tether_client_arg(c);

	agent_chans_drain(s->chans);
}

static void on_down(struct tether_client *c, int err, const char *why,
		    enum tether_client_phase phase)
{
	struct session *s = tether_client_arg(c);
	bool resuming = s->conn == CONN_RESUMING;
	unsigned delay;

	(void)phase;
	s->conn = CONN_DOWN;
	/* Channels do not survive their connection. */
	agent_chans_abort(s->chans);
	/*
	 * Nor does a consent question: the relay dropped the console's
	 * confirmation with the connection, and the console asks again.
	 */
	if (s->phase == PH_CONSENT) {
		if (s->asking) {
			s->asking = false;
			agent_term_withdraw(s->term, &s->question);
		}
		tether_wipe(s->ke, sizeof(s->ke));
		s->requested = s->caps = 0;
		s->phase = PH_CONFIRM;
	}
	/*
	 * A session with a resume token reconnects, unless the relay is not
	 * the pinned one or refused the resume itself.
	 */
	if (s->have_resume && err != TETHER_ERR_FINGERPRINT &&
	    !(resuming && err == TETHER_ERR_REFUSED)) {
		delay = tether_client_retry(c);
		agent_term_say(s->term,
			       "relay connection lost, reconnecting in %u.%u s",
			       delay / 1000, delay % 1000 / 100);
		return;
	}
	if (strcmp(why, "unknown or expired code") == 0)
		agent_term_warn(s->term,
				"unknown or expired code; check it, or ask "
				"your technician for the code again");
	else
		agent_term_warn(s->term, "%s", why);
	finish(s, 1);
}

/* ---- The channels' way out ---------------------------------------------- */

static int io_ctrl(void *arg, enum tether_ctrl_type t, const void *body)
{
	struct session *s = arg;

	return s->client != NULL ? tether_client_send(s->client, t, body)
				 : TETHER_ERR_CLOSED;
}

static int io_frame(void *arg, const uint8_t *frame, size_t len)
{
	struct session *s = arg;
	struct tether_link *l =
	    s->client != NULL ? tether_client_link(s->client) : NULL;

	return l != NULL ? tether_link_send_raw(l, frame, len)
			 : TETHER_ERR_CLOSED;
}

static bool io_room(void *arg)
{
	struct session *s = arg;
	struct tether_link *l =
	    s->client != NULL ? tether_client_link(s->client) : NULL;

	return l != NULL && tether_link_is_open(l) &&
	       !tether_link_over_high_water(l);
}

static int io_spawn(void *arg, uv_loop_t *loop, const struct agent_spawn *sp,
		    const struct agent_proc_cbs *cbs, void *ctx,
		    struct agent_proc **out)
{
	(void)arg;
	return agent_proc_spawn(loop, sp, cbs, ctx, out);
}

static int io_spawn_pty(void *arg, uv_loop_t *loop,
			const struct agent_pty_opts *o,
			const struct agent_proc_cbs *cbs, void *ctx,
			struct agent_pty **out)
{
	(void)arg;
	return agent_pty_spawn(loop, o, cbs, ctx, out);
}

/* ---- Leaving ----------------------------------------------------------------
 */

/*
 * The customer ends the session for everyone (Ctrl-C, q, SIGTERM, a hung
 * up terminal): tells the relay, then ends.
 */
static void leave(struct session *s)
{
	bool talking = s->client != NULL && tether_client_ready(s->client) &&
		       s->conn != CONN_DOWN;

	if (s->ended)
		return;
	if (talking && s->phase == PH_CONSENT && s->asking)
		send_ctrl(s, TETHER_CTRL_DECLINE, NULL);
	else if (talking && s->phase >= PH_PAKE)
		send_ctrl(s, TETHER_CTRL_LEAVE, NULL);
	agent_term_say(s->term, "session ended by the customer");
	finish(s, 0);
}

static void on_leave(void *arg)
{
	leave(arg);
}

static void on_signal(uv_signal_t *h, int signo)
{
	(void)signo;
	leave(h->data);
}

/* ---- Start and end ------------------------------------------------------- */

static const struct tether_client_cbs client_cbs = {
    .on_open = on_open,
    .on_trust = on_trust,
    .on_welcome = on_welcome,
    .on_ctrl = on_ctrl,
    .on_data = on_data,
    .on_drain = on_drain,
    .on_down = on_down,
};

/* The term, the channel table and the client; false without memory. */
static bool make_parts(struct session *s)
{
	const struct agent_term_opts to = {
	    .view = s->o->view,
	    .leave = on_leave,
	    .arg = s,
	};
	const struct tether_client_opts co = {
	    .host = s->o->host,
	    .port = s->o->port,
	    .pin = s->o->pin,
	    /* Without a pin nor --yes, the first connection only probes. */
	    .accept_any = s->o->yes,
	    .role = TETHER_ROLE_AGENT,
	};
	struct agent_chans_cfg cc = {
	    .loop = s->loop,
	    .files = s->o->files,
	    .forwards = s->o->forwards,
	    .io = {.ctrl = io_ctrl,
		   .frame = io_frame,
		   .room = io_room,
		   .spawn = io_spawn,
		   .spawn_pty = io_spawn_pty,
		   .arg = s},
	};

	s->term = agent_term_new(s->loop, &to);
	cc.term = s->term;
	s->chans = s->term != NULL ? agent_chans_new(&cc) : NULL;
	s->client = s->chans != NULL
			? tether_client_new(s->loop, &co, &client_cbs, s)
			: NULL;
	return s->client != NULL;
}

int agent_session_run(uv_loop_t *loop, const struct agent_session_opts *o)
{
	struct session s;

	memset(&s, 0, sizeof(s));
	s.loop = loop;
	s.o = o;
	memcpy(s.w, o->w, sizeof(s.w));
	agent_facts_gather(&s.facts);
	if (!make_parts(&s)) {
		/* The client's TLS context is what fails, if memory does not.
		 */
		agent_term_warn(s.term, s.chans != NULL ? "cannot set up TLS"
							: "out of memory");
		s.exit_code = 1;
		goto out;
	}
	uv_signal_init(loop, &s.sigint);
	uv_signal_init(loop, &s.sigterm);
	uv_signal_init(loop, &s.sighup);
	s.sigint.data = s.sigterm.data = s.sighup.data = &s;
	uv_signal_start(&s.sigint, on_signal, SIGINT);
	uv_signal_start(&s.sigterm, on_signal, SIGTERM);
	/* The customer's terminal closed: the same, and shells go too. */
	uv_signal_start(&s.sighup, on_signal, SIGHUP);
	if (tether_client_start(s.client) != 0) {
		agent_term_warn(s.term,
				"cannot connect to %s:%d: out of memory",
				o->host, o->port);
		finish(&s, 1);
	}
	uv_run(loop, UV_RUN_DEFAULT);
	/* finish() has put the terminal back; this is belt and braces. */
	agent_term_restore();
out:
	tether_client_close(s.client);
	agent_chans_free(s.chans);
	agent_term_free(s.term);
	uv_run(loop, UV_RUN_DEFAULT);
	tether_wipe(s.w, sizeof(s.w));
	tether_wipe(s.ke, sizeof(s.ke));
	tether_wipe(s.resume, sizeof(s.resume));
	tether_spake2_free(s.pake);
	return s.exit_code;
}
