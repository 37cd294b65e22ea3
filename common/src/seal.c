/*
 * Sealed channel payloads: ChaCha20-Poly1305 with an implicit counter nonce
 * (four zero bytes || 64-bit big-endian counter).  Because the counter is
 * never sent, a replayed, reordered or dropped frame is opened under the
 * wrong nonce and fails authentication; a failed open leaves the counter
 * alone so the right frame still opens.
 *
 * One EVP_CIPHER_CTX is keyed once per seal and only re-IV'd per message:
 * re-keying per frame costs more than sealing a small frame.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <tether/alloc.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/seal.h>

#define AEAD_NONCE_LEN 12
/* EVP takes int lengths; feed long messages through in pieces this big. */
#define CHUNK_MAX (1 << 30)

static const char channel_label[] = "tether/1 channel";
static const char info_label[] = "tether/1 pairing info";

struct tether_seal {
	EVP_CIPHER_CTX *ctx; /* holds the key; cleansed by OpenSSL on free */
	uint64_t counter;
	/*
	 * Set when encryption fails after a nonce was put to use: retrying
	 * under the same counter could reuse the keystream, so stop instead.
	 */
	bool broken;
	/*
	 * Test hook only: a seal that is not one (plaintext and a zero
	 * tag), so that a test can show its plaintext detector sees what a
	 * DATA frame carries.  Never compiled into a real build.
	 */
	bool null_seal;
};

int tether_seal_derive(const uint8_t *ke, size_t ke_len,
		       const uint8_t nonce_c[TETHER_SEAL_NONCE_LEN],
		       const uint8_t nonce_a[TETHER_SEAL_NONCE_LEN],
		       uint32_t channel, enum tether_seal_dir dir,
		       uint8_t key[TETHER_SEAL_KEY_LEN])
{
	size_t label_len = sizeof(channel_label) - 1;
	uint8_t salt[2 * TETHER_SEAL_NONCE_LEN];
	uint8_t info[sizeof(channel_label) - 1 + 4 + 3];
	const char *tag;
	int err;

	if (!ke || ke_len == 0 || !nonce_c || !nonce_a || !key)
		return TETHER_ERR_INVALID;
	if (dir == TETHER_SEAL_CONSOLE_TO_AGENT)
		tag = "c2a";
	else if (dir == TETHER_SEAL_AGENT_TO_CONSOLE)
		tag = "a2c";
	else
		return TETHER_ERR_INVALID;

	memcpy(salt, nonce_c, TETHER_SEAL_NONCE_LEN);
	memcpy(salt + TETHER_SEAL_NONCE_LEN, nonce_a, TETHER_SEAL_NONCE_LEN);
	memcpy(info, channel_label, label_len);
	info[label_len] = (uint8_t)(channel >> 24);
	info[label_len + 1] = (uint8_t)(channel >> 16);
	info[label_len + 2] = (uint8_t)(channel >> 8);
	info[label_len + 3] = (uint8_t)channel;
	memcpy(info + label_len + 4, tag, 3);

	err = tether_hkdf_sha256(ke, ke_len, salt, sizeof(salt), info,
				 sizeof(info), key, TETHER_SEAL_KEY_LEN);
	if (err)
		OPENSSL_cleanse(key, TETHER_SEAL_KEY_LEN);
	return err;
}

struct tether_seal *tether_seal_new(const uint8_t key[TETHER_SEAL_KEY_LEN])
{
	struct tether_seal *s;

	if (!key)
		return NULL;
	s = tether_calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->ctx = EVP_CIPHER_CTX_new();
	if (!s->ctx)
		goto fail;
	/*
	 * Key once here; each message only sets the IV.  The direction is
	 * picked per message by EVP_EncryptInit_ex/EVP_DecryptInit_ex.
	 */
	if (EVP_EncryptInit_ex(s->ctx, EVP_chacha20_poly1305(), NULL, key,
			       NULL) != 1)
		goto fail;
#ifdef TETHER_TEST_HOOKS
	{
		const char *v = getenv("TETHER_TEST_NULL_SEAL");

		s->null_seal = v != NULL && strcmp(v, "1") == 0;
	}
#endif
	return s;

fail:
	tether_seal_free(s);
	return NULL;
}

void tether_seal_free(struct tether_seal *s)
{
	if (!s)
		return;
	EVP_CIPHER_CTX_free(s->ctx);
	tether_freezero(s, sizeof(*s));
}

