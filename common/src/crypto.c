/*
 * Small crypto and encoding helpers over OpenSSL 3: CSPRNG, SHA-256,
 * constant-time comparison, wiping, hex and unpadded base64.
 */
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <tether/crypto.h>
#include <tether/err.h>

int tether_random(void *buf, size_t n)
{
	uint8_t *p = buf;

	if (!buf && n)
		return TETHER_ERR_INVALID;
	/* RAND_bytes takes an int, so feed it in bounded chunks. */
	while (n > 0) {
		size_t chunk = n > (1u << 30) ? (1u << 30) : n;

		if (RAND_bytes(p, (int)chunk) != 1)
			return TETHER_ERR_CRYPTO;
		p += chunk;
		n -= chunk;
	}
	return 0;
}

int tether_random_uniform(uint32_t bound, uint32_t *out)
{
	uint32_t limit, v;
	int err;

	if (bound == 0 || !out)
		return TETHER_ERR_INVALID;
	/*
	 * Reject the top (2^32 mod bound) values so every residue is equally
	 * likely; "-bound % bound" is 2^32 mod bound in uint32_t arithmetic.
	 */
	limit = (uint32_t)(-bound) % bound;
	for (;;) {
		err = tether_random(&v, sizeof(v));
		if (err)
			return err;
		if (v >= limit)
			break;
	}
	*out = v % bound;
	return 0;
}

int tether_sha256(const void *data, size_t n, uint8_t out[TETHER_SHA256_LEN])
{
	unsigned int len = 0;

	if ((!data && n) || !out)
		return TETHER_ERR_INVALID;
	if (EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) != 1 ||
	    len != TETHER_SHA256_LEN)
		return TETHER_ERR_CRYPTO;
	return 0;
}

bool tether_ct_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

void tether_wipe(void *p, size_t n)
{
	if (p && n)
		OPENSSL_cleanse(p, n);
}

int tether_hex_encode(const void *in, size_t n, char *out, size_t outlen)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *src = in;
	size_t i;

	if ((!in && n) || !out)
		return TETHER_ERR_INVALID;
	if (n > (SIZE_MAX - 1) / 2 || outlen < 2 * n + 1)
		return TETHER_ERR_TOO_LARGE;
	for (i = 0; i < n; i++) {
		out[2 * i] = digits[src[i] >> 4];
		out[2 * i + 1] = digits[src[i] & 0x0f];
	}
	out[2 * n] = '\0';
	return 0;
}

int tether_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int tether_hex_decode(const char *hex, void *out, size_t outlen)
{
	uint8_t *dst = out;
	size_t i;

	if (!hex || (!out && outlen))
		return TETHER_ERR_INVALID;
	/* strnlen bounds the scan: we only care whether it is exactly 2n. */
	if (outlen > (SIZE_MAX - 1) / 2 ||
	    strnlen(hex, 2 * outlen + 1) != 2 * outlen)
		return TETHER_ERR_FORMAT;
	for (i = 0; i < outlen; i++) {
		int hi = tether_hex_value(hex[2 * i]);
		int lo = tether_hex_value(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return TETHER_ERR_FORMAT;
		dst[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int tether_base64_encode(const void *in, size_t n, char *out, size_t outlen)
{
	const uint8_t *src = in;
	size_t full = n / 3 * 3, rest = n - full, need;
	unsigned char tail[5];
	int len;

	if ((!in && n) || !out)
		return TETHER_ERR_INVALID;
	/* EVP_EncodeBlock takes an int; fingerprints are nowhere near this. */
	if (n > INT32_MAX / 4 * 3 - 3)
		return TETHER_ERR_TOO_LARGE;
	/* Unpadded: 4 characters per 3 bytes, rest + 1 for a 1-2 byte tail. */
	need = full / 3 * 4 + (rest ? rest + 1 : 0) + 1;
	if (outlen < need)
		return TETHER_ERR_TOO_LARGE;
	/*
	 * Whole groups go straight into out; the padded tail goes through a
	 * scratch buffer so a caller sizing out for the unpadded text is not
	 * overrun by the '=' characters we then strip.
	 */
	len = EVP_EncodeBlock((unsigned char *)out, src, (int)full);
	if (len < 0 || (size_t)len != full / 3 * 4)
		return TETHER_ERR_CRYPTO;
	if (rest) {
		if (EVP_EncodeBlock(tail, src + full, (int)rest) != 4)
			return TETHER_ERR_CRYPTO;
		memcpy(out + len, tail, rest + 1);
		len += (int)rest + 1;
	}
	out[len] = '\0';
	return 0;
}

int tether_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt,
		       size_t salt_len, const uint8_t *info, size_t info_len,
		       uint8_t *out, size_t out_len)
{
	EVP_KDF *kdf;
	EVP_KDF_CTX *kctx;
	OSSL_PARAM params[5];
	int err = TETHER_ERR_CRYPTO;
	size_t n = 0;

	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (!kdf)
		return TETHER_ERR_CRYPTO;
	kctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (!kctx)
		return TETHER_ERR_CRYPTO;
	params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						       (char *)"SHA256", 0);
	params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
							(void *)ikm, ikm_len);
	/* No salt parameter means RFC 5869's default of HashLen zeros. */
	if (salt_len > 0)
		params[n++] = OSSL_PARAM_construct_octet_string(
		    OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
	params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
							(void *)info, info_len);
	params[n] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, out, out_len, params) == 1)
		err = 0;
	EVP_KDF_CTX_free(kctx);
	return err;
}
