/*
 * Crypto helper tests: SHA-256 and base64 against published vectors, hex
 * round trips and rejects, constant-time equality, the random helpers.
 */
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include <tether/crypto.h>
#include <tether/err.h>

Test(crypto, sha256_abc)
{
	/* FIPS 180-2, appendix B.1. */
	static const char want[] = "ba7816bf8f01cfea414140de5dae2223"
				   "b00361a396177a9cb410ff61f20015ad";
	uint8_t md[TETHER_SHA256_LEN];
	char hex[2 * TETHER_SHA256_LEN + 1];

	cr_assert_eq(tether_sha256("abc", 3, md), 0);
	cr_assert_eq(tether_hex_encode(md, sizeof(md), hex, sizeof(hex)), 0);
	cr_assert_str_eq(hex, want);
}

Test(crypto, sha256_empty)
{
	static const char want[] = "e3b0c44298fc1c149afbf4c8996fb924"
				   "27ae41e4649b934ca495991b7852b855";
	uint8_t md[TETHER_SHA256_LEN];
	char hex[2 * TETHER_SHA256_LEN + 1];

	cr_assert_eq(tether_sha256(NULL, 0, md), 0);
	cr_assert_eq(tether_hex_encode(md, sizeof(md), hex, sizeof(hex)), 0);
	cr_assert_str_eq(hex, want);
}

Test(crypto, hex_round_trip)
{
	uint8_t in[256], back[256];
	char hex[2 * sizeof(in) + 1];
	size_t i;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)i;
	cr_assert_eq(tether_hex_encode(in, sizeof(in), hex, sizeof(hex)), 0);
	cr_assert_eq(strlen(hex), 2 * sizeof(in));
	cr_assert_eq(strncmp(hex, "000102", 6), 0);
	cr_assert_str_eq(hex + 2 * 250, "fafbfcfdfeff");
	cr_assert_eq(tether_hex_decode(hex, back, sizeof(back)), 0);
	cr_assert(memcmp(in, back, sizeof(in)) == 0);
}

Test(crypto, hex_decode_accepts_upper_case)
{
	uint8_t out[3];

	cr_assert_eq(tether_hex_decode("ABcdEF", out, sizeof(out)), 0);
	cr_assert(out[0] == 0xab && out[1] == 0xcd && out[2] == 0xef);
}

Test(crypto, hex_decode_rejects)
{
	uint8_t out[2];

	cr_assert_eq(tether_hex_decode("abc", out, 2), TETHER_ERR_FORMAT);
	cr_assert_eq(tether_hex_decode("abcdef", out, 2), TETHER_ERR_FORMAT);
	cr_assert_eq(tether_hex_decode("", out, 2), TETHER_ERR_FORMAT);
	cr_assert_eq(tether_hex_decode("abgd", out, 2), TETHER_ERR_FORMAT);
	cr_assert_eq(tether_hex_decode("ab d", out, 2), TETHER_ERR_FORMAT);
	cr_assert_eq(tether_hex_decode("0x12", out, 2), TETHER_ERR_FORMAT);
	cr_assert_eq(tether_hex_decode("", out, 0), 0);
}

Test(crypto, hex_encode_checks_size)
{
	char hex[5];

	cr_assert_eq(tether_hex_encode("ab", 2, hex, 4), TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_hex_encode("ab", 2, hex, 5), 0);
	cr_assert_str_eq(hex, "6162");
	cr_assert_eq(tether_hex_encode("", 0, hex, 1), 0);
	cr_assert_str_eq(hex, "");
}

/* RFC 4648 section 10 vectors, with the '=' padding removed. */
Test(crypto, base64_known_values)
{
	static const struct {
		const char *in;
		const char *out;
	} v[] = {
	    {"", ""},
	    {"f", "Zg"},
	    {"fo", "Zm8"},
	    {"foo", "Zm9v"},
	    {"foob", "Zm9vYg"},
	    {"fooba", "Zm9vYmE"},
	    {"foobar", "Zm9vYmFy"},
	};
	char out[16];
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		cr_assert_eq(tether_base64_encode(v[i].in, strlen(v[i].in), out,
						  sizeof(out)),
			     0);
		cr_assert_str_eq(out, v[i].out);
	}
}

