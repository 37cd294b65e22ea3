/*
 * Sealed channel tests: round trips, and every way an attacker on the path
 * can mangle the frame stream (tamper, replay, reorder, drop) must fail to
 * open without knocking the receiver off its counter.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/seal.h>

#define TAG TETHER_SEAL_TAG_LEN

static const uint8_t hdr[] = {0x01, 0x02, 0x00, 0x00, 0x00, 0x07};

/* A sender and a receiver sharing one fixed key. */
static void pair(struct tether_seal **tx, struct tether_seal **rx)
{
	uint8_t key[TETHER_SEAL_KEY_LEN];

	memset(key, 0x5a, sizeof(key));
	*tx = tether_seal_new(key);
	*rx = tether_seal_new(key);
	cr_assert_not_null(*tx);
	cr_assert_not_null(*rx);
}

/* Seals the NUL-terminated text (without the NUL) into out. */
static size_t seal_str(struct tether_seal *tx, const char *text, uint8_t *out)
{
	size_t len = strlen(text);

	cr_assert_eq(tether_seal_encrypt(tx, hdr, sizeof(hdr),
					 (const uint8_t *)text, len, out),
		     0);
	return len + TAG;
}

/* Opens a sealed frame and checks it reads back as text. */
static void open_expect(struct tether_seal *rx, const uint8_t *ct, size_t len,
			const char *text)
{
	uint8_t pt[256];

	cr_assert_leq(len - TAG, sizeof(pt));
	cr_assert_eq(tether_seal_decrypt(rx, hdr, sizeof(hdr), ct, len, pt), 0);
	cr_assert_eq(len - TAG, strlen(text));
	cr_assert(memcmp(pt, text, len - TAG) == 0);
}

static int open_frame(struct tether_seal *rx, const uint8_t *ct, size_t len)
{
	uint8_t pt[256];

	cr_assert_leq(len, sizeof(pt));
	return tether_seal_decrypt(rx, hdr, sizeof(hdr), ct, len, pt);
}

Test(seal, round_trip)
{
	struct tether_seal *tx, *rx;
	uint8_t ct[64], ct2[64];
	size_t len;

	pair(&tx, &rx);
	len = seal_str(tx, "hello, agent", ct);
	cr_assert(memcmp(ct, "hello, agent", len - TAG) != 0);
	open_expect(rx, ct, len, "hello, agent");
	len = seal_str(tx, "second", ct2);
	open_expect(rx, ct2, len, "second");
	tether_seal_free(tx);
	tether_seal_free(rx);
}

Test(seal, empty_message)
{
	struct tether_seal *tx, *rx;
	uint8_t ct[TAG], pt[1];

	pair(&tx, &rx);
	cr_assert_eq(tether_seal_encrypt(tx, NULL, 0, NULL, 0, ct), 0);
	cr_assert_eq(tether_seal_decrypt(rx, NULL, 0, ct, sizeof(ct), pt), 0);
	tether_seal_free(tx);
	tether_seal_free(rx);
}

#ifdef TETHER_TEST_HOOKS
/*
 * The null seal (a test hook) copies instead of encrypting; an empty part
 * arrives as NULL, 0, which memmove must never see (UBSan halts on it).
 */
Test(seal, null_seal_empty_parts)
{
	struct tether_seal *tx, *rx;
	uint8_t ct[4 + TAG], pt[4];

	setenv("TETHER_TEST_NULL_SEAL", "1", 1);
	pair(&tx, &rx);
	unsetenv("TETHER_TEST_NULL_SEAL");
	cr_assert_eq(tether_seal_encrypt(tx, NULL, 0, NULL, 0, ct), 0);
	cr_assert_eq(tether_seal_decrypt(rx, NULL, 0, ct, TAG, pt), 0);
	cr_assert_eq(tether_seal_encrypt2(tx, hdr, sizeof(hdr),
					  (const uint8_t *)"abcd", 4, NULL, 0,
					  ct),
		     0);
	/* Plaintext and a zero tag: what the relay would see unsealed. */
	cr_assert(memcmp(ct, "abcd", 4) == 0);
	cr_assert_eq(
	    tether_seal_decrypt(rx, hdr, sizeof(hdr), ct, sizeof(ct), pt), 0);
	cr_assert(memcmp(pt, "abcd", 4) == 0);
	tether_seal_free(tx);
	tether_seal_free(rx);
}
#endif

