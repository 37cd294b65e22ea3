/*
 * The console's side of pairing (docs/protocol.md, "Pairing"), party A of
 * SPAKE2.  At invite time it draws the three words, derives w and pA, and
 * the session file keeps x and w; at the first exec after the agent joined
 * it rebuilds the same state from x, checks the agent's confirmation, sends
 * its own, and replaces x and w with Ke.  This file alone knows the layout
 * of sessions/<id>.json.  None of the secrets (words, x, w, Ke) is ever
 * printed; buffers holding them are wiped.
 */
#include <string.h>

#include <tether/alloc.h>
#include <tether/code.h>
#include <tether/crypto.h>
#include <tether/proto.h>
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
	uint8_t pa[TETHER_SPAKE2_ELEM_LEN];
	struct tether_spake2 *s = NULL;
	int ret = -1;

	memset(p, 0, sizeof(*p));
	if (draw_words(p->password, sizeof(p->password)) != 0 ||
	    tether_spake2_password_to_w(p->password, TETHER_PAKE_W_SALT,
					p->w) != 0)
		goto out;
	s = new_party_a(p->w);
	if (s == NULL || tether_spake2_start(s, pa) != 0 ||
	    tether_spake2_get_scalar(s, p->x) != 0 ||
	    tether_hex_encode(pa, sizeof(pa), p->pake_hex,
			      sizeof(p->pake_hex)) != 0)
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
static json_t *file_base(const json_t *session, const char *ticket,
			 const char *nameplate, const char *info)
{
	return json_pack("{s:O, s:s, s:s, s:s}", "session", session, "ticket",
			 ticket, "nameplate", nameplate, "info", info);
}

int console_pair_save(const json_t *session, const char *ticket,
		      const char *nameplate, const char *info,
		      const struct console_pair *p)
{
	char sid[CONSOLE_SESSION_MAX];
	json_t *obj;
	int r = -1;

	if (console_session_id(session, sid, sizeof(sid)) != 0) {
		console_error("bad session id from the relay");
		return -1;
	}
	obj = file_base(session, ticket, nameplate, info);
	if (obj == NULL ||
	    json_object_set_new(obj, "x", secret_hex(p->x, sizeof(p->x))) ||
	    json_object_set_new(obj, "w", secret_hex(p->w, sizeof(p->w))))
		console_error("out of memory");
	else
		r = console_session_save(sid, obj);
	json_decref(obj);
	return r;
}

/* Decodes the hex string member key of obj into exactly n bytes. */
static int get_hex(const json_t *obj, const char *key, uint8_t *out, size_t n)
{
	const char *hex = console_json_str(obj, key);

	if (hex == NULL || strlen(hex) != 2 * n)
		return -1;
	return tether_hex_decode(hex, out, n) == 0 ? 0 : -1;
}

/* Sends a request whose ok answer carries nothing we need. */
static int simple_request(struct console_client *c, json_t *req)
{
	json_t *ans;
	int r;

	r = console_request(c, req, &ans);
	if (r == CONSOLE_EREMOTE)
		console_report_answer(ans, NULL);
	json_decref(ans);
	return r == 0 ? 0 : -1;
}

/* Tells the relay the code was wrong (the session is burned) and says so. */
static int wrong_code(struct console_client *c, const json_t *session)
{
	json_t *req = json_pack("{s:s, s:O}", "t", "pake_failed", "session",
				session);

	if (simple_request(c, req) == 0)
		console_error("key confirmation failed: wrong code?");
	return -1;
}

/*
 * Finishes SPAKE2 with the agent's pB and cB (state "joined"), confirms
 * to the agent through the relay, and stores Ke in place of x and w.
 */
