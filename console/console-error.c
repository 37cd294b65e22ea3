/*
 * The console's one-line messages on standard error, "tether: ...", and
 * the line end they need: "\r\n" while `tether shell` or `tether ssh` has
 * the terminal raw (console-tty.c says when), where "\n" alone would
 * stair.  The ground floor: everything else reports through it.
 */
#include <signal.h>
#include <stdarg.h>

#include <tether/text.h>

#include "console.h"

/* Written by console-tty.c, in its signal handlers too. */
static volatile sig_atomic_t raw;

void console_error_raw(bool on)
{
	raw = on;
}

static void end_line(void)
{
	fputs(raw ? "\r\n" : "\n", stderr);
}

void console_error(const char *fmt, ...)
{
	va_list ap;

	fputs("tether: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	end_line();
}

void console_error_text(const char *what, const char *text)
{
	fputs("tether: ", stderr);
	fputs(what, stderr);
	tether_text_print_clean(stderr, text);
	end_line();
}
