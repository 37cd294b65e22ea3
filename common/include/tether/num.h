/*
 * Checked number parsing, the only place the strto* family is used (the
 * banned-function check keeps it so): every other number read from the
 * wire, a config file, the command line or /proc goes through these.
 * Parsers either succeed with the whole value or fail without writing.
 */
#ifndef TETHER_NUM_H
#define TETHER_NUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The whole of s as a decimal number in [min, max]: digits only, no sign,
 * blanks or leading zeros ("0" itself is fine).  TETHER_ERR_FORMAT for
 * anything else, TETHER_ERR_TOO_LARGE (nothing written) out of range.
 */
int tether_num_parse_u64(const char *s, uint64_t min, uint64_t max,
			 uint64_t *out);
/* The same with an optional leading '-'. */
int tether_num_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/*
 * Advance-on-success scanning for text formats (/proc, command output):
 * skips blanks (space, tab) at *pp, then reads digits (leading zeros
 * allowed) up to the first non-digit; *pp moves past them.  On failure
 * (no digit, overflow) *pp and *out are unchanged.
 */
int tether_num_scan_u64(const char **pp, uint64_t *out);
/* The same for a signed value ('-' allowed). */
int tether_num_scan_i64(const char **pp, int64_t *out);
/*
 * Exactly the n bytes at s as a decimal floating-point number ("1",
 * "-0.5", "1e3"; no blanks, hex, "inf" or "nan").  TETHER_ERR_FORMAT.
 */
int tether_num_parse_double(const char *s, size_t n, double *out);
/* Hexadecimal digits at *pp (as scan_u64): "1f", no "0x". */
int tether_num_scan_hex(const char **pp, uint64_t *out);

#endif /* TETHER_NUM_H */
