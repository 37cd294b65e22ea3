/*
 * Diagnostics bundles as they travel in control messages and rest on a
 * ticket: base64 (padded) of zlib-compressed JSON text.  JSON of logs and
 * process lists shrinks five to ten times, which keeps a bundle inside one
 * control frame.
 */
#ifndef TETHER_BUNDLE_H
#define TETHER_BUNDLE_H

#include <jansson.h>

/*
 * *out: the packed form of bundle, NUL-terminated (free with tether_free).
 * TETHER_ERR_TOO_LARGE if it would exceed TETHER_BUNDLE_MAX.
 */
int tether_bundle_pack(const json_t *bundle, char **out);
/*
 * *out: the JSON object packed in packed (new reference).  Rejects more
 * than TETHER_BUNDLE_MAX of input, more than TETHER_BUNDLE_JSON_MAX of
 * JSON once inflated (a zip bomb), bad base64, zlib or JSON, and anything
 * but an object: TETHER_ERR_FORMAT or TETHER_ERR_TOO_LARGE.
 */
int tether_bundle_unpack(const char *packed, json_t **out);
/*
 * What the relay does with a bundle it stores: decodes and inflates it a
 * piece at a time (memory stays under 400 KiB whatever the input) and
 * checks the size limits and that the text looks like one JSON object
 * ("{" ... "}", no NUL), without building it.  *json_len (may be NULL)
 * gets the size of the text.  Errors as tether_bundle_unpack().
 */
int tether_bundle_check(const char *packed, size_t *json_len);

/*
 * Largest JSON text a packed bundle may inflate to.  Real bundles are tens
 * of KiB; the console that parses one spends at most about 100 MB on 4 MiB
 * of the smallest JSON values.
 */
#define TETHER_BUNDLE_JSON_MAX (4u * 1024 * 1024)

#endif /* TETHER_BUNDLE_H */