Test(seal, same_plaintext_different_ciphertext)
{
	struct tether_seal *tx, *rx;
	uint8_t a[64], b[64];
	size_t len;

	/* The counter moves the nonce, so repeats do not show. */
	pair(&tx, &rx);
	len = seal_str(tx, "again", a);
	seal_str(tx, "again", b);
	cr_assert(memcmp(a, b, len) != 0);
	tether_seal_free(tx);
	tether_seal_free(rx);
}

Test(seal, tampered_ciphertext_fails)
{
	struct tether_seal *tx, *rx;
	uint8_t ct[64];
	size_t len;

	pair(&tx, &rx);
	len = seal_str(tx, "transfer 10 files", ct);
	ct[3] ^= 0x80;
	cr_assert_eq(open_frame(rx, ct, len), TETHER_ERR_AUTH);
	tether_seal_free(tx);
	tether_seal_free(rx);
}

Test(seal, tampered_tag_fails)
{
	struct tether_seal *tx, *rx;
	uint8_t ct[64];
	size_t len;

	pair(&tx, &rx);
	len = seal_str(tx, "transfer 10 files", ct);
	ct[len - 1] ^= 0x01;
	cr_assert_eq(open_frame(rx, ct, len), TETHER_ERR_AUTH);
	tether_seal_free(tx);
	tether_seal_free(rx);
}

Test(seal, tampered_aad_fails)
{
	struct tether_seal *tx, *rx;
	uint8_t ct[64], pt[64], other[sizeof(hdr)];
	size_t len;

	pair(&tx, &rx);
	len = seal_str(tx, "transfer 10 files", ct);
	memcpy(other, hdr, sizeof(hdr));
	other[5] ^= 0x01;
	cr_assert_eq(tether_seal_decrypt(rx, other, sizeof(other), ct, len, pt),
		     TETHER_ERR_AUTH);
	/* Missing AAD is tampering too. */
	cr_assert_eq(tether_seal_decrypt(rx, NULL, 0, ct, len, pt),
		     TETHER_ERR_AUTH);
	open_expect(rx, ct, len, "transfer 10 files");
	tether_seal_free(tx);
	tether_seal_free(rx);
}

Test(seal, truncated_fails)
{
	struct tether_seal *tx, *rx;
	uint8_t ct[64];
	size_t len;

	pair(&tx, &rx);
	len = seal_str(tx, "some bytes", ct);
	cr_assert_eq(open_frame(rx, ct, len - 1), TETHER_ERR_AUTH);
	cr_assert_eq(open_frame(rx, ct, TAG - 1), TETHER_ERR_FORMAT);
	cr_assert_eq(open_frame(rx, ct, 0), TETHER_ERR_FORMAT);
	open_expect(rx, ct, len, "some bytes");
	tether_seal_free(tx);
	tether_seal_free(rx);
}

Test(seal, replay_fails)
{
	struct tether_seal *tx, *rx;
	uint8_t ct[64];
	size_t len;

	pair(&tx, &rx);
	len = seal_str(tx, "run rm", ct);
	open_expect(rx, ct, len, "run rm");
	cr_assert_eq(open_frame(rx, ct, len), TETHER_ERR_AUTH);
	tether_seal_free(tx);
	tether_seal_free(rx);
}

