/*
 * Identifiers every program reads and writes: ticket ids, relay
 * fingerprints, names of technicians, agents and checks, and agent labels.
 * One strict parser and one formatter each, so that what the console
 * refuses the relay refuses too ("T-007", "T-+5", "T- 5" and overflowing
 * numbers are not tickets anywhere).
 */
#ifndef TETHER_ID_H
#define TETHER_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest name of a technician, an agent, a check or a label key. */
#define TETHER_ID_NAME_MAX 64
/* Longest label value. */
#define TETHER_ID_LABEL_VALUE_MAX 128
/* "T-" and up to 19 digits, with the NUL. */
#define TETHER_ID_TICKET_LEN 24
/* "SHA256:" + 43 characters of unpadded base64 (32 bytes) + NUL. */
#define TETHER_ID_FINGERPRINT_LEN 51

/*
 * A name: 1 to TETHER_ID_NAME_MAX of A-Z a-z 0-9 _ . - (names end up in
 * ticket titles, logs, file names and metrics).  NULL is not a name.
 */
bool tether_id_name_valid(const char *s);
bool tether_id_name_char(char c);

/* A label value: at most TETHER_ID_LABEL_VALUE_MAX bytes, no controls. */
bool tether_id_label_value_valid(const char *s);
/*
 * "KEY=VALUE" as given on a command line: *value points into spec (not
 * copied), the key is copied into key (keylen >= TETHER_ID_NAME_MAX + 1).
 * TETHER_ERR_FORMAT with a static reason in *why.
 */
int tether_id_label_parse(const char *spec, char *key, size_t keylen,
			  const char **value, const char **why);

/*
 * "T-N" (or "t-N"): N is 1 to INT64_MAX in decimal, without sign, blanks
 * or leading zeros.  *id is 0 on failure (TETHER_ERR_FORMAT).
 */
int tether_id_ticket_parse(const char *s, int64_t *id);
/* The same, also taking a bare N: what a user may type for a ticket. */
int tether_id_ticket_parse_arg(const char *s, int64_t *id);
/* "T-N" into out: TETHER_ERR_INVALID for id < 1, TOO_LARGE if it does not fit.
 */
int tether_id_ticket_format(int64_t id, char *out, size_t outlen);

/*
 * A relay certificate fingerprint as tether writes them: "SHA256:" and the
 * unpadded base64 of 32 bytes (43 characters, the last one carrying only
 * four bits).
 */
bool tether_id_fingerprint_valid(const char *fp);

#endif /* TETHER_ID_H */
