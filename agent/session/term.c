/*
 * The customer's own terminal while technicians' shells are open.  The
 * live view mirrors what the shells print to our stdout, so the customer
 * sees what is done on the machine; single keys on our stdin toggle it
 * (v) or end the session for everyone (q; Ctrl-C stays a signal).
 *
 * For the keys the terminal is put in cbreak mode without echo, and put
 * back on every way out: the normal end, exit(), and fatal signals.  Only
 * Ctrl-C stays a signal key: Ctrl-Z or Ctrl-\ would stop or kill us with
 * the terminal left in that mode.
 *
 * A question asked on the terminal later (agent-forward.c: may the
 * technician connect to this port?) holds the keys: the terminal goes
 * back to its normal mode for the answer, and the keys resume after it.
 *
 * Both directions use their own open of the terminal device, never fds 0
 * and 1 themselves: making them non-blocking would surprise the shell we
 * share them with.  The view never blocks the loop: what the terminal
 * does not take is queued up to a bound, and beyond it skipped (and
 * said so), since a mirror must not slow the technician down.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/buf.h>
#include <tether/log.h>

#include "agent.h"

#define VIEW_QUEUE_MAX (1024u * 1024)
/*
 * Modes the technician's programs may have switched on in the mirror,
 * switched off again: attributes, cursor shown, main screen (1047, not
 * 1049, whose cursor restore would jump home), no mouse reports, no
 * bracketed paste, normal cursor keys and keypad.
 */
#define VIEW_RESET                                                             \
	"\033[0m\033[?25h\033[?1047l\033[?1000l\033[?1002l\033[?1003l"         \
	"\033[?1006l\033[?2004l\033[?1l\033>"
#define TTY_PATH_MAX 256
#define KEY_CTRL_C 0x03

struct term {
	struct agent *a;
	bool started; /* the first shell opened */
	bool stopped;
	/* Live view. */
	bool view;	   /* mirroring now */
	bool view_failed;  /* nowhere to mirror to */
	int view_fd;	   /* -1 until opened */
	bool view_own;	   /* our own non-blocking open of the terminal */
	bool view_polling; /* view_poll initialised */
	bool view_waiting; /* view_poll started */
	uv_poll_t view_poll;
	struct tether_buf *queue;
	uint64_t skipped;
	bool mid_line; /* the last byte mirrored was not a newline */
	bool dirty;    /* a terminal got mirrored bytes since the last reset */
	/* Keys. */
	int key_fd;
	bool keys; /* key_poll initialised */
	bool held; /* a question is on the terminal: keys wait */
	uv_poll_t key_poll;
	struct termios keys_tio; /* the mode the keys need */
};

static struct term term = {.view_fd = -1, .key_fd = -1};

/* For the signal handler: the terminal to put back, and how it was. */
static volatile sig_atomic_t raw_on;
static int raw_fd = -1;
static struct termios saved_tio;

static const int fatal_signals[] = {
    SIGQUIT,   SIGILL,	SIGTRAP, SIGABRT, SIGBUS,    SIGFPE,
    SIGUSR1,   SIGSEGV, SIGUSR2, SIGALRM, SIGXCPU,   SIGXFSZ,
    SIGVTALRM, SIGPROF, SIGSYS,	 SIGIO,	  SIGSTKFLT,
};
#define NFATAL (sizeof(fatal_signals) / sizeof(fatal_signals[0]))
static struct sigaction fatal_old[NFATAL];

void agent_term_restore(void)
{
	sigset_t block, old;

	if (!raw_on)
		return;
	raw_on = 0;
	/* Even from the background (we may have been moved there). */
	sigemptyset(&block);
	sigaddset(&block, SIGTTOU);
	sigprocmask(SIG_BLOCK, &block, &old);
	tcsetattr(raw_fd, TCSANOW, &saved_tio);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static void on_fatal(int signo, siginfo_t *si, void *uc)
{
	size_t i;

	(void)uc;
	agent_term_restore();
	for (i = 0; i < NFATAL; i++)
		if (fatal_signals[i] == signo)
			sigaction(signo, &fatal_old[i], NULL);
	/*
	 * A fault happens again on return, now to the old handler (the
	 * default, or a sanitizer's); a sent signal is sent again.
	 */
	if (si == NULL || si->si_code <= 0)
		raise(signo);
}

static void catch_fatal(void)
{
	static bool done;
	struct sigaction sa;
	size_t i;

	if (done)
		return;
	done = true;
	atexit(agent_term_restore);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fatal;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < NFATAL; i++) {
		if (sigaction(fatal_signals[i], NULL, &fatal_old[i]) != 0)
			continue;
		/* What we ignore (or the loop handles) stays as it is. */
		if (fatal_old[i].sa_handler == SIG_IGN)
			continue;
		sigaction(fatal_signals[i], &sa, NULL);
	}
}

