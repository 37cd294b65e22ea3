/*
 * SPAKE2 (RFC 9382), ciphersuite SPAKE2-P256-SHA256-HKDF-HMAC, on OpenSSL 3's
 * EC_POINT/BIGNUM API.
 *
 *   A: pA = x*G + w*M        B: pB = y*G + w*N
 *   A: K = x*(pB - w*N)      B: K = y*(pA - w*M)
 *   TT = len(A)||A || len(B)||B || len(pA)||pA || len(pB)||pB
 *        || len(K)||K || len(w)||w      (len: 8 bytes little-endian)
 *   SHA-256(TT) = Ke || Ka
 *   KcA || KcB = HKDF-SHA256(Ka, nil, "ConfirmationKeys" || AAD)
 *   cA = HMAC(KcA, TT);  cB = HMAC(KcB, TT)
 *
 * Secret-scalar multiplications are done one scalar at a time (x*G, then
 * w*M) because OpenSSL only takes its constant-time ladder for those shapes;
 * a combined x*G + w*M call may fall back to variable-time wNAF.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>

#include <tether/alloc.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/spake2.h>

#define HASH_LEN 32
#define KC_LEN 16     /* each of KcA and KcB */
#define W_HASH_LEN 40 /* 64 bits over the order, so mod n is unbiased */
#define LEN_PREFIX 8
/* Identities are names, not payloads; keeps the TT size arithmetic safe. */
#define ID_MAX 4096

/* scrypt cost for password_to_w: about 16 MiB and tens of milliseconds. */
#define SCRYPT_N 16384
#define SCRYPT_R 8
#define SCRYPT_P 1
#define SCRYPT_MAXMEM (64u * 1024 * 1024)

/* RFC 9382 section 6, P-256 M and N (compressed SEC1). */
static const uint8_t spake2_m[33] = {
    0x02, 0x88, 0x6e, 0x2f, 0x97, 0xac, 0xe4, 0x6e, 0x55, 0xba, 0x9d,
    0xd7, 0x24, 0x25, 0x79, 0xf2, 0x99, 0x3b, 0x64, 0xe1, 0x6e, 0xf3,
    0xdc, 0xab, 0x95, 0xaf, 0xd4, 0x97, 0x33, 0x3d, 0x8f, 0xa1, 0x2f,
};

static const uint8_t spake2_n[33] = {
    0x03, 0xd8, 0xbb, 0xd6, 0xc6, 0x39, 0xc6, 0x29, 0x37, 0xb0, 0x4d,
    0x99, 0x7f, 0x38, 0xc3, 0x77, 0x07, 0x19, 0xc6, 0x29, 0xd7, 0x01,
    0x4d, 0x49, 0xa2, 0x4b, 0x4f, 0x98, 0xba, 0xa1, 0x29, 0x2b, 0x49,
};

static const char conf_label[] = "ConfirmationKeys";

enum spake2_state {
	SPAKE2_NEW,	 /* scalar may still be replaced */
	SPAKE2_STARTED,	 /* our message is out */
	SPAKE2_FINISHED, /* keys derived, waiting for the peer's MAC */
	SPAKE2_VERIFIED, /* peer confirmed: Ke may be released */
	SPAKE2_FAILED,	 /* bad peer element or MAC: this run is dead */
};

struct tether_spake2 {
	enum tether_spake2_role role;
	enum spake2_state state;
	uint8_t *id_a;
	size_t id_a_len;
	uint8_t *id_b;
	size_t id_b_len;
	uint8_t w[TETHER_SPAKE2_W_LEN];
	EC_GROUP *group;
	BN_CTX *bnctx;
	EC_POINT *m;
	EC_POINT *n;
	BIGNUM *w_bn;
	BIGNUM *x; /* x for A, y for B */
	uint8_t my_msg[TETHER_SPAKE2_ELEM_LEN];
	uint8_t *tt;
	size_t tt_len;
	uint8_t ke[TETHER_SPAKE2_KE_LEN];
	uint8_t peer_conf[TETHER_SPAKE2_CONF_LEN]; /* the MAC we expect */
};

/* P-256; a fresh group per state keeps the states independent. */
static EC_GROUP *p256_group(void)
{
	return EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
}

