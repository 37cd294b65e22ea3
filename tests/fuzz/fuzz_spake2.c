/*
 * libFuzzer target for SPAKE2 (spake2.h): the peer's element is the first
 * thing an attacker on the relay controls in a pairing, and
 * tether_spake2_finish() must refuse every element that is not a point of
 * P-256 in uncompressed form other than infinity (and other than w*N or
 * w*M, which would make K the point at infinity) without crashing.
 *
 * w, the scalars and the identities are those of RFC 9382's first P-256
 * vector, so runs are deterministic and the honest exchange has a known
 * answer.  Byte 0 picks the mode (b0 & 3) and our role (b0 & 4: B):
 *
 *  0 raw:     65 bytes of element (zero-padded), 32 of confirmation, the
 *             rest AAD; tests everything the decoder may see.
 *  1 on x:    32 bytes taken as an x coordinate, completed to a point
 *             when there is one (y's parity: b0 & 8), so that most inputs
 *             are on the curve and reach K and the keys; b0 & 16 then
 *             breaks y by one bit (a point off the curve).
 *  2 special: byte 1 picks a crafted element: infinity, w*N / w*M, the
 *             generator, -w*N, x or y >= p, compressed and hybrid
 *             encodings of valid points, and the rest of the input is
 *             XORed into it.
 *  3 honest:  both parties run; bytes 1-2 pick one bit of the four
 *             messages to flip in flight (or none), byte 3 splits the
 *             rest into the AADs of A and B.  With no flip and equal AADs
 *             both confirm and agree on Ke (the RFC's Ke for empty AADs);
 *             otherwise exactly the parties a flip or an AAD mismatch
 *             must fail do fail.
 *
 * In modes 0-2 the expected verdict comes from OpenSSL directly, the
 * harness's own reading of the RFC, and the state machine is checked
 * after it: a dead run gives no transcript, no Ke and no second try.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>

#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/spake2.h>

#include "fuzz.h"

#define ELEM TETHER_SPAKE2_ELEM_LEN
#define CONF TETHER_SPAKE2_CONF_LEN
#define KE TETHER_SPAKE2_KE_LEN

/* RFC 9382 Appendix B, vector 1: A = "server", B = "client". */
static const char id_a[] = "server";
static const char id_b[] = "client";
static const char hex_w[] =
    "2ee57912099d31560b3a44b1184b9b4866e904c49d12ac5042c97dca461b1a5f";
static const char hex_x[] =
    "43dd0fd7215bdcb482879fca3220c6a968e66d70b1356cac18bb26c84a78d729";
static const char hex_y[] =
    "dcb60106f276b02606d8ef0a328c02e4b629f84f89786af5befb0bc75b6e66be";
static const char hex_ke[] = "0e0672dc86f8e45565d338b0540abe69";
/* M and N, compressed (RFC 9382 section 6). */
static const char hex_m[] =
    "02886e2f97ace46e55ba9dd7242579f2993b64e16ef3dcab95afd497333d8fa12f";
static const char hex_n[] =
    "03d8bbd6c639c62937b04d997f38c3770719c629d7014d49a24b4f98baa1292b49";

/* What every run shares, made once. */
struct fixed {
	uint8_t w[32], x[32], y[32], ke[KE];
	EC_GROUP *group;
	BN_CTX *bnctx;
	uint8_t wm[ELEM]; /* w*M: what B must refuse */
	uint8_t wn[ELEM]; /* w*N: what A must refuse */
	uint8_t neg_wn[ELEM];
	uint8_t g[ELEM];
	uint8_t p[32]; /* the field prime */
};

static struct fixed fx;

static void unhex(const char *hex, uint8_t *out, size_t n)
{
	CHECK(strlen(hex) == 2 * n);
	CHECK(tether_hex_decode(hex, out, n) == 0);
}

static void encode(const EC_POINT *p, uint8_t out[ELEM])
{
	CHECK(EC_POINT_point2oct(fx.group, p, POINT_CONVERSION_UNCOMPRESSED,
				 out, ELEM, fx.bnctx) == ELEM);
}

