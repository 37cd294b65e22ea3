/*
 * Sealed end-to-end channel payloads (docs/protocol.md, "Key schedule").
 * One struct tether_seal per channel and direction: ChaCha20-Poly1305 with a
 * 96-bit nonce of four zero bytes and a 64-bit big-endian counter that is
 * never sent; the frame header is the associated data.  A replayed,
 * reordered, dropped, truncated or forged frame fails to open, and a failed
 * open does not advance the counter.
 */
#ifndef TETHER_SEAL_H
#define TETHER_SEAL_H

#include <stddef.h>
#include <stdint.h>

struct tether_seal;

#define TETHER_SEAL_KEY_LEN 32
#define TETHER_SEAL_TAG_LEN 16
#define TETHER_SEAL_NONCE_LEN 32 /* per-open random nonces, not AEAD nonces */

enum tether_seal_dir {
	TETHER_SEAL_CONSOLE_TO_AGENT,
	TETHER_SEAL_AGENT_TO_CONSOLE,
};

/*
 * key = HKDF-SHA256(ikm = session key Ke, salt = nonce_c || nonce_a,
 *       info = "tether/1 channel" || u32 channel || "c2a" or "a2c"), 32 bytes.
 */
int tether_seal_derive(const uint8_t *ke, size_t ke_len,
		       const uint8_t nonce_c[TETHER_SEAL_NONCE_LEN],
		       const uint8_t nonce_a[TETHER_SEAL_NONCE_LEN],
		       uint32_t channel, enum tether_seal_dir dir,
		       uint8_t key[TETHER_SEAL_KEY_LEN]);

/*
 * Copies the key; counter starts at 0.  NULL on failure.  Test hook: in a
 * build with test hooks, TETHER_TEST_NULL_SEAL=1 in the environment makes
 * the seal a null one (plaintext and a zero tag), so that the end-to-end
 * tests can show their plaintext detector sees DATA frame contents; both
 * ends must have it.  Builds without test hooks never look.
 */
struct tether_seal *tether_seal_new(const uint8_t key[TETHER_SEAL_KEY_LEN]);
/* Wipes the key and frees.  NULL is fine. */
void tether_seal_free(struct tether_seal *s);
/*
 * Encrypts len bytes of in into out (len + TETHER_SEAL_TAG_LEN bytes) with
 * the next counter.  in and out may be the same buffer.
 */
int tether_seal_encrypt(struct tether_seal *s, const uint8_t *aad,
			size_t aad_len, const uint8_t *in, size_t len,
			uint8_t *out);
/*
 * The same for in || in2, given apart (a message byte and its body) so
 * that the caller need not join them; out must not overlap in2.
 */
int tether_seal_encrypt2(struct tether_seal *s, const uint8_t *aad,
			 size_t aad_len, const uint8_t *in, size_t in_len,
			 const uint8_t *in2, size_t in2_len, uint8_t *out);
/*
 * Decrypts len bytes (ciphertext + tag) into out (len - TAG_LEN bytes).
 * TETHER_ERR_AUTH if it does not authenticate under the expected counter.
 */
int tether_seal_decrypt(struct tether_seal *s, const uint8_t *aad,
			size_t aad_len, const uint8_t *in, size_t len,
			uint8_t *out);

/*
 * The key of the pairing info (docs/protocol.md, "Pairing"; sealed and
 * opened by tether_msg_seal_info() and _open_info(), tether/msg.h):
 * HKDF-SHA256(ikm = Ke, no salt, info = "tether/1 pairing info"), 32 bytes.
 */
int tether_seal_derive_info(const uint8_t *ke, size_t ke_len,
			    uint8_t key[TETHER_SEAL_KEY_LEN]);

#endif /* TETHER_SEAL_H */
