/*
 * Minimal leveled logging to stderr.  Lines carry the program, level, the
 * function and, for errors, the error's words.
 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include <tether/err.h>
#include <tether/log.h>

static enum tether_log_level max_level = TETHER_LOG_INFO;
static const char *ident = "tether";

void tether_log_set_level(enum tether_log_level level)
{
	max_level = level;
}

void tether_log_set_ident(const char *s)
{
	ident = s;
}

void tether_log(const char *file, const char *func, int line,
		enum tether_log_level level, int err, const char *fmt, ...)
{
	static const char *names[] = {"error", "warning", "info", "debug"};
	char when[32];
	struct tm tm;
	time_t now;
	va_list ap;

	if (level > max_level)
		return;
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(stderr, "%s %s %s: ", when, ident, names[level]);
	if (max_level >= TETHER_LOG_DEBUG)
		fprintf(stderr, "%s:%d %s: ", file, line, func);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (err != 0)
		fprintf(stderr, ": %s", tether_strerror(err));
	fputc('\n', stderr);
}
