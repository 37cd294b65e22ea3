/*
 * The local terminal for `tether shell` and `tether ssh`: raw mode and
 * getting out of it on every path (normal return, atexit, and the signals
 * that would otherwise kill us with the terminal still raw), its window
 * size, and ssh's escapes typed on it.  While it is raw our own messages
 * end in "\r\n": console-error.c is told.
 *
 * Raw means what ssh does: no echo, no line editing, no signal keys (^C,
 * ^Z, ^\ go to the remote side as bytes), no input translation, and no
 * output processing either: the remote PTY already turned "\n" into
 * "\r\n", and full-screen programs there expect the bytes they write to
 * reach the terminal unchanged.  Hence "\r\n" in our own messages.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "console.h"

/* Signals whose default action ends the process: restore, then die. */
static const int fatal_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define NFATAL (sizeof(fatal_signals) / sizeof(fatal_signals[0]))

static struct termios saved_tio;
static int raw_fd = -1;
/* Read by the signal handlers: set only once saved_tio is complete. */
static volatile sig_atomic_t raw_on;
static struct sigaction old_actions[NFATAL];
static bool handlers_on;
static bool atexit_done;

/* Puts the saved settings back; async-signal-safe. */
static void tty_reset(int when)
{
	int saved_errno = errno;

	if (raw_on) {
		raw_on = 0;
		console_error_raw(false);
		tcsetattr(raw_fd, when, &saved_tio);
	}
	errno = saved_errno;
}

/*
 * SA_RESETHAND has put the default action back, and the signal stays
 * blocked until we return: raising it again makes us die of it once the
 * handler is done, as we would have without one.
 */
static void on_fatal_signal(int sig)
{
	/* TCSANOW: a stuck terminal must not keep us from dying. */
	tty_reset(TCSANOW);
	raise(sig);
}

static void install_handlers(void)
{
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fatal_signal;
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < NFATAL; i++) {
		if (sigaction(fatal_signals[i], NULL, &old_actions[i]) != 0)
			continue;
		/* Ignored by whoever started us (nohup, "&"): leave it so. */
		if (old_actions[i].sa_handler == SIG_IGN)
			continue;
		sigaction(fatal_signals[i], &sa, NULL);
	}
	handlers_on = true;
}

static void remove_handlers(void)
{
	size_t i;

	if (!handlers_on)
		return;
	for (i = 0; i < NFATAL; i++)
		if (old_actions[i].sa_handler != SIG_IGN)
			sigaction(fatal_signals[i], &old_actions[i], NULL);
	handlers_on = false;
}

static void restore_at_exit(void)
{
	tty_reset(TCSADRAIN);
}

int console_tty_raw(int fd)
{
	struct termios tio;
	int ret = -1;

	if (raw_on)
		return 0;
	if (tcgetattr(fd, &saved_tio) != 0) {
		console_error("cannot read the terminal settings: %s",
			      strerror(errno));
		goto out;
	}
	if (!atexit_done && atexit(restore_at_exit) == 0)
		atexit_done = true;
	tio = saved_tio;
	tio.c_iflag |= IGNPAR;
	tio.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR |
			 ICRNL | IXON | IXANY | IXOFF);
#ifdef IUCLC
	tio.c_iflag &= ~IUCLC;
#endif
	tio.c_lflag &=
	    ~(ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHONL | IEXTEN);
	tio.c_oflag &= ~OPOST;
	tio.c_cc[VMIN] = 1;
	tio.c_cc[VTIME] = 0;
	/* Handlers first: a signal right after the switch must find them. */
	install_handlers();
	raw_fd = fd;
	raw_on = 1;
	if (tcsetattr(fd, TCSADRAIN, &tio) != 0) {
		raw_on = 0;
		remove_handlers();
		console_error("cannot put the terminal in raw mode: %s",
			      strerror(errno));
		goto out;
	}
	console_error_raw(true);
	ret = 0;
out:
	return ret;
}

void console_tty_restore(void)
{
	tty_reset(TCSADRAIN);
	remove_handlers();
}

int console_tty_size(int fd, uint16_t *cols, uint16_t *rows)
{
	struct winsize ws;

	if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
		*cols = ws.ws_col;
		*rows = ws.ws_row;
		return 0;
	}
	*cols = 80;
	*rows = 24;
	return -1;
}

/* Raw terminal: every line ends in "\r\n". */
static const char escape_help[] =
    "Supported escape sequences:\r\n"
    " ~.   - terminate connection\r\n"
    " ~?   - this message\r\n"
    " ~~   - send the escape character by typing it twice\r\n"
    "(Note that escapes are only recognized immediately after newline.)"
    "\r\n";

bool console_tty_escapes_filter(struct console_tty_escapes *e, const uint8_t *p,
				size_t n, uint8_t *out, size_t *outlen)
{
	size_t i, m = 0;
	uint8_t ch;

	for (i = 0; i < n; i++) {
		ch = p[i];
		if (e->tilde) {
			e->tilde = false;
			if (ch == '.') {
				*outlen = m;
				return true;
			}
			if (ch == '?') {
				/* Still at a line start: "~." may follow. */
				fputs(escape_help, stderr);
				continue;
			}
			if (ch != '~')
				out[m++] = '~';
		} else if (e->line_start && ch == '~') {
			e->tilde = true;
			continue;
		}
		e->line_start = ch == '\r' || ch == '\n';
		out[m++] = ch;
	}
	*outlen = m;
	return false;
}