Test(seal, reorder_fails)
{
	struct tether_seal *tx, *rx;
	uint8_t m0[64], m1[64];
	size_t l0, l1;

	pair(&tx, &rx);
	l0 = seal_str(tx, "zero", m0);
	l1 = seal_str(tx, "one!", m1);
	/* Frame 1 arriving before frame 0 does not open... */
	cr_assert_eq(open_frame(rx, m1, l1), TETHER_ERR_AUTH);
	/* ...and did not move the counter, so 0 and then 1 still open. */
	open_expect(rx, m0, l0, "zero");
	open_expect(rx, m1, l1, "one!");
	tether_seal_free(tx);
	tether_seal_free(rx);
}

Test(seal, drop_fails)
{
	struct tether_seal *tx, *rx;
	uint8_t m0[64], m1[64], m2[64];
	size_t l0, l2;

	pair(&tx, &rx);
	l0 = seal_str(tx, "zero", m0);
	seal_str(tx, "one (dropped)", m1);
	l2 = seal_str(tx, "two", m2);
	open_expect(rx, m0, l0, "zero");
	cr_assert_eq(open_frame(rx, m2, l2), TETHER_ERR_AUTH);
	tether_seal_free(tx);
	tether_seal_free(rx);
}

Test(seal, failed_open_keeps_counter)
{
	struct tether_seal *tx, *rx;
	uint8_t ct[64], bad[64];
	size_t len;
	int i;

	pair(&tx, &rx);
	len = seal_str(tx, "the real frame", ct);
	memcpy(bad, ct, len);
	bad[0] ^= 0xff;
	for (i = 0; i < 3; i++)
		cr_assert_eq(open_frame(rx, bad, len), TETHER_ERR_AUTH);
	open_expect(rx, ct, len, "the real frame");
	tether_seal_free(tx);
	tether_seal_free(rx);
}

Test(seal, wrong_key_fails)
{
	uint8_t k1[TETHER_SEAL_KEY_LEN], k2[TETHER_SEAL_KEY_LEN], ct[64];
	struct tether_seal *tx, *rx;
	size_t len;

	memset(k1, 1, sizeof(k1));
	memset(k2, 2, sizeof(k2));
	tx = tether_seal_new(k1);
	rx = tether_seal_new(k2);
	cr_assert(tx && rx);
	len = seal_str(tx, "secret", ct);
	cr_assert_eq(open_frame(rx, ct, len), TETHER_ERR_AUTH);
	tether_seal_free(tx);
	tether_seal_free(rx);
}

Test(seal, in_place)
{
	struct tether_seal *tx, *rx;
	uint8_t buf[64];
	const char *text = "in place, both ways";
	size_t len = strlen(text);

	pair(&tx, &rx);
	memcpy(buf, text, len);
	cr_assert_eq(tether_seal_encrypt(tx, hdr, sizeof(hdr), buf, len, buf),
		     0);
	cr_assert(memcmp(buf, text, len) != 0);
	cr_assert_eq(
	    tether_seal_decrypt(rx, hdr, sizeof(hdr), buf, len + TAG, buf), 0);
	cr_assert(memcmp(buf, text, len) == 0);
	tether_seal_free(tx);
	tether_seal_free(rx);
}

Test(seal, large_message)
{
	struct tether_seal *tx, *rx;
	const size_t len = 256 * 1024;
	uint8_t *pt = malloc(len), *ct = malloc(len + TAG), *back = malloc(len);

	cr_assert(pt && ct && back);
	cr_assert_eq(tether_random(pt, len), 0);
	pair(&tx, &rx);
	cr_assert_eq(tether_seal_encrypt(tx, hdr, sizeof(hdr), pt, len, ct), 0);
	cr_assert_eq(
	    tether_seal_decrypt(rx, hdr, sizeof(hdr), ct, len + TAG, back), 0);
	cr_assert(memcmp(pt, back, len) == 0);
	ct[len / 2] ^= 4;
	cr_assert_eq(
	    tether_seal_decrypt(rx, hdr, sizeof(hdr), ct, len + TAG, back),
	    TETHER_ERR_AUTH);
	tether_seal_free(tx);
	tether_seal_free(rx);
	free(pt);
	free(ct);
	free(back);
}