static void make_nonce(uint64_t counter, uint8_t nonce[AEAD_NONCE_LEN])
{
	int i;

	memset(nonce, 0, 4);
	for (i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(counter >> (56 - 8 * i));
}

/* Runs len bytes through the cipher (either direction); in may equal out. */
static int cipher_update(EVP_CIPHER_CTX *ctx, const uint8_t *in, size_t len,
			 uint8_t *out)
{
	int outl;

	while (len > 0) {
		int chunk = len > CHUNK_MAX ? CHUNK_MAX : (int)len;

		if (EVP_CipherUpdate(ctx, out, &outl, in, chunk) != 1 ||
		    outl != chunk)
			return TETHER_ERR_CRYPTO;
		in += chunk;
		out += chunk;
		len -= (size_t)chunk;
	}
	return 0;
}

/* Feeds the associated data (no output). */
static int cipher_aad(EVP_CIPHER_CTX *ctx, const uint8_t *aad, size_t len)
{
	int outl;

	while (len > 0) {
		int chunk = len > CHUNK_MAX ? CHUNK_MAX : (int)len;

		if (EVP_CipherUpdate(ctx, NULL, &outl, aad, chunk) != 1)
			return TETHER_ERR_CRYPTO;
		aad += chunk;
		len -= (size_t)chunk;
	}
	return 0;
}

int tether_seal_encrypt(struct tether_seal *s, const uint8_t *aad,
			size_t aad_len, const uint8_t *in, size_t len,
			uint8_t *out)
{
	return tether_seal_encrypt2(s, aad, aad_len, in, len, NULL, 0, out);
}

int tether_seal_encrypt2(struct tether_seal *s, const uint8_t *aad,
			 size_t aad_len, const uint8_t *in, size_t in_len,
			 const uint8_t *in2, size_t in2_len, uint8_t *out)
{
	uint8_t nonce[AEAD_NONCE_LEN];
	size_t len = in_len + in2_len;
	int outl, err;

	if (!s || (!aad && aad_len) || (!in && in_len) || (!in2 && in2_len) ||
	    !out || in2_len > SIZE_MAX - in_len)
		return TETHER_ERR_INVALID;
	if (s->broken)
		return TETHER_ERR_STATE;
	if (len > SIZE_MAX - TETHER_SEAL_TAG_LEN)
		return TETHER_ERR_TOO_LARGE;
	/* The last counter value is never used, so the nonce never repeats. */
	if (s->counter == UINT64_MAX)
		return TETHER_ERR_LIMIT;
	if (s->null_seal) {
		/* memmove's pointers must not be NULL, even for 0 bytes. */
		if (in_len)
			memmove(out, in, in_len);
		if (in2_len)
			memmove(out + in_len, in2, in2_len);
		memset(out + len, 0, TETHER_SEAL_TAG_LEN);
		s->counter++;
		return TETHER_OK;
	}
	make_nonce(s->counter, nonce);
	if (EVP_EncryptInit_ex(s->ctx, NULL, NULL, NULL, nonce) != 1) {
		err = TETHER_ERR_CRYPTO;
		goto out;
	}
	err = cipher_aad(s->ctx, aad, aad_len);
	if (err)
		goto out;
	err = cipher_update(s->ctx, in, in_len, out);
	if (!err)
		err = cipher_update(s->ctx, in2, in2_len, out + in_len);
	if (err)
		goto out;
	if (EVP_EncryptFinal_ex(s->ctx, out + len, &outl) != 1 || outl != 0 ||
	    EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_AEAD_GET_TAG,
				TETHER_SEAL_TAG_LEN, out + len) != 1) {
		err = TETHER_ERR_CRYPTO;
		goto out;
	}
	s->counter++;
out:
	if (err)
		s->broken = true;
	return err;
}

int tether_seal_decrypt(struct tether_seal *s, const uint8_t *aad,
			size_t aad_len, const uint8_t *in, size_t len,
			uint8_t *out)
{
	uint8_t nonce[AEAD_NONCE_LEN], tag[TETHER_SEAL_TAG_LEN];
	size_t ct_len;
	int outl, err;

	if (!s || (!aad && aad_len) || !in || !out)
		return TETHER_ERR_INVALID;
	if (s->broken)
		return TETHER_ERR_STATE;
	if (len < TETHER_SEAL_TAG_LEN)
		return TETHER_ERR_FORMAT;
	if (s->counter == UINT64_MAX)
		return TETHER_ERR_LIMIT;
	ct_len = len - TETHER_SEAL_TAG_LEN;
	/* Copy the tag aside before any in-place write can reach it. */
	memcpy(tag, in + ct_len, TETHER_SEAL_TAG_LEN);
	if (s->null_seal) {
		static const uint8_t zero[TETHER_SEAL_TAG_LEN];

		if (memcmp(tag, zero, sizeof(zero)) != 0)
			return TETHER_ERR_AUTH;
		memmove(out, in, ct_len);
		s->counter++;
		return TETHER_OK;
	}
	make_nonce(s->counter, nonce);
	if (EVP_DecryptInit_ex(s->ctx, NULL, NULL, NULL, nonce) != 1 ||
	    EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_AEAD_SET_TAG,
				TETHER_SEAL_TAG_LEN, tag) != 1) {
		err = TETHER_ERR_CRYPTO;
		goto out;
	}
	err = cipher_aad(s->ctx, aad, aad_len);
	if (err)
		goto out;
	err = cipher_update(s->ctx, in, ct_len, out);
	if (err)
		goto out;
	if (EVP_DecryptFinal_ex(s->ctx, out + ct_len, &outl) != 1) {
		err = TETHER_ERR_AUTH;
		goto out;
	}
	s->counter++;
out:
	/* Never leave unauthenticated plaintext lying around. */
	if (err && ct_len)
		OPENSSL_cleanse(out, ct_len);
	return err;
}

/* ---- The pairing info's key -------------------------------------------- */

int tether_seal_derive_info(const uint8_t *ke, size_t ke_len,
			    uint8_t key[TETHER_SEAL_KEY_LEN])
{
	int err;

	if (!ke || ke_len == 0 || !key)
		return TETHER_ERR_INVALID;
	err = tether_hkdf_sha256(
	    ke, ke_len, NULL, 0, (const uint8_t *)info_label,
	    sizeof(info_label) - 1, key, TETHER_SEAL_KEY_LEN);
	if (err)
		OPENSSL_cleanse(key, TETHER_SEAL_KEY_LEN);
	return err;
}
