/*
 * Ed25519 identities of enrolled agents and of technicians: the agent (the
 * console) keeps its private key in a PKCS#8 PEM file only it can read and
 * proves itself to the relay by signing a fresh challenge; the relay keeps
 * the 32-byte public key.
 */
#ifndef TETHER_SIGN_H
#define TETHER_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define TETHER_SIGN_PUB_LEN 32
#define TETHER_SIGN_SIG_LEN 64

struct tether_sign_key;

/*
 * Makes a new key and writes it to path (mode 0600, through a temporary
 * file renamed over path, so a reader never sees half a key); pub gets
 * its public half.
 */
int tether_sign_key_generate(const char *path,
			     uint8_t pub[TETHER_SIGN_PUB_LEN]);
/*
 * Reads the key at path into *out (free with tether_sign_key_free()) and
 * its public half into pub (may be NULL).  TETHER_ERR_PERM if group or
 * others may read the file, TETHER_ERR_NOT_FOUND if it is missing,
 * TETHER_ERR_FORMAT if it is not an Ed25519 key.
 */
int tether_sign_key_load(const char *path, struct tether_sign_key **out,
			 uint8_t pub[TETHER_SIGN_PUB_LEN]);
void tether_sign_key_free(struct tether_sign_key *k);
/* k's public half. */
int tether_sign_key_public(const struct tether_sign_key *k,
			   uint8_t pub[TETHER_SIGN_PUB_LEN]);
/*
 * A public key's fingerprint as OpenSSH words one: "SHA256:" and the
 * unpadded base64 of the key's SHA-256, into out (at least
 * TETHER_ID_FINGERPRINT_LEN bytes).
 */
int tether_sign_key_fingerprint(const uint8_t pub[TETHER_SIGN_PUB_LEN],
				char *out, size_t outlen);
int tether_sign(const struct tether_sign_key *k, const void *msg, size_t n,
		uint8_t sig[TETHER_SIGN_SIG_LEN]);
/* 0 if sig is pub's signature of msg, TETHER_ERR_AUTH if not. */
int tether_sign_verify(const uint8_t pub[TETHER_SIGN_PUB_LEN], const void *msg,
		       size_t n, const uint8_t sig[TETHER_SIGN_SIG_LEN]);
/*
 * What an enrolled agent signs to authenticate (docs/protocol.md):
 * TETHER_AGENT_AUTH_CONTEXT with its NUL, the relay's challenge, the
 * agent's name.  TETHER_ERR_TOO_LARGE if out is too small.
 */
int tether_sign_auth_message(const uint8_t *challenge, const char *name,
			     uint8_t *out, size_t outlen, size_t *len);
/*
 * What a console signs to authenticate its technician (docs/protocol.md):
 * TETHER_CONSOLE_AUTH_CONTEXT with its NUL, the relay's challenge, the
 * console's public key.  TETHER_ERR_TOO_LARGE if out is too small.
 */
int tether_sign_console_auth_message(const uint8_t *challenge,
				     const uint8_t pub[TETHER_SIGN_PUB_LEN],
				     uint8_t *out, size_t outlen, size_t *len);

#endif /* TETHER_SIGN_H */