/* w times the compressed constant c, uncompressed into out; -w*c too. */
static void w_times(const char *hex_c, uint8_t out[ELEM], uint8_t *neg)
{
	uint8_t c[33];
	EC_POINT *pc = EC_POINT_new(fx.group), *r = EC_POINT_new(fx.group);
	BIGNUM *w = BN_bin2bn(fx.w, 32, NULL);

	unhex(hex_c, c, sizeof(c));
	CHECK(pc != NULL && r != NULL && w != NULL);
	CHECK(EC_POINT_oct2point(fx.group, pc, c, sizeof(c), fx.bnctx) == 1);
	CHECK(EC_POINT_mul(fx.group, r, NULL, pc, w, fx.bnctx) == 1);
	encode(r, out);
	if (neg != NULL) {
		CHECK(EC_POINT_invert(fx.group, r, fx.bnctx) == 1);
		encode(r, neg);
	}
	EC_POINT_free(pc);
	EC_POINT_free(r);
	BN_free(w);
}

static void setup(void)
{
	BIGNUM *p;

	unhex(hex_w, fx.w, 32);
	unhex(hex_x, fx.x, 32);
	unhex(hex_y, fx.y, 32);
	unhex(hex_ke, fx.ke, KE);
	fx.group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	fx.bnctx = BN_CTX_new();
	p = BN_new();
	CHECK(fx.group != NULL && fx.bnctx != NULL && p != NULL);
	w_times(hex_m, fx.wm, NULL);
	w_times(hex_n, fx.wn, fx.neg_wn);
	encode(EC_GROUP_get0_generator(fx.group), fx.g);
	CHECK(EC_GROUP_get_curve(fx.group, p, NULL, NULL, fx.bnctx) == 1);
	CHECK(BN_bn2binpad(p, fx.p, 32) == 32);
	BN_free(p);
}

/* A started party (B if b), its message in msg. */
static struct tether_spake2 *party(bool b, uint8_t msg[ELEM])
{
	struct tether_spake2 *s;

	s = tether_spake2_new(b ? TETHER_SPAKE2_B : TETHER_SPAKE2_A, id_a,
			      strlen(id_a), id_b, strlen(id_b), fx.w);
	CHECK(s != NULL);
	CHECK(tether_spake2_set_scalar(s, b ? fx.y : fx.x) == 0);
	CHECK(tether_spake2_start(s, msg) == 0);
	return s;
}

/*
 * The harness's own verdict on an element for party b: uncompressed, a
 * point of the curve, not infinity, and not w times the other party's
 * constant.
 */
static bool acceptable(const uint8_t e[ELEM], bool b)
{
	EC_POINT *pt;
	bool ok;

	if (e[0] != POINT_CONVERSION_UNCOMPRESSED)
		return false;
	if (memcmp(e, b ? fx.wm : fx.wn, ELEM) == 0)
		return false;
	pt = EC_POINT_new(fx.group);
	CHECK(pt != NULL);
	ok = EC_POINT_oct2point(fx.group, pt, e, ELEM, fx.bnctx) == 1 &&
	     EC_POINT_is_on_curve(fx.group, pt, fx.bnctx) == 1 &&
	     !EC_POINT_is_at_infinity(fx.group, pt);
	EC_POINT_free(pt);
	return ok;
}

/* After a refused element: the run is dead. */
static void check_dead(struct tether_spake2 *s, const uint8_t e[ELEM])
{
	uint8_t conf[CONF] = {0}, ke[KE];
	const uint8_t *tt;
	size_t len;

	CHECK(tether_spake2_get_transcript(s, &tt, &len) == TETHER_ERR_STATE);
	CHECK(tether_spake2_get_ke(s, ke) == TETHER_ERR_STATE);
	CHECK(tether_spake2_verify(s, conf) == TETHER_ERR_STATE);
	CHECK(tether_spake2_finish(s, e, NULL, 0, conf) == TETHER_ERR_STATE);
}

