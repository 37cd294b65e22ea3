/*
 * Bundle packing tests: round trips, the packed size limit, and hostile
 * input (bad base64, bad zlib, trailing bytes, a zip bomb, non-objects).
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <zlib.h>

#include <tether/alloc.h>
#include <tether/bundle.h>
#include <tether/err.h>
#include <tether/proto.h>

/* Packs raw bytes the way tether_bundle_pack does, for hostile input. */
static char *pack_raw(const void *data, size_t len)
{
	uLongf zlen = compressBound(len);
	unsigned char *z = malloc(zlen);
	char *b64;

	cr_assert_eq(compress2(z, &zlen, data, len, 9), Z_OK);
	b64 = malloc(zlen / 3 * 4 + 8);
	EVP_EncodeBlock((unsigned char *)b64, z, (int)zlen);
	free(z);
	return b64;
}

Test(bundle, round_trip)
{
	json_t *b = json_pack("{s:i, s:[{s:s, s:s}], s:{s:s}}", "version", 1,
			      "problems", "severity", "critical", "what",
			      "/var is 97% full", "sections", "os", "Debian");
	json_t *back = NULL;
	char *packed = NULL;

	cr_assert_eq(tether_bundle_pack(b, &packed), 0);
	cr_assert_eq(strlen(packed) % 4, 0);
	cr_assert_eq(tether_bundle_unpack(packed, &back), 0);
	cr_assert(json_equal(b, back));
	free(packed);
	json_decref(b);
	json_decref(back);
}

Test(bundle, compressible_logs_shrink_and_limit_holds)
{
	json_t *b = json_object(), *lines = json_array();
	char *packed = NULL, line[200];
	char *text;
	int i;

	for (i = 0; i < 5000; i++) {
		snprintf(line, sizeof(line),
			 "2026-11-23T10:%02d:%02d host kernel: EXT4-fs error "
			 "(device sda1): ext4_find_entry:1455: inode #%d",
			 i / 60 % 60, i % 60, 1000 + i);
		json_array_append_new(lines, json_string(line));
	}
	json_object_set_new(b, "logs", lines);
	text = json_dumps(b, JSON_COMPACT);
	cr_assert_eq(tether_bundle_pack(b, &packed), 0);
	cr_assert_lt(strlen(packed) * 4, strlen(text));
	free(text);
	free(packed);
	json_decref(b);

	/* Random text does not compress: over the limit it is refused. */
	b = json_object();
	{
		size_t n = 2 * TETHER_BUNDLE_MAX;
		char *r = malloc(n + 1);
		for (size_t k = 0; k < n; k++)
			r[k] =
			    "abcdefghijklmnopqrstuvwxyz0123456789"[rand() % 36];
		r[n] = '\0';
		json_object_set_new(b, "junk", json_string(r));
		free(r);
	}
	packed = NULL;
	cr_assert_eq(tether_bundle_pack(b, &packed), TETHER_ERR_TOO_LARGE);
	cr_assert_null(packed);
	json_decref(b);
}

Test(bundle, hostile_input_refused)
{
	json_t *j = NULL;
	char *p, *bomb, *q;
	size_t n = TETHER_BUNDLE_JSON_MAX + 4096, len;

	cr_assert_eq(tether_bundle_unpack("", &j), TETHER_ERR_FORMAT);
	cr_assert_eq(tether_bundle_unpack("abc", &j), TETHER_ERR_FORMAT);
	cr_assert_eq(tether_bundle_unpack("!!!!", &j), TETHER_ERR_FORMAT);
	cr_assert_eq(tether_bundle_unpack("AAAAAAAA", &j), TETHER_ERR_FORMAT);

	p = pack_raw("[1,2,3]", 7);
	cr_assert_eq(tether_bundle_unpack(p, &j), TETHER_ERR_FORMAT);
	free(p);
	p = pack_raw("{\"a\":", 5);
	cr_assert_eq(tether_bundle_unpack(p, &j), TETHER_ERR_FORMAT);
	free(p);
	p = pack_raw("{\"a\":1}\0{}", 10);
	cr_assert_eq(tether_bundle_unpack(p, &j), TETHER_ERR_FORMAT);
	free(p);

	/* 16 MiB of spaces inflate from a few KiB: stopped at the limit. */
	bomb = malloc(n);
	memset(bomb, ' ', n);
	bomb[0] = '{';
	bomb[n - 1] = '}';
	p = pack_raw(bomb, n);
	free(bomb);
	cr_assert_lt(strlen(p), TETHER_BUNDLE_MAX);
	cr_assert_eq(tether_bundle_unpack(p, &j), TETHER_ERR_TOO_LARGE);
	free(p);

	/* Bytes after the zlib stream. */
	p = pack_raw("{}", 2);
	len = strlen(p);
	q = malloc(len + 5);
	memcpy(q, p, len);
	free(p);
	{
		unsigned char raw[64];
		int m = EVP_DecodeBlock(raw, (unsigned char *)q, (int)len);
		size_t rl =
		    (size_t)m - (q[len - 1] == '=') - (q[len - 2] == '=');
		raw[rl++] = 'X';
		m = EVP_EncodeBlock((unsigned char *)q, raw, (int)rl);
		q[m] = '\0';
	}
	cr_assert_eq(tether_bundle_unpack(q, &j), TETHER_ERR_TRAILING_DATA);
	free(q);
	cr_assert_null(j);
}

Test(bundle, check_without_building)
{
	json_t *b = json_pack("{s:i, s:[i, i]}", "version", 1, "x", 1, 2);
	char *packed = NULL, *p, *bomb;
	size_t len = 0, n = TETHER_BUNDLE_JSON_MAX + 4096;

	cr_assert_eq(tether_bundle_pack(b, &packed), 0);
	cr_assert_eq(tether_bundle_check(packed, &len), 0);
	cr_assert_eq(len, strlen("{\"version\":1,\"x\":[1,2]}"));
	tether_free(packed);
	json_decref(b);

	p = pack_raw("  {\"a\":1} \n", 11);
	cr_assert_eq(tether_bundle_check(p, NULL), 0);
	free(p);
	p = pack_raw("[1,2]", 5);
	cr_assert_eq(tether_bundle_check(p, NULL), TETHER_ERR_FORMAT);
	free(p);
	p = pack_raw("{\"a\":1}\0{}", 10);
	cr_assert_eq(tether_bundle_check(p, NULL), TETHER_ERR_FORMAT);
	free(p);
	cr_assert_eq(tether_bundle_check("!!!!", NULL), TETHER_ERR_FORMAT);
	cr_assert_eq(tether_bundle_check("", NULL), TETHER_ERR_FORMAT);

	bomb = malloc(n);
	memset(bomb, ' ', n);
	bomb[0] = '{';
	bomb[n - 1] = '}';
	p = pack_raw(bomb, n);
	free(bomb);
	cr_assert_eq(tether_bundle_check(p, NULL), TETHER_ERR_TOO_LARGE);
	free(p);
}