static int finish(struct console_client *c, const json_t *attach,
		  const json_t *file, const char *sid,
		  uint8_t ke[TETHER_SPAKE2_KE_LEN])
{
	const json_t *session = json_object_get(attach, "session");
	const char *nameplate = console_json_str(file, "nameplate");
	const char *info = console_json_str(file, "info");
	const char *ticket = console_json_str(file, "ticket");
	uint8_t x[TETHER_SPAKE2_SCALAR_LEN], w[TETHER_SPAKE2_W_LEN];
	uint8_t pa[TETHER_SPAKE2_ELEM_LEN], pb[TETHER_SPAKE2_ELEM_LEN];
	uint8_t ca[TETHER_SPAKE2_CONF_LEN], cb[TETHER_SPAKE2_CONF_LEN];
	char ca_hex[2 * TETHER_SPAKE2_CONF_LEN + 1];
	struct tether_spake2 *s = NULL;
	char *aad = NULL;
	size_t aad_len;
	json_t *obj = NULL;
	int ret = -1;

	if (nameplate == NULL || info == NULL || ticket == NULL ||
	    get_hex(file, "x", x, sizeof(x)) != 0 ||
	    get_hex(file, "w", w, sizeof(w)) != 0) {
		console_error("session file for %s is damaged", sid);
		goto out;
	}
	if (get_hex(attach, "pake_b", pb, sizeof(pb)) != 0 ||
	    get_hex(attach, "conf_b", cb, sizeof(cb)) != 0) {
		console_error("the relay sent a malformed pairing message");
		goto out;
	}
	/* AAD binds the nameplate and what the customer was shown. */
	aad_len = strlen(TETHER_PAKE_AAD_PREFIX) + strlen(nameplate) + 1 +
		  strlen(info);
	aad = tether_malloc(aad_len + 1);
	s = new_party_a(w);
	if (aad == NULL || s == NULL) {
		console_error("out of memory");
		goto out;
	}
	snprintf(aad, aad_len + 1, "%s%s %s", TETHER_PAKE_AAD_PREFIX,
		 nameplate, info);
	if (tether_spake2_set_scalar(s, x) != 0 ||
	    tether_spake2_start(s, pa) != 0) {
		console_error("cannot restore the key exchange for %s", sid);
		goto out;
	}
	/* A bad element fails like a wrong code: the session is burned. */
	if (tether_spake2_finish(s, pb, aad, aad_len, ca) != 0 ||
	    tether_spake2_verify(s, cb) != 0) {
		ret = wrong_code(c, session);
		goto out;
	}
	if (tether_hex_encode(ca, sizeof(ca), ca_hex, sizeof(ca_hex)) != 0 ||
	    simple_request(c, json_pack("{s:s, s:O, s:s}", "t", "confirm",
					"session", session, "conf",
					ca_hex)) != 0)
		goto out;
	obj = file_base(session, ticket, nameplate, info);
	if (tether_spake2_get_ke(s, ke) != 0 || obj == NULL ||
	    json_object_set_new(obj, "ke",
				secret_hex(ke, TETHER_SPAKE2_KE_LEN))) {
		console_error("cannot keep the session key");
		goto out;
	}
	ret = console_session_save(sid, obj);
out:
	json_decref(obj);
	tether_spake2_free(s);
	tether_free(aad);
	tether_wipe(x, sizeof(x));
	tether_wipe(w, sizeof(w));
	return ret;
}

int console_pair_key(struct console_client *c, const char *ticket,
		     const json_t *attach, uint8_t ke[TETHER_SPAKE2_KE_LEN])
{
	const char *state = console_json_str(attach, "state");
	const char *file_ticket;
	char sid[CONSOLE_SESSION_MAX];
	json_t *file = NULL;
	int r, ret = -1, lock;

	if (console_session_id(json_object_get(attach, "session"), sid,
			       sizeof(sid)) != 0 ||
	    state == NULL) {
		console_error("the relay sent a malformed attach answer");
		return -1;
	}
	/*
	 * Two consoles may attach before either has paired: the first to
	 * take the lock confirms, the other then finds Ke in the file.
	 */
	lock = console_session_lock(sid);
	if (lock < 0)
		return -1;
	r = console_session_load(sid, &file);
	if (r < 0)
		goto out;
	file_ticket = console_json_str(file, "ticket");
	if (r == 1 || file_ticket == NULL || strcmp(file_ticket, ticket) != 0) {
		console_error("this console did not create the invite for %s",
			      ticket);
		goto out;
	}
	if (json_object_get(file, "ke") != NULL &&
	    (strcmp(state, "joined") == 0 || strcmp(state, "paired") == 0)) {
		ret = get_hex(file, "ke", ke, TETHER_SPAKE2_KE_LEN);
		if (ret != 0)
			console_error("session file for %s is damaged", sid);
	} else if (strcmp(state, "joined") == 0) {
		ret = finish(c, attach, file, sid, ke);
	} else if (strcmp(state, "paired") == 0) {
		ret = get_hex(file, "ke", ke, TETHER_SPAKE2_KE_LEN);
		if (ret != 0)
			console_error("no session key for %s on this console "
				      "(pairing was interrupted?)",
				      ticket);
	} else {
		fputs("tether: the session for ", stderr);
		console_print_clean(stderr, ticket);
		fputs(" is ", stderr);
		console_print_clean(stderr, state);
		fputc('\n', stderr);
	}
out:
	json_decref(file);
	console_session_unlock(lock);
	return ret;
}
