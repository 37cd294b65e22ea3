/*
 * SPAKE2 per RFC 9382, ciphersuite SPAKE2-P256-SHA256-HKDF-HMAC, on
 * OpenSSL's EC API.  Party A is the console, party B the agent
 * (docs/protocol.md, "Pairing").  Messages are 65-byte uncompressed points;
 * confirmation MACs are 32 bytes; Ke (the shared secret) is 16 bytes.
 */
#ifndef TETHER_SPAKE2_H
#define TETHER_SPAKE2_H

#include <stddef.h>
#include <stdint.h>

struct tether_spake2;

enum tether_spake2_role {
	TETHER_SPAKE2_A,
	TETHER_SPAKE2_B,
};

#define TETHER_SPAKE2_ELEM_LEN 65
#define TETHER_SPAKE2_SCALAR_LEN 32
#define TETHER_SPAKE2_W_LEN 32
#define TETHER_SPAKE2_CONF_LEN 32
#define TETHER_SPAKE2_KE_LEN 16

/*
 * Derives w from the password (the whole normalised code): scrypt to 40
 * bytes with the salt, reduced mod the P-256 order, 32 bytes big-endian.
 */
int tether_spake2_password_to_w(const char *password, const char *salt,
				uint8_t w[TETHER_SPAKE2_W_LEN]);

/*
 * New state for one run.  The identities are copied.  The secret scalar is
 * drawn fresh (uniform in [1, n)) unless tether_spake2_set_scalar() is called
 * before tether_spake2_start().  NULL on failure.  Free with _free().
 */
struct tether_spake2 *tether_spake2_new(enum tether_spake2_role role,
					const void *id_a, size_t id_a_len,
					const void *id_b, size_t id_b_len,
					const uint8_t w[TETHER_SPAKE2_W_LEN]);
/* Wipes secrets and frees.  NULL is fine. */
void tether_spake2_free(struct tether_spake2 *s);
/* Fixes the secret scalar (test vectors; or restoring a stored state). */
int tether_spake2_set_scalar(struct tether_spake2 *s,
			     const uint8_t x[TETHER_SPAKE2_SCALAR_LEN]);
/* The secret scalar, for storing a half-done run (0600 state file). */
int tether_spake2_get_scalar(const struct tether_spake2 *s,
			     uint8_t x[TETHER_SPAKE2_SCALAR_LEN]);
/* Computes our message (pA for A, pB for B). */
int tether_spake2_start(struct tether_spake2 *s,
			uint8_t msg[TETHER_SPAKE2_ELEM_LEN]);
/*
 * Takes the peer's message, checks it is a valid point on the curve (not
 * infinity), computes K, TT, Ke, KcA/KcB with aad, and writes our
 * confirmation MAC.  TETHER_ERR_CRYPTO for a bad peer element.
 */
int tether_spake2_finish(struct tether_spake2 *s,
			 const uint8_t peer_msg[TETHER_SPAKE2_ELEM_LEN],
			 const void *aad, size_t aad_len,
			 uint8_t my_conf[TETHER_SPAKE2_CONF_LEN]);
/* Checks the peer's MAC in constant time: 0 or TETHER_ERR_AUTH. */
int tether_spake2_verify(struct tether_spake2 *s,
			 const uint8_t peer_conf[TETHER_SPAKE2_CONF_LEN]);
/* Ke; TETHER_ERR_STATE unless the peer's confirmation was verified. */
int tether_spake2_get_ke(const struct tether_spake2 *s,
			 uint8_t ke[TETHER_SPAKE2_KE_LEN]);
/* Test access: the transcript TT after finish (points into s). */
int tether_spake2_get_transcript(const struct tether_spake2 *s,
				 const uint8_t **tt, size_t *len);

#endif /* TETHER_SPAKE2_H */
