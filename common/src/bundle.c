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

/* Inflates z into a NUL-terminated string of at most the JSON limit. */
static int inflate_json(const unsigned char *z, size_t zlen, char **out)
{
	z_stream zs;
	size_t cap = 64 * 1024, used = 0;
	char *buf = tether_malloc(cap + 1), *nbuf;
	int rc;

	if (!buf)
		return TETHER_ERR_NOMEM;
	memset(&zs, 0, sizeof(zs));
	if (inflateInit(&zs) != Z_OK) {
		tether_free(buf);
		return TETHER_ERR_NOMEM;
	}
	zs.next_in = (Bytef *)z;
	zs.avail_in = (uInt)zlen;
	for (;;) {
		if (used == cap) {
			if (cap >= TETHER_BUNDLE_JSON_MAX) {
				rc = TETHER_ERR_TOO_LARGE;
				goto fail;
			}
			cap *= 2;
			if (cap > TETHER_BUNDLE_JSON_MAX)
				cap = TETHER_BUNDLE_JSON_MAX;
			nbuf = tether_reallocarray(buf, cap + 1, 1);
			if (!nbuf) {
				rc = TETHER_ERR_NOMEM;
				goto fail;
			}
			buf = nbuf;
		}
		zs.next_out = (Bytef *)buf + used;
		zs.avail_out = (uInt)(cap - used);
		rc = inflate(&zs, Z_NO_FLUSH);
		used = cap - zs.avail_out;
		if (rc == Z_STREAM_END)
			break;
		if (rc != Z_OK && !(rc == Z_BUF_ERROR && zs.avail_out == 0)) {
			rc = TETHER_ERR_FORMAT;
			goto fail;
		}
	}
	/* Bytes after the zlib stream are not part of any bundle we made. */
	if (zs.avail_in != 0) {
		rc = TETHER_ERR_TRAILING_DATA;
		goto fail;
	}
	inflateEnd(&zs);
	buf[used] = '\0';
	if (strlen(buf) != used) { /* a NUL inside is not JSON text */
		tether_free(buf);
		return TETHER_ERR_FORMAT;
	}
	*out = buf;
	return 0;
fail:
	inflateEnd(&zs);
	tether_free(buf);
	return rc;
}

int tether_bundle_unpack(const char *packed, json_t **out)
{
	size_t len, zlen;
	unsigned char *z;
	char *text;
	json_t *j;
	int n, err;

	if (!packed || !out)
		return TETHER_ERR_INVALID;
	*out = NULL;
	len = strnlen(packed, TETHER_BUNDLE_MAX + 1);
	if (len > TETHER_BUNDLE_MAX)
		return TETHER_ERR_TOO_LARGE;
	if (len == 0 || len % 4 != 0)
		return TETHER_ERR_FORMAT;
	z = tether_malloc(len / 4 * 3);
	if (!z)
		return TETHER_ERR_NOMEM;
	n = EVP_DecodeBlock(z, (const unsigned char *)packed, (int)len);
	if (n < 0) {
		tether_free(z);
		return TETHER_ERR_FORMAT;
	}
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	zlen = (size_t)n;
	if (packed[len - 1] == '=')
		zlen--;
	if (packed[len - 2] == '=')
		zlen--;
	err = inflate_json(z, zlen, &text);
	tether_free(z);
	if (err < 0)
		return err;
	j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	tether_free(text);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		return TETHER_ERR_FORMAT;
	}
	*out = j;
	return 0;
}