/* Party b takes element e and a confirmation; the verdict must match. */
static void take(bool b, const uint8_t e[ELEM], const uint8_t peer_conf[CONF],
		 const uint8_t *aad, size_t aad_len)
{
	uint8_t conf[CONF], ke[KE], mine[ELEM];
	struct tether_spake2 *s = party(b, mine);
	const uint8_t *tt;
	size_t len;
	bool want = acceptable(e, b);
	int r;

	r = tether_spake2_finish(s, e, aad, aad_len, conf);
	if (r != 0) {
		if (want)
			fprintf(stderr, "a valid element was refused: %s\n",
				tether_strerror(r));
		CHECK(!want && r == TETHER_ERR_CRYPTO);
		check_dead(s, e);
		tether_spake2_free(s);
		return;
	}
	CHECK(want);
	CHECK(tether_spake2_get_transcript(s, &tt, &len) == 0);
	CHECK(len == 6 * 8 + strlen(id_a) + strlen(id_b) + 3 * ELEM + 32);
	CHECK(tether_spake2_get_ke(s, ke) == TETHER_ERR_STATE);
	CHECK(tether_spake2_finish(s, e, NULL, 0, conf) == TETHER_ERR_STATE);
	r = tether_spake2_verify(s, peer_conf);
	/* Without the password the fuzzer cannot make a good MAC. */
	CHECK(r == TETHER_ERR_AUTH);
	CHECK(tether_spake2_get_ke(s, ke) == TETHER_ERR_STATE);
	CHECK(tether_spake2_verify(s, peer_conf) == TETHER_ERR_STATE);
	tether_spake2_free(s);
}

/* Fills n bytes of out from data (zero-padded); returns bytes used. */
static size_t take_bytes(uint8_t *out, size_t n, const uint8_t *data,
			 size_t size)
{
	size_t k = size < n ? size : n;

	memset(out, 0, n);
	if (k > 0)
		memcpy(out, data, k);
	return k;
}

static void mode_raw(bool b, const uint8_t *data, size_t size)
{
	uint8_t e[ELEM], conf[CONF];
	size_t used;

	used = take_bytes(e, ELEM, data, size);
	used += take_bytes(conf, CONF, data + used, size - used);
	take(b, e, conf, data + used, size - used);
}

static void mode_x(uint8_t b0, const uint8_t *data, size_t size)
{
	uint8_t c[33], e[ELEM], conf[CONF];
	EC_POINT *pt = EC_POINT_new(fx.group);
	size_t used;

	CHECK(pt != NULL);
	c[0] = (b0 & 8) ? 0x03 : 0x02;
	used = take_bytes(c + 1, 32, data, size);
	if (EC_POINT_oct2point(fx.group, pt, c, sizeof(c), fx.bnctx) == 1) {
		encode(pt, e);
		if (b0 & 16)
			e[ELEM - 1] ^= 1;
	} else {
		/* No point with that x: the bytes as they are. */
		e[0] = POINT_CONVERSION_UNCOMPRESSED;
		memcpy(e + 1, c + 1, 32);
		memset(e + 33, 0, 32);
	}
	EC_POINT_free(pt);
	used += take_bytes(conf, CONF, data + used, size - used);
	take(b0 & 4, e, conf, data + used, size - used);
}

static void mode_special(bool b, const uint8_t *data, size_t size)
{
	uint8_t e[ELEM], conf[CONF] = {0}, c[33];
	EC_POINT *pt;
	size_t i;

	if (size == 0)
		return;
	memset(e, 0, sizeof(e));
	switch (data[0] % 9) {
	case 0: /* infinity as OpenSSL writes it, padded */
		break;
	case 1:
		memcpy(e, fx.wm, ELEM);
		break;
	case 2:
		memcpy(e, fx.wn, ELEM);
		break;
	case 3:
		memcpy(e, fx.g, ELEM);
		break;
	case 4:
		memcpy(e, fx.neg_wn, ELEM);
		break;
	case 5: /* x = p (with G's y) */
		memcpy(e, fx.g, ELEM);
		memcpy(e + 1, fx.p, 32);
		break;
	case 6: /* y = p */
		memcpy(e, fx.g, ELEM);
		memcpy(e + 33, fx.p, 32);
		break;
	case 7: /* G compressed, then padding */
		pt = EC_POINT_new(fx.group);
		CHECK(pt != NULL);
		CHECK(EC_POINT_oct2point(fx.group, pt, fx.g, ELEM, fx.bnctx));
		CHECK(EC_POINT_point2oct(fx.group, pt,
					 POINT_CONVERSION_COMPRESSED, c,
					 sizeof(c), fx.bnctx) == sizeof(c));
		memcpy(e, c, sizeof(c));
		EC_POINT_free(pt);
		break;
	case 8: /* G hybrid: OpenSSL itself would take it */
		memcpy(e, fx.g, ELEM);
		e[0] = (fx.g[ELEM - 1] & 1) ? 0x07 : 0x06;
		break;
	}
	/* Small perturbations reach p+1, the y's neighbours, and so on. */
	for (i = 1; i < size && i <= ELEM; i++)
		e[ELEM - i] ^= data[i];
	take(b, e, conf, NULL, 0);
}