Test(seal, nonce_layout_is_pinned)
{
	/*
	 * Frames 0 and 1 of "abc" under key 00..1f with AAD "hdr", i.e.
	 * nonces 00000000||0000000000000000 and 00000000||0000000000000001,
	 * computed independently (Python cryptography's ChaCha20Poly1305).
	 */
	static const char *const want_hex[] = {
	    "79da212f47a862ddd2c48280349003f7865b6a",
	    "083e1fa68ba56fb8f2b6d440e55c8ffc57907a",
	};
	uint8_t key[TETHER_SEAL_KEY_LEN], want[3 + TAG], got[3 + TAG];
	struct tether_seal *tx;
	size_t i;

	for (i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)i;
	tx = tether_seal_new(key);
	cr_assert_not_null(tx);
	for (i = 0; i < 2; i++) {
		cr_assert_eq(tether_hex_decode(want_hex[i], want, sizeof(want)),
			     0);
		cr_assert_eq(tether_seal_encrypt(tx, (const uint8_t *)"hdr", 3,
						 (const uint8_t *)"abc", 3,
						 got),
			     0);
		cr_assert(memcmp(got, want, sizeof(got)) == 0);
	}
	tether_seal_free(tx);
}

static void derive(uint32_t channel, enum tether_seal_dir dir, uint8_t nc,
		   uint8_t key[TETHER_SEAL_KEY_LEN])
{
	uint8_t ke[16], nonce_c[TETHER_SEAL_NONCE_LEN];
	uint8_t nonce_a[TETHER_SEAL_NONCE_LEN];

	memset(ke, 0xee, sizeof(ke));
	memset(nonce_c, nc, sizeof(nonce_c));
	memset(nonce_a, 0xaa, sizeof(nonce_a));
	cr_assert_eq(tether_seal_derive(ke, sizeof(ke), nonce_c, nonce_a,
					channel, dir, key),
		     0);
}

Test(seal, derive_separates_keys)
{
	uint8_t base[32], again[32], other[32];

	derive(1, TETHER_SEAL_CONSOLE_TO_AGENT, 0xcc, base);
	derive(1, TETHER_SEAL_CONSOLE_TO_AGENT, 0xcc, again);
	cr_assert(memcmp(base, again, 32) == 0, "derive is deterministic");
	derive(1, TETHER_SEAL_AGENT_TO_CONSOLE, 0xcc, other);
	cr_assert(memcmp(base, other, 32) != 0, "per direction");
	derive(2, TETHER_SEAL_CONSOLE_TO_AGENT, 0xcc, other);
	cr_assert(memcmp(base, other, 32) != 0, "per channel");
	derive(1, TETHER_SEAL_CONSOLE_TO_AGENT, 0xcd, other);
	cr_assert(memcmp(base, other, 32) != 0, "per nonce");
}

Test(seal, derive_pinned)
{
	uint8_t key[32], want[32];

	/*
	 * HKDF-SHA256(ikm = ee*16, salt = cc*32 || aa*32,
	 * info = "tether/1 channel" 00000001 "c2a"), computed independently.
	 */
	derive(1, TETHER_SEAL_CONSOLE_TO_AGENT, 0xcc, key);
	cr_assert_eq(tether_hex_decode("817cd6ebd364e6ea866505957850b1df"
				       "009761ae66eaf23a1a337f3e8024edc0",
				       want, sizeof(want)),
		     0);
	cr_assert(memcmp(key, want, sizeof(key)) == 0);
}

Test(seal, derive_rejects_bad_args)
{
	uint8_t ke[16] = {0}, n[TETHER_SEAL_NONCE_LEN] = {0}, key[32];

	cr_assert_eq(tether_seal_derive(ke, 0, n, n, 0,
					TETHER_SEAL_CONSOLE_TO_AGENT, key),
		     TETHER_ERR_INVALID);
	cr_assert_eq(tether_seal_derive(ke, sizeof(ke), n, n, 0,
					(enum tether_seal_dir)7, key),
		     TETHER_ERR_INVALID);
}