int tether_spake2_password_to_w(const char *password, const char *salt,
				uint8_t w[TETHER_SPAKE2_W_LEN])
{
	uint8_t hash[W_HASH_LEN];
	EC_GROUP *group = NULL;
	BN_CTX *bnctx = NULL;
	BIGNUM *bn = NULL;
	int err = TETHER_ERR_CRYPTO;

	if (!password || !salt || !w)
		return TETHER_ERR_INVALID;
	if (EVP_PBE_scrypt(password, strlen(password),
			   (const unsigned char *)salt, strlen(salt), SCRYPT_N,
			   SCRYPT_R, SCRYPT_P, SCRYPT_MAXMEM, hash,
			   sizeof(hash)) != 1)
		goto out;
	group = p256_group();
	bnctx = BN_CTX_new();
	bn = BN_secure_new();
	if (!group || !bnctx || !bn)
		goto out;
	BN_set_flags(bn, BN_FLG_CONSTTIME);
	if (!BN_bin2bn(hash, sizeof(hash), bn) ||
	    !BN_nnmod(bn, bn, EC_GROUP_get0_order(group), bnctx) ||
	    BN_bn2binpad(bn, w, TETHER_SPAKE2_W_LEN) != TETHER_SPAKE2_W_LEN)
		goto out;
	err = 0;
out:
	OPENSSL_cleanse(hash, sizeof(hash));
	BN_clear_free(bn);
	BN_CTX_free(bnctx);
	EC_GROUP_free(group);
	return err;
}

/* Copies an identity; a zero-length one is kept as NULL. */
static int copy_id(const void *id, size_t len, uint8_t **out)
{
	*out = NULL;
	if (len == 0)
		return 0;
	if (!id || len > ID_MAX)
		return TETHER_ERR_INVALID;
	*out = tether_malloc(len);
	if (!*out)
		return TETHER_ERR_NOMEM;
	memcpy(*out, id, len);
	return 0;
}

/* Draws a fresh scalar uniform in [1, n). */
static int random_scalar(struct tether_spake2 *s)
{
	const BIGNUM *order = EC_GROUP_get0_order(s->group);

	do {
		if (!BN_priv_rand_range_ex(s->x, order, 0, s->bnctx))
			return TETHER_ERR_CRYPTO;
	} while (BN_is_zero(s->x));
	return 0;
}

static EC_POINT *decode_const(const EC_GROUP *group, const uint8_t *buf,
			      size_t len, BN_CTX *bnctx)
{
	EC_POINT *p = EC_POINT_new(group);

	if (p && !EC_POINT_oct2point(group, p, buf, len, bnctx)) {
		EC_POINT_free(p);
		p = NULL;
	}
	return p;
}

struct tether_spake2 *tether_spake2_new(enum tether_spake2_role role,
					const void *id_a, size_t id_a_len,
					const void *id_b, size_t id_b_len,
					const uint8_t w[TETHER_SPAKE2_W_LEN])
{
	struct tether_spake2 *s;

	if ((role != TETHER_SPAKE2_A && role != TETHER_SPAKE2_B) || !w)
		return NULL;
	s = tether_calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->role = role;
	s->state = SPAKE2_NEW;
	memcpy(s->w, w, sizeof(s->w));
	if (copy_id(id_a, id_a_len, &s->id_a) ||
	    copy_id(id_b, id_b_len, &s->id_b))
		goto fail;
	s->id_a_len = id_a_len;
	s->id_b_len = id_b_len;

	s->group = p256_group();
	s->bnctx = BN_CTX_new();
	s->w_bn = BN_secure_new();
	s->x = BN_secure_new();
	if (!s->group || !s->bnctx || !s->w_bn || !s->x)
		goto fail;
	BN_set_flags(s->w_bn, BN_FLG_CONSTTIME);
	BN_set_flags(s->x, BN_FLG_CONSTTIME);
	s->m = decode_const(s->group, spake2_m, sizeof(spake2_m), s->bnctx);
	s->n = decode_const(s->group, spake2_n, sizeof(spake2_n), s->bnctx);
	if (!s->m || !s->n)
		goto fail;

	/*
	 * w goes into TT exactly as given, so it must already be reduced:
	 * a w >= n would give the same points as w mod n but a different TT.
	 */
	if (!BN_bin2bn(s->w, sizeof(s->w), s->w_bn) ||
	    BN_cmp(s->w_bn, EC_GROUP_get0_order(s->group)) >= 0)
		goto fail;
	if (random_scalar(s))
		goto fail;
	return s;

fail:
	tether_spake2_free(s);
	return NULL;
}

void tether_spake2_free(struct tether_spake2 *s)
{
	if (!s)
		return;
	tether_freezero(s->id_a, s->id_a_len);
	tether_freezero(s->id_b, s->id_b_len);
	tether_freezero(s->tt, s->tt_len);
	BN_clear_free(s->x);
	BN_clear_free(s->w_bn);
	EC_POINT_free(s->m);
	EC_POINT_free(s->n);
	BN_CTX_free(s->bnctx);
	EC_GROUP_free(s->group);
	tether_freezero(s, sizeof(*s));
}