/* A new open of the terminal on fd, so its flags are ours alone. */
static int reopen_tty(int fd, int flags)
{
	char name[TTY_PATH_MAX], proc[32];
	int r;

	if (!isatty(fd))
		return -1;
	flags |= O_NOCTTY | O_CLOEXEC | O_NONBLOCK;
	if (ttyname_r(fd, name, sizeof(name)) == 0) {
		r = open(name, flags);
		if (r >= 0)
			return r;
	}
	/* Where /dev/pts is not what ttyname expects (containers). */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return open(proc, flags);
}

/* ---- Live view ------------------------------------------------------- */

static void on_view_closed(uv_handle_t *h)
{
	(void)h;
	if (term.view_own)
		close(term.view_fd);
	term.view_fd = -1;
}

static void view_close(void)
{
	if (term.view_polling) {
		term.view_polling = false;
		term.view_waiting = false;
		uv_close((uv_handle_t *)&term.view_poll, on_view_closed);
	} else if (term.view_own && term.view_fd >= 0) {
		close(term.view_fd);
		term.view_fd = -1;
	}
	tether_buf_free(term.queue);
	term.queue = NULL;
}

/* Somewhere to mirror to: our own open of stdout's terminal, else fd 1. */
static bool view_open(void)
{
	int fd;

	if (term.view_fd >= 0)
		return true;
	if (term.view_failed)
		return false;
	fd = reopen_tty(STDOUT_FILENO, O_WRONLY);
	if (fd < 0) {
		/* Not a terminal (--view into a file or pipe): plain writes. */
		term.view_fd = STDOUT_FILENO;
		return true;
	}
	term.queue = tether_buf_new(VIEW_QUEUE_MAX);
	if (term.queue == NULL ||
	    uv_poll_init(term.a->loop, &term.view_poll, fd) != 0) {
		tether_buf_free(term.queue);
		term.queue = NULL;
		close(fd);
		term.view_failed = true;
		return false;
	}
	term.view_fd = fd;
	term.view_own = true;
	term.view_polling = true;
	return true;
}

/* Blocking writes, for a file or pipe the customer chose. */
static void write_all(int fd, const uint8_t *d, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, d, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		d += n;
		len -= (size_t)n;
	}
}

/* Writes what the terminal takes now; returns that many, or -1. */
static ssize_t try_write(const uint8_t *d, size_t len)
{
	ssize_t n;

	do
		n = write(term.view_fd, d, len);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	return n;
}

static void view_failed(void)
{
	tether_log_debug("live view: %s", strerror(errno));
	term.view = false;
	term.view_failed = true;
	view_close();
}

static void on_view_writable(uv_poll_t *h, int status, int events);

static void view_wait(bool on)
{
	if (on == term.view_waiting || !term.view_polling)
		return;
	if (on &&
	    uv_poll_start(&term.view_poll, UV_WRITABLE, on_view_writable) != 0)
		return;
	if (!on)
		uv_poll_stop(&term.view_poll);
	term.view_waiting = on;
}

/* Queues what the terminal did not take; beyond the bound, skips it. */
static void view_queue(const uint8_t *d, size_t len)
{
	if (tether_buf_check_reserve(term.queue, len) != 0 ||
	    tether_buf_put(term.queue, d, len) != 0)
		term.skipped += len;
	view_wait(true);
}

static void on_view_writable(uv_poll_t *h, int status, int events)
{
	char note[96];
	ssize_t n;
	int len;

	(void)h;
	(void)events;
	if (status < 0) {
		view_failed();
		return;
	}
	while (tether_buf_len(term.queue) > 0) {
		n = try_write(tether_buf_ptr(term.queue),
			      tether_buf_len(term.queue));
		if (n < 0) {
			view_failed();
			return;
		}
		if (n == 0)
			return;
		tether_buf_consume(term.queue, (size_t)n);
	}
	if (term.skipped > 0) {
		len = snprintf(note, sizeof(note),
			       "\r\n[" AGENT_PROG
			       ": live view skipped %llu bytes]\r\n",
			       (unsigned long long)term.skipped);
		term.skipped = 0;
		term.mid_line = false;
		if (len > 0 && (size_t)len < sizeof(note))
			view_queue((const uint8_t *)note, (size_t)len);
		return;
	}
	view_wait(false);
}

void agent_term_view(const uint8_t *data, size_t len)
{
	ssize_t n = 0;

	if (!term.view || term.stopped || len == 0 || !view_open())
		return;
	term.mid_line = data[len - 1] != '\n';
	term.dirty = term.view_own;
	if (!term.view_own) {
		write_all(term.view_fd, data, len);
		return;
	}
	if (tether_buf_len(term.queue) == 0 && term.skipped == 0) {
		n = try_write(data, len);
		if (n < 0) {
			view_failed();
			return;
		}
	}
	if ((size_t)n < len)
		view_queue(data + n, len - (size_t)n);
}

void agent_term_newline(void)
{
	if (!term.mid_line || !term.view || term.view_fd < 0)
		return;
	term.mid_line = false;
	agent_term_view((const uint8_t *)"\n", 1);
	term.mid_line = false;
}

