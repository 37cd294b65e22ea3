/*
 * Packing of diagnostics bundles (tether/bundle.h): JSON text, zlib, then
 * padded base64 so the result sits in a JSON string of a control message.
 * Unpacking is for input from the network or the database: every size is
 * checked before the memory for it is taken, and inflation stops at
 * TETHER_BUNDLE_JSON_MAX.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <zlib.h>

#include <tether/alloc.h>
#include <tether/bundle.h>
#include <tether/err.h>
#include <tether/proto.h>

int tether_bundle_pack(const json_t *bundle, char **out)
{
	char *text, *b64;
	unsigned char *z;
	uLongf zlen;
	size_t tlen;
	int n;

	if (!bundle || !out)
		return TETHER_ERR_INVALID;
	*out = NULL;
	text = json_dumps(bundle, JSON_COMPACT);
	if (!text)
		return TETHER_ERR_NOMEM;
	tlen = strlen(text);
	if (tlen > TETHER_BUNDLE_JSON_MAX) {
		free(text);
		return TETHER_ERR_TOO_LARGE;
	}
	zlen = compressBound(tlen);
	z = tether_malloc(zlen);
	if (!z) {
		free(text);
		return TETHER_ERR_NOMEM;
	}
	if (compress2(z, &zlen, (const Bytef *)text, tlen, 6) != Z_OK) {
		tether_free(z);
		free(text);
		return TETHER_ERR_INTERNAL;
	}
	free(text);
	if ((zlen + 2) / 3 * 4 > TETHER_BUNDLE_MAX) {
		tether_free(z);
		return TETHER_ERR_TOO_LARGE;
	}
	b64 = tether_malloc((zlen + 2) / 3 * 4 + 1);
	if (!b64) {
		tether_free(z);
		return TETHER_ERR_NOMEM;
	}
	n = EVP_EncodeBlock((unsigned char *)b64, z, (int)zlen);
	tether_free(z);
	if (n < 0) {
		tether_free(b64);
		return TETHER_ERR_CRYPTO;
	}
	b64[n] = '\0';
	*out = b64;
	return 0;
}

/* Where inflated text goes, a piece at a time. */
struct sink {
	int (*put)(struct sink *k, const char *p, size_t n);
	size_t total;
	/* unpack: the whole text */
	char *buf;
	size_t cap;
	/* check: the first and the last non-blank byte seen */
	char first;
	char last;
};

#define INFLATE_CHUNK (64u * 1024)

/*
 * Inflates z piece by piece into k, at most TETHER_BUNDLE_JSON_MAX bytes
 * of it, none of them NUL (JSON text has none), nothing after the stream.
 */
static int inflate_into(const unsigned char *z, size_t zlen, struct sink *k)
{
	unsigned char *chunk = tether_malloc(INFLATE_CHUNK);
	z_stream zs;
	size_t n;
	int rc, err = 0;

	if (!chunk)
		return TETHER_ERR_NOMEM;
	memset(&zs, 0, sizeof(zs));
	if (inflateInit(&zs) != Z_OK) {
		tether_free(chunk);
		return TETHER_ERR_NOMEM;
	}
	zs.next_in = (Bytef *)z;
	zs.avail_in = (uInt)zlen;
	do {
		zs.next_out = chunk;
		zs.avail_out = INFLATE_CHUNK;
		rc = inflate(&zs, Z_NO_FLUSH);
		if (rc != Z_OK && rc != Z_STREAM_END &&
		    !(rc == Z_BUF_ERROR && zs.avail_out == 0)) {
			err = TETHER_ERR_FORMAT;
			break;
		}
		n = INFLATE_CHUNK - zs.avail_out;
		if (n > TETHER_BUNDLE_JSON_MAX - k->total)
			err = TETHER_ERR_TOO_LARGE;
		else if (memchr(chunk, '\0', n) != NULL)
			err = TETHER_ERR_FORMAT;
		else if (n > 0)
			err = k->put(k, (const char *)chunk, n);
		k->total += n;
		/* No progress and no end: the input stops mid-stream. */
		if (!err && rc != Z_STREAM_END && n == 0 && zs.avail_in == 0)
			err = TETHER_ERR_FORMAT;
	} while (!err && rc != Z_STREAM_END);
	/* Bytes after the zlib stream are not part of any bundle we made. */
	if (!err && zs.avail_in != 0)
		err = TETHER_ERR_TRAILING_DATA;
	inflateEnd(&zs);
	tether_free(chunk);
	return err;
}

static int put_append(struct sink *k, const char *p, size_t n)
{
	char *nbuf;

	if (k->total + n + 1 > k->cap) {
		k->cap = (k->total + n + 1) * 2;
		if (k->cap > TETHER_BUNDLE_JSON_MAX + 1)
			k->cap = TETHER_BUNDLE_JSON_MAX + 1;
		nbuf = tether_reallocarray(k->buf, k->cap, 1);
		if (!nbuf)
			return TETHER_ERR_NOMEM;
		k->buf = nbuf;
	}
	memcpy(k->buf + k->total, p, n);
	k->buf[k->total + n] = '\0';
	return 0;
}

static int put_scan(struct sink *k, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n')
			continue;
		if (k->first == '\0')
			k->first = p[i];
		k->last = p[i];
	}
	return 0;
}

/* Padded base64 into *z (tether_free it): TETHER_ERR_* on bad input. */
static int decode(const char *packed, unsigned char **z, size_t *zlen)
{
	size_t len;
	int n;

	*z = NULL;
	len = strnlen(packed, TETHER_BUNDLE_MAX + 1);
	if (len > TETHER_BUNDLE_MAX)
		return TETHER_ERR_TOO_LARGE;
	if (len == 0 || len % 4 != 0)
		return TETHER_ERR_FORMAT;
	*z = tether_malloc(len / 4 * 3);
	if (!*z)
		return TETHER_ERR_NOMEM;
	n = EVP_DecodeBlock(*z, (const unsigned char *)packed, (int)len);
	if (n < 0) {
		tether_free(*z);
		*z = NULL;
		return TETHER_ERR_FORMAT;
	}
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	*zlen = (size_t)n - (packed[len - 1] == '=') - (packed[len - 2] == '=');
	return 0;
}

int tether_bundle_unpack(const char *packed, json_t **out)
{
	struct sink k = {.put = put_append};
	unsigned char *z;
	size_t zlen = 0;
	json_t *j;
	int err;

	if (!packed || !out)
		return TETHER_ERR_INVALID;
	*out = NULL;
	err = decode(packed, &z, &zlen);
	if (err)
		return err;
	err = inflate_into(z, zlen, &k);
	tether_free(z);
	if (!err && !k.buf)
		err = TETHER_ERR_FORMAT;
	if (err) {
		tether_free(k.buf);
		return err;
	}
	j = json_loads(k.buf, JSON_REJECT_DUPLICATES, NULL);
	tether_free(k.buf);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		return TETHER_ERR_FORMAT;
	}
	*out = j;
	return 0;
}

int tether_bundle_check(const char *packed, size_t *json_len)
{
	struct sink k = {.put = put_scan};
	unsigned char *z;
	size_t zlen = 0;
	int err;

	if (!packed)
		return TETHER_ERR_INVALID;
	err = decode(packed, &z, &zlen);
	if (err)
		return err;
	err = inflate_into(z, zlen, &k);
	tether_free(z);
	if (!err && (k.first != '{' || k.last != '}'))
		err = TETHER_ERR_FORMAT;
	if (!err && json_len)
		*json_len = k.total;
	return err;
}