int tether_spake2_set_scalar(struct tether_spake2 *s,
			     const uint8_t x[TETHER_SPAKE2_SCALAR_LEN])
{
	BIGNUM *tmp;
	int err = TETHER_ERR_INVALID;

	if (!s || !x)
		return TETHER_ERR_INVALID;
	if (s->state != SPAKE2_NEW)
		return TETHER_ERR_STATE;
	/* Parse aside so a rejected scalar leaves the drawn one in place. */
	tmp = BN_secure_new();
	if (!tmp)
		return TETHER_ERR_NOMEM;
	BN_set_flags(tmp, BN_FLG_CONSTTIME);
	if (!BN_bin2bn(x, TETHER_SPAKE2_SCALAR_LEN, tmp)) {
		err = TETHER_ERR_CRYPTO;
		goto out;
	}
	if (BN_is_zero(tmp) || BN_cmp(tmp, EC_GROUP_get0_order(s->group)) >= 0)
		goto out;
	if (!BN_copy(s->x, tmp)) {
		err = TETHER_ERR_CRYPTO;
		goto out;
	}
	err = 0;
out:
	BN_clear_free(tmp);
	return err;
}

int tether_spake2_get_scalar(const struct tether_spake2 *s,
			     uint8_t x[TETHER_SPAKE2_SCALAR_LEN])
{
	if (!s || !x)
		return TETHER_ERR_INVALID;
	if (BN_bn2binpad(s->x, x, TETHER_SPAKE2_SCALAR_LEN) !=
	    TETHER_SPAKE2_SCALAR_LEN)
		return TETHER_ERR_CRYPTO;
	return 0;
}

/* Uncompressed 65-byte encoding of p. */
static int encode_point(const struct tether_spake2 *s, const EC_POINT *p,
			uint8_t out[TETHER_SPAKE2_ELEM_LEN])
{
	if (EC_POINT_point2oct(s->group, p, POINT_CONVERSION_UNCOMPRESSED, out,
			       TETHER_SPAKE2_ELEM_LEN,
			       s->bnctx) != TETHER_SPAKE2_ELEM_LEN)
		return TETHER_ERR_CRYPTO;
	return 0;
}

int tether_spake2_start(struct tether_spake2 *s,
			uint8_t msg[TETHER_SPAKE2_ELEM_LEN])
{
	EC_POINT *xg = NULL, *wm = NULL;
	const EC_POINT *mine;
	int err = TETHER_ERR_CRYPTO;

	if (!s || !msg)
		return TETHER_ERR_INVALID;
	if (s->state != SPAKE2_NEW)
		return TETHER_ERR_STATE;
	mine = s->role == TETHER_SPAKE2_A ? s->m : s->n;
	xg = EC_POINT_new(s->group);
	wm = EC_POINT_new(s->group);
	if (!xg || !wm)
		goto out;
	/* Two single-scalar multiplies: see the file comment. */
	if (!EC_POINT_mul(s->group, xg, s->x, NULL, NULL, s->bnctx) ||
	    !EC_POINT_mul(s->group, wm, NULL, mine, s->w_bn, s->bnctx) ||
	    !EC_POINT_add(s->group, xg, xg, wm, s->bnctx))
		goto out;
	err = encode_point(s, xg, s->my_msg);
	if (err)
		goto out;
	memcpy(msg, s->my_msg, TETHER_SPAKE2_ELEM_LEN);
	s->state = SPAKE2_STARTED;
out:
	EC_POINT_clear_free(xg);
	EC_POINT_clear_free(wm);
	return err;
}

/* Appends len(data) as 8 bytes little-endian, then data. */
static uint8_t *put_field(uint8_t *p, const void *data, size_t len)
{
	uint64_t v = len;
	int i;

	for (i = 0; i < LEN_PREFIX; i++) {
		*p++ = (uint8_t)(v & 0xff);
		v >>= 8;
	}
	if (len)
		memcpy(p, data, len);
	return p + len;
}