/* Gives the customer their terminal back as it was (best effort). */
static void view_reset(void)
{
	if (!term.dirty || term.view_fd < 0)
		return;
	term.dirty = false;
	if (try_write((const uint8_t *)VIEW_RESET, strlen(VIEW_RESET)) < 0)
		tether_log_debug("live view reset: %s", strerror(errno));
}

static void toggle_view(void)
{
	if (term.view) {
		agent_term_newline();
		term.view = false;
		/* Off is off: what waits for the terminal goes too. */
		if (term.queue != NULL)
			tether_buf_reset(term.queue);
		term.skipped = 0;
		view_wait(false);
		view_reset();
		agent_say("live view off");
	} else {
		term.view = true;
		agent_say("live view on");
	}
}

/* ---- Keys ------------------------------------------------------------ */

static void on_keys_closed(uv_handle_t *h)
{
	(void)h;
	close(term.key_fd);
	term.key_fd = -1;
}

static void keys_close(void)
{
	agent_term_restore();
	if (!term.keys)
		return;
	term.keys = false;
	uv_close((uv_handle_t *)&term.key_poll, on_keys_closed);
}

static void on_key(uv_poll_t *h, int status, int events)
{
	unsigned char buf[64];
	ssize_t n, i;

	(void)h;
	(void)events;
	if (status < 0) {
		keys_close();
		return;
	}
	n = read(term.key_fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* The terminal went away. */
		keys_close();
		return;
	}
	for (i = 0; i < n; i++) {
		switch (buf[i]) {
		case 'v':
		case 'V':
			toggle_view();
			break;
		case 'q':
		case 'Q':
		case KEY_CTRL_C:
			agent_leave(term.a);
			return;
		default:
			break;
		}
	}
}

/* The keys' mode on, and reading them; false (and closed) on failure. */
static bool keys_resume(void)
{
	if (tcsetattr(term.key_fd, TCSANOW, &term.keys_tio) != 0) {
		keys_close();
		return false;
	}
	raw_on = 1;
	if (uv_poll_start(&term.key_poll, UV_READABLE, on_key) != 0) {
		keys_close();
		return false;
	}
	return true;
}

/* cbreak, no echo, on stdin's terminal if we are its foreground job. */
static bool keys_start(void)
{
	struct termios tio;
	int fd;

	fd = reopen_tty(STDIN_FILENO, O_RDONLY);
	if (fd < 0)
		return false;
	/* A background job must not touch the terminal (or be stopped). */
	if (tcgetpgrp(fd) != getpgrp() || tcgetattr(fd, &saved_tio) != 0)
		goto fail;
	tio = saved_tio;
	tio.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	/* Ctrl-S would freeze our output, and with it the loop. */
	tio.c_iflag &= ~(tcflag_t)IXON;
	tio.c_cc[VMIN] = 1;
	tio.c_cc[VTIME] = 0;
	tio.c_cc[VQUIT] = _POSIX_VDISABLE;
	tio.c_cc[VSUSP] = _POSIX_VDISABLE;
	if (uv_poll_init(term.a->loop, &term.key_poll, fd) != 0)
		goto fail;
	term.key_fd = fd;
	term.keys = true;
	term.keys_tio = tio;
	raw_fd = fd;
	catch_fatal();
	/* A question being answered gets the terminal first. */
	if (term.held)
		return true;
	return keys_resume();
fail:
	close(fd);
	return false;
}

void agent_term_hold_keys(bool hold)
{
	if (term.held == hold)
		return;
	term.held = hold;
	if (!term.keys)
		return;
	if (hold) {
		uv_poll_stop(&term.key_poll);
		agent_term_restore();
	} else if (tcgetpgrp(term.key_fd) != getpgrp()) {
		/* Moved to the background meanwhile: hands off. */
		keys_close();
	} else {
		keys_resume();
	}
}

void agent_term_shell_opened(struct agent *a)
{
	bool keys;

	if (term.started || term.stopped)
		return;
	term.started = true;
	term.a = a;
	term.view = a->view == AGENT_VIEW_ON ||
		    (a->view == AGENT_VIEW_AUTO && isatty(STDOUT_FILENO));
	keys = keys_start();
	if (keys)
		agent_say("live view %s: press v to %s it, q or Ctrl-C to end "
			  "the session for everyone",
			  term.view ? "on" : "off",
			  term.view ? "hide" : "show");
	else
		agent_say("live view %s; Ctrl-C ends the session for everyone",
			  term.view ? "on" : "off");
}

void agent_term_stop(void)
{
	if (term.stopped)
		return;
	term.stopped = true;
	keys_close();
	if (term.view_fd >= 0 && term.view_own && term.queue != NULL &&
	    tether_buf_len(term.queue) > 0) {
		/* One last try for what is queued; never wait for it. */
		if (try_write(tether_buf_ptr(term.queue),
			      tether_buf_len(term.queue)) > 0)
			tether_buf_reset(term.queue);
	}
	if (term.mid_line && term.view_fd >= 0) {
		write_all(term.view_fd, (const uint8_t *)"\n", 1);
		term.mid_line = false;
	}
	view_reset();
	term.view = false;
	view_close();
}
