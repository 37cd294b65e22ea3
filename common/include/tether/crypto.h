/*
 * Small crypto and encoding helpers over OpenSSL 3: randomness, SHA-256,
 * constant-time comparison, hex and base64.
 */
#ifndef TETHER_CRYPTO_H
#define TETHER_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TETHER_SHA256_LEN 32

/* Fills buf with n bytes from the CSPRNG. */
int tether_random(void *buf, size_t n);
/* Uniform value in [0, bound) (bound > 0). */
int tether_random_uniform(uint32_t bound, uint32_t *out);
int tether_sha256(const void *data, size_t n, uint8_t out[TETHER_SHA256_LEN]);
/* Constant-time equality of two n-byte strings. */
bool tether_ct_equal(const void *a, const void *b, size_t n);
/* Wipes n bytes (not optimised away). */
void tether_wipe(void *p, size_t n);

/*
 * HKDF-SHA256 (RFC 5869) of ikm with salt (salt_len 0: no salt) and info
 * into out_len bytes of out.
 */
int tether_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt,
		       size_t salt_len, const uint8_t *info, size_t info_len,
		       uint8_t *out, size_t out_len);

/* Lower-case hex of n bytes into out (2n+1 bytes incl. NUL). */
int tether_hex_encode(const void *in, size_t n, char *out, size_t outlen);
/*
 * Decodes exactly outlen bytes from a hex string of 2*outlen characters;
 * TETHER_ERR_FORMAT for anything else.
 */
int tether_hex_decode(const char *hex, void *out, size_t outlen);
/* Value of one hex digit (either case), or -1. */
int tether_hex_value(char c);
/* Unpadded standard base64 (as OpenSSH fingerprints use). */
int tether_base64_encode(const void *in, size_t n, char *out, size_t outlen);

#endif /* TETHER_CRYPTO_H */