/* Flips bit i of buf (n bytes) if it lies there; i counts on past it. */
static bool flip_bit(uint8_t *buf, size_t n, size_t *i)
{
	if (*i < 8 * n) {
		buf[*i / 8] ^= (uint8_t)(1u << (*i % 8));
		*i = SIZE_MAX;
		return true;
	}
	if (*i != SIZE_MAX)
		*i -= 8 * n;
	return false;
}

/* The verdict party p must reach on the peer's confirmation. */
static void check_verdict(struct tether_spake2 *p, int v, bool want_ok)
{
	uint8_t ke[KE];

	CHECK(v == (want_ok ? 0 : TETHER_ERR_AUTH));
	if (v == 0) {
		/* Same TT as the RFC's run whatever the AAD: its Ke. */
		CHECK(tether_spake2_get_ke(p, ke) == 0);
		CHECK(memcmp(ke, fx.ke, KE) == 0);
	} else {
		CHECK(tether_spake2_get_ke(p, ke) == TETHER_ERR_STATE);
	}
}

static void mode_honest(const uint8_t *data, size_t size)
{
	struct tether_spake2 *a, *b;
	/* A party whose finish fails sends no MAC: the peer sees zeros. */
	uint8_t ma[ELEM], mb[ELEM], ca[CONF] = {0}, cb[CONF] = {0};
	const uint8_t *aad_a = NULL, *aad_b = NULL;
	size_t i = SIZE_MAX, la = 0, lb = 0, rest;
	bool fma, fmb, fca, fcb, same_aad;
	int ra, rb;

	if (size >= 2)
		i = (size_t)data[0] << 8 | data[1];
	if (size >= 3) {
		rest = size - 3;
		aad_a = data + 3;
		if (data[2] == 0x80) {
			/* Equal AADs, as the real peers have them. */
			la = lb = rest / 2;
			aad_b = aad_a;
		} else {
			la = rest * data[2] / 255;
			lb = rest - la;
			aad_b = data + 3 + la;
		}
	}
	same_aad = la == lb && (la == 0 || memcmp(aad_a, aad_b, la) == 0);

	a = party(false, ma);
	b = party(true, mb);
	/* One bit of pA, pB, cA or cB flipped in flight, in that order. */
	fma = flip_bit(ma, ELEM, &i);
	fmb = flip_bit(mb, ELEM, &i);
	ra = tether_spake2_finish(a, mb, aad_a, la, ca);
	rb = tether_spake2_finish(b, ma, aad_b, lb, cb);
	/* A flipped element is refused exactly when it is no point. */
	CHECK(ra == (acceptable(mb, false) ? 0 : TETHER_ERR_CRYPTO));
	CHECK(rb == (acceptable(ma, true) ? 0 : TETHER_ERR_CRYPTO));
	fca = flip_bit(ca, CONF, &i);
	fcb = flip_bit(cb, CONF, &i);
	/*
	 * A changed element gives the two parties different transcripts, a
	 * different AAD different confirmation keys: either fails both.
	 * A changed MAC fails only the party that checks it.
	 */
	if (ra == 0)
		check_verdict(a, tether_spake2_verify(a, cb),
			      !fma && !fmb && same_aad && !fcb);
	if (rb == 0)
		check_verdict(b, tether_spake2_verify(b, ca),
			      !fma && !fmb && same_aad && !fca);
	tether_spake2_free(a);
	tether_spake2_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;

	if (!ready) {
		setup();
		ready = true;
	}
	/* The AAD is pairing info, a few hundred bytes; more only costs. */
	if (size == 0 || size > 4096)
		return 0;
	switch (data[0] & 3) {
	case 0:
		mode_raw(data[0] & 4, data + 1, size - 1);
		break;
	case 1:
		mode_x(data[0], data + 1, size - 1);
		break;
	case 2:
		mode_special(data[0] & 4, data + 1, size - 1);
		break;
	case 3:
		mode_honest(data + 1, size - 1);
		break;
	}
	return 0;
}
