/*
 * What every diagnostics collector reads the machine with (input.c).
 */
#ifndef TETHER_AGENT_DIAG_INPUT_H
#define TETHER_AGENT_DIAG_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

/*
 * path with TETHER_TEST_DIAG_ROOT put before /etc, /proc, /sys, /run and
 * /var (test builds only); else path itself.  buf (len bytes) holds the
 * result when it is not path.
 */
const char *agent_diag_path(const char *path, char *buf, size_t len);
/*
 * Reads at most max bytes of a file (the diag path of path) into *out,
 * NUL-terminated, which the caller frees with tether_free(); 0, or a
 * negative errno with *out NULL.  len may be NULL.
 */
int agent_diag_read(const char *path, size_t max, char **out, size_t *len);
/* {"error": "permission denied: PATH"} and the like (err: errno > 0). */
json_t *agent_diag_errno(int err, const char *path);
/* {"error": the formatted text}; NULL without memory. */
json_t *agent_diag_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* A JSON string of at most max bytes of s: valid UTF-8, no controls. */
json_t *agent_diag_str(const char *s, size_t max);
/*
 * Runs argv (PATH search, no shell) with stdin and stderr on /dev/null,
 * collecting at most max bytes of its stdout into *out (NUL-terminated,
 * the caller frees it); killed after timeout_ms or at the collection's
 * deadline.  0 with its exit status (or 128 + signal) in *status;
 * TETHER_ERR_NOT_FOUND if it could not be run, TETHER_ERR_EXPIRED on
 * timeout (*out NULL).
 */
int agent_diag_run(char *const argv[], int timeout_ms, size_t max, char **out,
		   int *status);
/*
 * When every tool must be done by (agent_diag_now_ms() time), for the
 * collection under way; 0: no deadline.
 */
void agent_diag_set_deadline(uint64_t ms);
/* CLOCK_MONOTONIC in milliseconds. */
uint64_t agent_diag_now_ms(void);
/* t as "2024-05-01T10:00:00Z" (UTC); the epoch if it cannot be. */
void agent_diag_iso_time(time_t t, char *out, size_t outlen);
/* Splits line in place at blanks into at most max fields; their count. */
size_t agent_diag_fields(char *line, char **f, size_t max);

#endif /* TETHER_AGENT_DIAG_INPUT_H */