Test(crypto, base64_fingerprint_alphabet)
{
	/* 0xfb 0xff 0xbf exercises '+' and '/' (standard alphabet). */
	static const uint8_t in[] = {0xfb, 0xff, 0xbf, 0xfe};
	char out[16];

	cr_assert_eq(tether_base64_encode(in, sizeof(in), out, sizeof(out)), 0);
	cr_assert_str_eq(out, "+/+//g");
}

Test(crypto, base64_checks_size)
{
	char out[16];

	/* Unpadded "Zm9vYg" needs 7 bytes, not the 9 padded would. */
	cr_assert_eq(tether_base64_encode("foob", 4, out, 6),
		     TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_base64_encode("foob", 4, out, 7), 0);
	cr_assert_str_eq(out, "Zm9vYg");
	cr_assert_eq(tether_base64_encode("foobar", 6, out, 8),
		     TETHER_ERR_TOO_LARGE);
	cr_assert_eq(tether_base64_encode("foobar", 6, out, 9), 0);
	/* A SHA-256 fingerprint is 43 characters. */
	{
		uint8_t md[TETHER_SHA256_LEN];
		char fp[44];

		cr_assert_eq(tether_sha256("x", 1, md), 0);
		cr_assert_eq(
		    tether_base64_encode(md, sizeof(md), fp, sizeof(fp)), 0);
		cr_assert_eq(strlen(fp), 43);
	}
}

Test(crypto, ct_equal)
{
	uint8_t a[32], b[32];

	memset(a, 0x42, sizeof(a));
	memcpy(b, a, sizeof(b));
	cr_assert(tether_ct_equal(a, b, sizeof(a)));
	b[31] ^= 1;
	cr_assert_not(tether_ct_equal(a, b, sizeof(a)));
	b[31] ^= 1;
	b[0] ^= 0x80;
	cr_assert_not(tether_ct_equal(a, b, sizeof(a)));
	cr_assert(tether_ct_equal(a, b, 0));
}

Test(crypto, wipe)
{
	uint8_t buf[16];
	size_t i;

	memset(buf, 0xa5, sizeof(buf));
	tether_wipe(buf, sizeof(buf));
	for (i = 0; i < sizeof(buf); i++)
		cr_assert_eq(buf[i], 0);
	tether_wipe(NULL, 0);
}

Test(crypto, random_fills)
{
	uint8_t a[32], b[32];

	cr_assert_eq(tether_random(a, sizeof(a)), 0);
	cr_assert_eq(tether_random(b, sizeof(b)), 0);
	cr_assert(memcmp(a, b, sizeof(a)) != 0);
	cr_assert_eq(tether_random(NULL, 0), 0);
}

Test(crypto, random_uniform_range)
{
	unsigned seen[6] = {0};
	uint32_t v;
	int i;

	cr_assert_eq(tether_random_uniform(0, &v), TETHER_ERR_INVALID);
	cr_assert_eq(tether_random_uniform(1, &v), 0);
	cr_assert_eq(v, 0);
	for (i = 0; i < 6000; i++) {
		cr_assert_eq(tether_random_uniform(6, &v), 0);
		cr_assert_lt(v, 6);
		seen[v]++;
	}
	/* Each face expects 1000; 700 is far outside chance. */
	for (i = 0; i < 6; i++)
		cr_assert_gt(seen[i], 700, "face %d seen %u times", i, seen[i]);
	cr_assert_eq(tether_random_uniform(UINT32_MAX, &v), 0);
	cr_assert_lt(v, UINT32_MAX);
}