/* Builds TT into s->tt; pA and pB in protocol order, not ours/theirs. */
static int build_transcript(struct tether_spake2 *s, const uint8_t *pa,
			    const uint8_t *pb, const uint8_t *k)
{
	size_t len;
	uint8_t *p;

	len = 6 * LEN_PREFIX + s->id_a_len + s->id_b_len +
	      3 * TETHER_SPAKE2_ELEM_LEN + TETHER_SPAKE2_W_LEN;
	s->tt = tether_malloc(len);
	if (!s->tt)
		return TETHER_ERR_NOMEM;
	s->tt_len = len;
	p = s->tt;
	p = put_field(p, s->id_a, s->id_a_len);
	p = put_field(p, s->id_b, s->id_b_len);
	p = put_field(p, pa, TETHER_SPAKE2_ELEM_LEN);
	p = put_field(p, pb, TETHER_SPAKE2_ELEM_LEN);
	p = put_field(p, k, TETHER_SPAKE2_ELEM_LEN);
	put_field(p, s->w, TETHER_SPAKE2_W_LEN);
	return 0;
}

static int hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *data,
		       size_t len, uint8_t out[HASH_LEN])
{
	size_t out_len = 0;

	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, key_len, data,
		       len, out, HASH_LEN, &out_len) ||
	    out_len != HASH_LEN)
		return TETHER_ERR_CRYPTO;
	return 0;
}

/*
 * Parses and checks the peer's element: exactly the uncompressed form (the
 * RFC fixes it for P-256 and it keeps TT unambiguous), on the curve (which
 * EC_POINT_oct2point enforces) and not the point at infinity.
 */
static int decode_peer(struct tether_spake2 *s,
		       const uint8_t buf[TETHER_SPAKE2_ELEM_LEN], EC_POINT *p)
{
	if (buf[0] != POINT_CONVERSION_UNCOMPRESSED)
		return TETHER_ERR_CRYPTO;
	if (!EC_POINT_oct2point(s->group, p, buf, TETHER_SPAKE2_ELEM_LEN,
				s->bnctx))
		return TETHER_ERR_CRYPTO;
	if (EC_POINT_is_at_infinity(s->group, p) ||
	    EC_POINT_is_on_curve(s->group, p, s->bnctx) != 1)
		return TETHER_ERR_CRYPTO;
	return 0;
}

/* K = x * (peer - w*peer_const), encoded. */
static int compute_k(struct tether_spake2 *s, const EC_POINT *peer,
		     uint8_t k[TETHER_SPAKE2_ELEM_LEN])
{
	const EC_POINT *theirs = s->role == TETHER_SPAKE2_A ? s->n : s->m;
	EC_POINT *t = NULL, *kp = NULL;
	int err = TETHER_ERR_CRYPTO;

	t = EC_POINT_new(s->group);
	kp = EC_POINT_new(s->group);
	if (!t || !kp)
		goto out;
	if (!EC_POINT_mul(s->group, t, NULL, theirs, s->w_bn, s->bnctx) ||
	    !EC_POINT_invert(s->group, t, s->bnctx) ||
	    !EC_POINT_add(s->group, t, peer, t, s->bnctx))
		goto out;
	/* The peer sent exactly w*N (or w*M): K would be O, a known value. */
	if (EC_POINT_is_at_infinity(s->group, t))
		goto out;
	if (!EC_POINT_mul(s->group, kp, NULL, t, s->x, s->bnctx))
		goto out;
	err = encode_point(s, kp, k);
out:
	EC_POINT_clear_free(t);
	EC_POINT_clear_free(kp);
	return err;
}

/* From TT: Ke, then KcA/KcB with aad, then both MACs. */
static int derive_keys(struct tether_spake2 *s, const void *aad, size_t aad_len,
		       uint8_t my_conf[TETHER_SPAKE2_CONF_LEN])
{
	uint8_t hash[HASH_LEN], kc[2 * KC_LEN];
	uint8_t conf_a[HASH_LEN], conf_b[HASH_LEN];
	size_t label_len = sizeof(conf_label) - 1;
	uint8_t *info = NULL;
	int err = TETHER_ERR_CRYPTO;

	if (EVP_Digest(s->tt, s->tt_len, hash, NULL, EVP_sha256(), NULL) != 1)
		goto out;
	memcpy(s->ke, hash, TETHER_SPAKE2_KE_LEN);

	info = tether_malloc(label_len + aad_len);
	if (!info) {
		err = TETHER_ERR_NOMEM;
		goto out;
	}
	memcpy(info, conf_label, label_len);
	if (aad_len)
		memcpy(info + label_len, aad, aad_len);
	/* Ka is the second half of Hash(TT). */
	err = tether_hkdf_sha256(hash + TETHER_SPAKE2_KE_LEN,
				 HASH_LEN - TETHER_SPAKE2_KE_LEN, NULL, 0, info,
				 label_len + aad_len, kc, sizeof(kc));
	if (err)
		goto out;
	err = hmac_sha256(kc, KC_LEN, s->tt, s->tt_len, conf_a);
	if (err)
		goto out;
	err = hmac_sha256(kc + KC_LEN, KC_LEN, s->tt, s->tt_len, conf_b);
	if (err)
		goto out;
	if (s->role == TETHER_SPAKE2_A) {
		memcpy(my_conf, conf_a, TETHER_SPAKE2_CONF_LEN);
		memcpy(s->peer_conf, conf_b, TETHER_SPAKE2_CONF_LEN);
	} else {
		memcpy(my_conf, conf_b, TETHER_SPAKE2_CONF_LEN);
		memcpy(s->peer_conf, conf_a, TETHER_SPAKE2_CONF_LEN);
	}
out:
	tether_free(info);
	OPENSSL_cleanse(hash, sizeof(hash));
	OPENSSL_cleanse(kc, sizeof(kc));
	OPENSSL_cleanse(conf_a, sizeof(conf_a));
	OPENSSL_cleanse(conf_b, sizeof(conf_b));
	return err;
}

