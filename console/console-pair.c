/*
 * The console's side of pairing (docs/protocol.md, "Pairing"), party A of
 * SPAKE2.  At invite time it draws the three words, derives w and pA, and
 * the session file keeps x and w; at the first exec after the agent joined
 * it rebuilds the same state from x, checks the agent's confirmation, sends
 * its own, and replaces x and w with Ke.  This file alone knows the layout
 * of sessions/<id>.json.  None of the secrets (words, x, w, Ke) is ever
 * printed; buffers holding them are wiped.
 */
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/code.h>
#include <tether/crypto.h>
#include <tether/proto.h>
#include <tether/msg.h>
#include <tether/spake2.h>

#include "console.h"

/* Words are drawn uniformly: 3 x 8 bits of password entropy. */
static int draw_words(char *pw, size_t len)
{
	const char *w[TETHER_CODE_WORDS];
	uint32_t idx;
	int i, n;

	for (i = 0; i < TETHER_CODE_WORDS; i++) {
		if (tether_random_uniform(TETHER_CODE_WORDLIST_LEN, &idx) != 0)
			return -1;
		w[i] = tether_code_word(idx);
	}
	tether_wipe(&idx, sizeof(idx));
	n = snprintf(pw, len, "%s-%s-%s", w[0], w[1], w[2]);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static struct tether_spake2 *new_party_a(const uint8_t w[TETHER_SPAKE2_W_LEN])
{
	return tether_spake2_new(TETHER_SPAKE2_A, TETHER_PAKE_ID_A,
				 strlen(TETHER_PAKE_ID_A), TETHER_PAKE_ID_B,
				 strlen(TETHER_PAKE_ID_B), w);
}

int console_pair_start(struct console_pair *p)
{
	struct tether_spake2 *s = NULL;
	int ret = -1;

	memset(p, 0, sizeof(*p));
	if (draw_words(p->password, sizeof(p->password)) != 0 ||
	    tether_spake2_password_to_w(p->password, TETHER_PAKE_W_SALT,
					p->w) != 0)
		goto out;
	s = new_party_a(p->w);
	if (s == NULL || tether_spake2_start(s, p->pa) != 0 ||
	    tether_spake2_get_scalar(s, p->x) != 0)
		goto out;
	ret = 0;
out:
	tether_spake2_free(s);
	if (ret != 0) {
		console_pair_wipe(p);
		console_error("cannot start the key exchange");
	}
	return ret;
}

void console_pair_wipe(struct console_pair *p)
{
	tether_wipe(p, sizeof(*p));
}

/* Hex of n secret bytes as a JSON string; the stack copy is wiped. */
static json_t *secret_hex(const uint8_t *b, size_t n)
{
	char hex[2 * 64 + 1];
	json_t *v = NULL;

	if (n <= 64 && tether_hex_encode(b, n, hex, sizeof(hex)) == 0)
		v = json_string(hex);
	tether_wipe(hex, sizeof(hex));
	return v;
}

/* The common part of the session file: who and what it is for. */
static json_t *file_base(int64_t session, const char *ticket,
			 const char *nameplate, const char *info)
{
	return json_pack("{s:I, s:s, s:s, s:s}", "session", (json_int_t)session,
			 "ticket", ticket, "nameplate", nameplate, "info",
			 info);
}

int console_pair_save(int64_t session, const char *ticket,
		      const char *nameplate, const char *info,
		      const struct console_pair *p)
{
	json_t *obj;
	int r = -1;

	obj = file_base(session, ticket, nameplate, info);
	if (obj == NULL ||
	    json_object_set_new(obj, "x", secret_hex(p->x, sizeof(p->x))) ||
	    json_object_set_new(obj, "w", secret_hex(p->w, sizeof(p->w))))
		console_error("out of memory");
	else
		r = console_config_session_save(session, obj);
	json_decref(obj);
	return r;
}

/* The string member key of our own session file, or NULL. */
static const char *file_str(const json_t *file, const char *key)
{
	return json_string_value(json_object_get(file, key));
}

/* Decodes the hex string member key of file into exactly n bytes. */
static int file_hex(const json_t *file, const char *key, uint8_t *out, size_t n)
{
	const char *hex = file_str(file, key);

	if (hex == NULL || strlen(hex) != 2 * n)
		return -1;
	return tether_hex_decode(hex, out, n) == 0 ? 0 : -1;
}

/* Sends a request whose ok answer carries nothing we need. */
static int simple_request(struct console_client *c, enum tether_ctrl_type t,
			  const void *body)
{
	struct tether_ctrl_msg ans;
	int r;

	r = console_client_call(c, t, body, &ans);
	if (r == CONSOLE_EREMOTE)
		console_client_report_err(&ans.body.err, NULL);
	tether_ctrl_msg_free(&ans);
	return r == 0 ? 0 : -1;
}

/*
 * Tells the relay the code was wrong (the session is burned) and says so,
 * with where the wrong guess came from and what to do next.
 */
static int wrong_code(struct console_client *c, const char *ticket,
		      int64_t session)
{
	const struct tether_ctrl_session_ref req = {.session = session};
	struct tether_ctrl_msg ans;
	int r;

	r = console_client_call(c, TETHER_CTRL_PAKE_FAILED, &req, &ans);
	if (r == CONSOLE_EREMOTE)
		console_client_report_err(&ans.body.err, NULL);
	else if (r == 0)
		console_error("the code for %s was burned by a wrong guess "
			      "(from %s); run: tether invite %s for a new code",
			      ticket,
			      ans.body.pake_failed_ok.addr != NULL
				  ? ans.body.pake_failed_ok.addr
				  : "an unknown address",
			      ticket);
	tether_ctrl_msg_free(&ans);
	return -1;
}

/*
 * The session file with Ke, and x and w when given (a confirmation not yet
 * answered); without them only Ke is kept, as once paired.
 */
static int save_key(int64_t session, const char *ticket, const char *nameplate,
		    const char *info, const uint8_t ke[TETHER_SPAKE2_KE_LEN],
		    const uint8_t *x, const uint8_t *w)
{
	json_t *obj = file_base(session, ticket, nameplate, info);
	int r = -1;

	if (obj == NULL ||
	    json_object_set_new(obj, "ke",
				secret_hex(ke, TETHER_SPAKE2_KE_LEN)) ||
	    (x != NULL &&
	     json_object_set_new(obj, "x",
				 secret_hex(x, TETHER_SPAKE2_SCALAR_LEN))) ||
	    (w != NULL &&
	     json_object_set_new(obj, "w", secret_hex(w, TETHER_SPAKE2_W_LEN))))
		console_error("cannot keep the session key");
	else
		r = console_config_session_save(session, obj);
	json_decref(obj);
	return r;
}

/*
 * Finishes SPAKE2 with the agent's pB and cB (state "joined"), confirms
 * to the agent through the relay, and stores Ke in place of x and w.
 */
static int finish(struct console_client *c,
		  const struct tether_ctrl_attach_ok *a, const json_t *file,
		  uint8_t ke[TETHER_SPAKE2_KE_LEN])
{
	const char *nameplate = file_str(file, "nameplate");
	const char *info = file_str(file, "info");
	const char *ticket = file_str(file, "ticket");
	struct tether_ctrl_confirm confirm = {.session = a->session};
	uint8_t x[TETHER_SPAKE2_SCALAR_LEN], w[TETHER_SPAKE2_W_LEN];
	uint8_t pa[TETHER_SPAKE2_ELEM_LEN];
	struct tether_spake2 *s = NULL;
	char *aad = NULL, *sealed = NULL;
	size_t aad_len;
	int ret = -1;

	if (nameplate == NULL || info == NULL || ticket == NULL ||
	    file_hex(file, "x", x, sizeof(x)) != 0 ||
	    file_hex(file, "w", w, sizeof(w)) != 0) {
		console_error("session file for %" PRId64 " is damaged",
			      a->session);
		goto out;
	}
	if (!a->has_pake) {
		console_error("the relay sent a malformed pairing message");
		goto out;
	}
	/*
	 * The AAD binds the nameplate; what the customer is shown travels
	 * sealed under Ke, only once this end has checked the agent's MAC.
	 */
	aad_len = strlen(TETHER_PAKE_AAD_PREFIX) + strlen(nameplate);
	aad = tether_malloc(aad_len + 1);
	s = new_party_a(w);
	if (aad == NULL || s == NULL) {
		console_error("out of memory");
		goto out;
	}
	snprintf(aad, aad_len + 1, "%s%s", TETHER_PAKE_AAD_PREFIX, nameplate);
	if (tether_spake2_set_scalar(s, x) != 0 ||
	    tether_spake2_start(s, pa) != 0) {
		console_error("cannot restore the key exchange for %" PRId64,
			      a->session);
		goto out;
	}
	/* A bad element fails like a wrong code: the session is burned. */
	if (tether_spake2_finish(s, a->pake_b, aad, aad_len, confirm.conf) !=
		0 ||
	    tether_spake2_verify(s, a->conf_b) != 0) {
		ret = wrong_code(c, ticket, a->session);
		goto out;
	}
	if (tether_spake2_get_ke(s, ke) != 0 ||
	    tether_msg_seal_info(ke, TETHER_SPAKE2_KE_LEN, nameplate, info,
				 &sealed) != 0) {
		console_error("cannot seal the invitation for %s", ticket);
		goto out;
	}
	confirm.info = sealed;
	/*
	 * The customer may take a while, and this command may be stopped
	 * meanwhile: Ke is kept from now, with x and w for a later command
	 * to confirm again, until the relay says the session is paired.
	 */
	if (save_key(a->session, ticket, nameplate, info, ke, x, w) != 0)
		goto out;
	/* The customer reads who asks for what now, and answers. */
	if (isatty(STDERR_FILENO))
		fprintf(stderr,
			"tether: waiting for the customer to allow "
			"%s\n",
			ticket);
	if (simple_request(c, TETHER_CTRL_CONFIRM, &confirm) != 0)
		goto out;
	ret = save_key(a->session, ticket, nameplate, info, ke, NULL, NULL);
out:
	tether_spake2_free(s);
	tether_free(aad);
	tether_free(sealed);
	tether_wipe(x, sizeof(x));
	tether_wipe(w, sizeof(w));
	return ret;
}

/* Ke from the session file: 0, or -1 once reported. */
static int stored_key(const json_t *file, const char *ticket, bool damaged,
		      int64_t session, uint8_t ke[TETHER_SPAKE2_KE_LEN])
{
	if (file_hex(file, "ke", ke, TETHER_SPAKE2_KE_LEN) == 0)
		return 0;
	if (damaged)
		console_error("session file for %" PRId64 " is damaged",
			      session);
	else
		console_error("no session key for %s on this console "
			      "(pairing was interrupted?)",
			      ticket);
	return -1;
}

int console_pair_key(struct console_client *c, const char *ticket,
		     const struct tether_ctrl_attach_ok *a,
		     uint8_t ke[TETHER_SPAKE2_KE_LEN])
{
	const char *file_ticket;
	json_t *file = NULL;
	int r, ret = -1, lock;

	/*
	 * Two consoles may attach before either has paired: the first to
	 * take the lock confirms (and waits for the customer), the other
	 * then finds the session paired and Ke in the file.
	 */
	lock = console_config_session_lock(a->session);
	if (lock < 0)
		return -1;
	r = console_config_session_load(a->session, &file);
	if (r < 0)
		goto out;
	file_ticket = file_str(file, "ticket");
	if (r == 1 || file_ticket == NULL || strcmp(file_ticket, ticket) != 0) {
		console_error("this console did not create the invite for %s",
			      ticket);
		goto out;
	}
	/*
	 * Joined: confirm (again, if a command that did was stopped while
	 * the customer decided: x and w are kept until paired), unless
	 * another command paired it since our attach (only Ke is left).
	 */
	if (a->state == TETHER_SESSION_JOINED &&
	    json_object_get(file, "x") == NULL &&
	    json_object_get(file, "ke") != NULL)
		ret = stored_key(file, ticket, true, a->session, ke);
	else if (a->state == TETHER_SESSION_JOINED)
		ret = finish(c, a, file, ke);
	else if (a->state == TETHER_SESSION_PAIRED &&
		 json_object_get(file, "ke") != NULL) {
		ret = stored_key(file, ticket, true, a->session, ke);
		/* Paired after its command stopped: only Ke stays. */
		if (ret == 0 && json_object_get(file, "x") != NULL)
			ret = save_key(a->session, ticket,
				       file_str(file, "nameplate"),
				       file_str(file, "info"), ke, NULL, NULL);
	} else if (a->state == TETHER_SESSION_PAIRED)
		ret = stored_key(file, ticket, false, a->session, ke);
	else
		fprintf(stderr, "tether: the session for %s is %s\n", ticket,
			tether_ctrl_name_of(session_state, a->state));
out:
	json_decref(file);
	console_config_session_unlock(lock);
	return ret;
}
