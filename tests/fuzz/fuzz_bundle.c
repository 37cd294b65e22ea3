/*
 * libFuzzer target for diagnostics bundles as the relay receives them
 * (tether_bundle_unpack: base64, zlib, JSON, with size limits) and for the
 * agent's redactor, which reads whatever log lines and command lines the
 * machine holds.
 *
 * Invariants: an accepted bundle is an object that packs and unpacks to
 * an equal object and passes the relay's check; redaction always returns a
 * string, and so does redacting its own output again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tether/bundle.h>

#include "diag/redact.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = NULL, *back = NULL;
	char *text, *packed = NULL, *red, *red2;

	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	if (tether_bundle_unpack(text, &j) == 0) {
		CHECK(json_is_object(j));
		/* What the client accepts, the relay's check does too. */
		CHECK(tether_bundle_check(text, NULL) == 0);
		if (tether_bundle_pack(j, &packed) == 0) {
			CHECK(tether_bundle_unpack(packed, &back) == 0);
			CHECK(json_equal(j, back));
		}
		free(packed);
		json_decref(back);
		json_decref(j);
	} else {
		CHECK(j == NULL);
	}

	red = agent_redact(text);
	CHECK(red != NULL);
	red2 = agent_redact(red);
	CHECK(red2 != NULL);
	free(red2);
	free(red);
	free(text);
	return 0;
}