int tether_spake2_finish(struct tether_spake2 *s,
			 const uint8_t peer_msg[TETHER_SPAKE2_ELEM_LEN],
			 const void *aad, size_t aad_len,
			 uint8_t my_conf[TETHER_SPAKE2_CONF_LEN])
{
	uint8_t k[TETHER_SPAKE2_ELEM_LEN];
	EC_POINT *peer = NULL;
	const uint8_t *pa, *pb;
	int err;

	if (!s || !peer_msg || !my_conf || (!aad && aad_len))
		return TETHER_ERR_INVALID;
	if (s->state != SPAKE2_STARTED)
		return TETHER_ERR_STATE;
	if (aad_len > SIZE_MAX - sizeof(conf_label))
		return TETHER_ERR_TOO_LARGE;
	/*
	 * One peer message per run, whatever happens: the RFC says to abort
	 * on a bad element, and a second try with the same scalar is what
	 * scalar reuse would give an attacker.
	 */
	s->state = SPAKE2_FAILED;

	peer = EC_POINT_new(s->group);
	if (!peer) {
		err = TETHER_ERR_NOMEM;
		goto out;
	}
	err = decode_peer(s, peer_msg, peer);
	if (err)
		goto out;
	err = compute_k(s, peer, k);
	if (err)
		goto out;
	pa = s->role == TETHER_SPAKE2_A ? s->my_msg : peer_msg;
	pb = s->role == TETHER_SPAKE2_A ? peer_msg : s->my_msg;
	err = build_transcript(s, pa, pb, k);
	if (err)
		goto out;
	err = derive_keys(s, aad, aad_len, my_conf);
	if (err)
		goto out;
	s->state = SPAKE2_FINISHED;
out:
	if (err) {
		tether_freezero(s->tt, s->tt_len);
		s->tt = NULL;
		s->tt_len = 0;
		OPENSSL_cleanse(s->ke, sizeof(s->ke));
	}
	OPENSSL_cleanse(k, sizeof(k));
	EC_POINT_free(peer);
	return err;
}

int tether_spake2_verify(struct tether_spake2 *s,
			 const uint8_t peer_conf[TETHER_SPAKE2_CONF_LEN])
{
	if (!s || !peer_conf)
		return TETHER_ERR_INVALID;
	if (s->state != SPAKE2_FINISHED)
		return TETHER_ERR_STATE;
	if (CRYPTO_memcmp(peer_conf, s->peer_conf, TETHER_SPAKE2_CONF_LEN)) {
		/* Wrong password (or an attacker's guess): nothing to keep. */
		s->state = SPAKE2_FAILED;
		OPENSSL_cleanse(s->ke, sizeof(s->ke));
		return TETHER_ERR_AUTH;
	}
	s->state = SPAKE2_VERIFIED;
	return 0;
}

int tether_spake2_get_ke(const struct tether_spake2 *s,
			 uint8_t ke[TETHER_SPAKE2_KE_LEN])
{
	if (!s || !ke)
		return TETHER_ERR_INVALID;
	if (s->state != SPAKE2_VERIFIED)
		return TETHER_ERR_STATE;
	memcpy(ke, s->ke, TETHER_SPAKE2_KE_LEN);
	return 0;
}

int tether_spake2_get_transcript(const struct tether_spake2 *s,
				 const uint8_t **tt, size_t *len)
{
	if (!s || !tt || !len)
		return TETHER_ERR_INVALID;
	if (!s->tt)
		return TETHER_ERR_STATE;
	*tt = s->tt;
	*len = s->tt_len;
	return 0;
}
