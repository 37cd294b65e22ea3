/*
 * The customer's own terminal (term.h).  Event lines go to stdout and
 * stderr, after ending any half line the live view left.  The live view
 * mirrors what technicians' shells print to our stdout, so the customer
 * sees what is done on the machine; single keys on our stdin toggle it
 * (v) or end the session for everyone (q; Ctrl-C stays a signal).
 *
 * For the keys the terminal is put in cbreak mode without echo, and put
 * back on every way out: the normal end, exit(), and fatal signals.  Only
 * Ctrl-C stays a signal key: Ctrl-Z or Ctrl-\ would stop or kill us with
 * the terminal left in that mode.  The mode to put back is the one piece
 * of state outside the object: a signal handler has nothing else.
 *
 * A question (agent_term_ask()) holds the keys: the terminal goes back to
 * its normal mode for the answer, and the keys resume after it.  The
 * questions themselves are read from /dev/tty by prompt.c.
 *
 * Both directions use their own open of the terminal device, never fds 0
 * and 1 themselves: making them non-blocking would surprise the shell we
 * share them with.  The view never blocks the loop: what the terminal
 * does not take is queued up to a bound, and beyond it skipped (and
 * said so), since a mirror must not slow the technician down.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/buf.h>
#include <tether/err.h>
#include <tether/log.h>

#include "diag/text.h"
#include "session/prompt.h"
#include "session/term.h"

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
/* Longest word of the technician's shown whole. */
#define WORD_MAX 1024

/* What the question timer does when it fires. */
enum ask_timer {
	ASK_TIMEOUT,	 /* the shown question was not answered in time */
	ASK_NO_TERMINAL, /* the shown question could not be put up */
	ASK_NEXT,	 /* one was withdrawn: the next goes up */
};

struct agent_term {
	uv_loop_t *loop;
	struct agent_term_opts o;
	int handles; /* open uv handles; freed at 0 once freeing */
	bool freeing;
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
	/* Questions. */
	struct agent_question *head;
	struct agent_question **tail;
	struct agent_question *shown;
	struct agent_prompt *prompt;
	bool asking_ended;
	bool ask_timer_up; /* ask_timer initialised */
	uv_timer_t ask_timer;
	enum ask_timer ask_timer_does;
};

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

/* ---- The object ------------------------------------------------------ */

struct agent_term *agent_term_new(uv_loop_t *loop,
				  const struct agent_term_opts *opts)
{
	struct agent_term *t = tether_calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->loop = loop;
	t->o = *opts;
	t->view_fd = -1;
	t->key_fd = -1;
	t->tail = &t->head;
	return t;
}

static void maybe_free(struct agent_term *t)
{
	if (t->freeing && t->handles == 0)
		tether_free(t);
}

static void on_ask_timer_closed(uv_handle_t *h)
{
	struct agent_term *t = h->data;

	t->handles--;
	maybe_free(t);
}

void agent_term_free(struct agent_term *t)
{
	if (t == NULL)
		return;
	agent_term_stop(t);
	t->freeing = true;
	if (t->ask_timer_up) {
		t->ask_timer_up = false;
		uv_close((uv_handle_t *)&t->ask_timer, on_ask_timer_closed);
	}
	maybe_free(t);
}

/* ---- Live view ------------------------------------------------------- */

static void on_view_closed(uv_handle_t *h)
{
	struct agent_term *t = h->data;

	if (t->view_own)
		close(t->view_fd);
	t->view_fd = -1;
	t->handles--;
	maybe_free(t);
}

static void view_close(struct agent_term *t)
{
	if (t->view_polling) {
		t->view_polling = false;
		t->view_waiting = false;
		uv_close((uv_handle_t *)&t->view_poll, on_view_closed);
	} else if (t->view_own && t->view_fd >= 0) {
		close(t->view_fd);
		t->view_fd = -1;
	}
	tether_buf_free(t->queue);
	t->queue = NULL;
}

/* Somewhere to mirror to: our own open of stdout's terminal, else fd 1. */
static bool view_open(struct agent_term *t)
{
	int fd;

	if (t->view_fd >= 0)
		return true;
	if (t->view_failed)
		return false;
	fd = reopen_tty(STDOUT_FILENO, O_WRONLY);
	if (fd < 0) {
		/* Not a terminal (--view into a file or pipe): plain writes. */
		t->view_fd = STDOUT_FILENO;
		return true;
	}
	t->queue = tether_buf_new(VIEW_QUEUE_MAX);
	if (t->queue == NULL || uv_poll_init(t->loop, &t->view_poll, fd) != 0) {
		tether_buf_free(t->queue);
		t->queue = NULL;
		close(fd);
		t->view_failed = true;
		return false;
	}
	t->view_poll.data = t;
	t->handles++;
	t->view_fd = fd;
	t->view_own = true;
	t->view_polling = true;
	return true;
}

/* Writes what the terminal takes now; returns that many, or -1. */
static ssize_t try_write(struct agent_term *t, const uint8_t *d, size_t len)
{
	ssize_t n;

	do
		n = write(t->view_fd, d, len);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	return n;
}

static void view_failed(struct agent_term *t)
{
	tether_log_debug("live view: %s", strerror(errno));
	t->view = false;
	t->view_failed = true;
	view_close(t);
}

static void on_view_writable(uv_poll_t *h, int status, int events);

static void view_wait(struct agent_term *t, bool on)
{
	if (on == t->view_waiting || !t->view_polling)
		return;
	if (on &&
	    uv_poll_start(&t->view_poll, UV_WRITABLE, on_view_writable) != 0)
		return;
	if (!on)
		uv_poll_stop(&t->view_poll);
	t->view_waiting = on;
}

/* Queues what the terminal did not take; beyond the bound, skips it. */
static void view_queue(struct agent_term *t, const uint8_t *d, size_t len)
{
	if (tether_buf_check_reserve(t->queue, len) != 0 ||
	    tether_buf_put(t->queue, d, len) != 0)
		t->skipped += len;
	view_wait(t, true);
}

static void on_view_writable(uv_poll_t *h, int status, int events)
{
	struct agent_term *t = h->data;
	char note[96];
	ssize_t n;
	int len;

	(void)events;
	if (status < 0) {
		view_failed(t);
		return;
	}
	while (tether_buf_len(t->queue) > 0) {
		n = try_write(t, tether_buf_ptr(t->queue),
			      tether_buf_len(t->queue));
		if (n < 0) {
			view_failed(t);
			return;
		}
		if (n == 0)
			return;
		tether_buf_consume(t->queue, (size_t)n);
	}
	if (t->skipped > 0) {
		len = snprintf(note, sizeof(note),
			       "\r\n[" AGENT_PROG
			       ": live view skipped %llu bytes]\r\n",
			       (unsigned long long)t->skipped);
		t->skipped = 0;
		t->mid_line = false;
		if (len > 0 && (size_t)len < sizeof(note))
			view_queue(t, (const uint8_t *)note, (size_t)len);
		return;
	}
	view_wait(t, false);
}

void agent_term_view(struct agent_term *t, const uint8_t *data, size_t len)
{
	ssize_t n = 0;

	if (t == NULL || !t->view || t->stopped || len == 0 || !view_open(t))
		return;
	t->mid_line = data[len - 1] != '\n';
	t->dirty = t->view_own;
	if (!t->view_own) {
		/* Blocking: a file or pipe the customer chose. */
		agent_prompt_write_all(t->view_fd, data, len);
		return;
	}
	if (tether_buf_len(t->queue) == 0 && t->skipped == 0) {
		n = try_write(t, data, len);
		if (n < 0) {
			view_failed(t);
			return;
		}
	}
	if ((size_t)n < len)
		view_queue(t, data + n, len - (size_t)n);
}

/* Ends a mirrored half line before an event line or a question. */
static void newline(struct agent_term *t)
{
	if (t == NULL || !t->mid_line || !t->view || t->view_fd < 0)
		return;
	t->mid_line = false;
	agent_term_view(t, (const uint8_t *)"\n", 1);
	t->mid_line = false;
}

/* Gives the customer their terminal back as it was (best effort). */
static void view_reset(struct agent_term *t)
{
	if (!t->dirty || t->view_fd < 0)
		return;
	t->dirty = false;
	if (try_write(t, (const uint8_t *)VIEW_RESET, strlen(VIEW_RESET)) < 0)
		tether_log_debug("live view reset: %s", strerror(errno));
}

/* ---- Lines ------------------------------------------------------------ */

static void vsay(struct agent_term *t, FILE *fp, const char *fmt, va_list ap)
{
	/* Not in the middle of a line a shell printed in the live view. */
	newline(t);
	fputs(AGENT_PROG ": ", fp);
	vfprintf(fp, fmt, ap);
	fputc('\n', fp);
	fflush(fp);
}

void agent_term_say(struct agent_term *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(t, t != NULL && t->o.out != NULL ? t->o.out : stdout, fmt, ap);
	va_end(ap);
}

void agent_term_warn(struct agent_term *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay(t, t != NULL && t->o.err != NULL ? t->o.err : stderr, fmt, ap);
	va_end(ap);
}

void agent_term_size(uint64_t n, char *out, size_t outlen)
{
	static const char *const units[] = {"KiB", "MiB", "GiB",
					    "TiB", "PiB", "EiB"};
	double v = (double)n / 1024;
	size_t i = 0;

	if (n < 1024) {
		snprintf(out, outlen, "%" PRIu64 " B", n);
		return;
	}
	/* 1023.96 KiB would print as 1024.0 KiB: that is 1.0 MiB. */
	while (v >= 1023.95 && i + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		i++;
	}
	snprintf(out, outlen, "%.1f %s", v, units[i]);
}

void agent_term_words(char *const *words, size_t n, const char *empty,
		      char *out, size_t outlen)
{
	char word[WORD_MAX];
	size_t pos = 0, len, i;

	out[0] = '\0';
	for (i = 0; i < n; i++) {
		agent_text_clean(words[i][0] != '\0' ? words[i] : empty, word,
				 sizeof(word));
		len = strlen(word);
		if (pos + (i > 0) + len + 4 >= outlen) {
			memcpy(out + pos, " ...", 5);
			return;
		}
		if (i > 0)
			out[pos++] = ' ';
		memcpy(out + pos, word, len + 1);
		pos += len;
	}
}

static void toggle_view(struct agent_term *t)
{
	if (t->view) {
		newline(t);
		t->view = false;
		/* Off is off: what waits for the terminal goes too. */
		if (t->queue != NULL)
			tether_buf_reset(t->queue);
		t->skipped = 0;
		view_wait(t, false);
		view_reset(t);
		agent_term_say(t, "live view off");
	} else {
		t->view = true;
		agent_term_say(t, "live view on");
	}
}

/* ---- Keys ------------------------------------------------------------ */

static void on_keys_closed(uv_handle_t *h)
{
	struct agent_term *t = h->data;

	close(t->key_fd);
	t->key_fd = -1;
	t->handles--;
	maybe_free(t);
}

static void keys_close(struct agent_term *t)
{
	agent_term_restore();
	if (!t->keys)
		return;
	t->keys = false;
	uv_close((uv_handle_t *)&t->key_poll, on_keys_closed);
}

static void on_key(uv_poll_t *h, int status, int events)
{
	struct agent_term *t = h->data;
	unsigned char buf[64];
	ssize_t n, i;

	(void)events;
	if (status < 0) {
		keys_close(t);
		return;
	}
	n = read(t->key_fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* The terminal went away. */
		keys_close(t);
		return;
	}
	for (i = 0; i < n; i++) {
		switch (buf[i]) {
		case 'v':
		case 'V':
			toggle_view(t);
			break;
		case 'q':
		case 'Q':
		case KEY_CTRL_C:
			if (t->o.leave != NULL)
				t->o.leave(t->o.arg);
			return;
		default:
			break;
		}
	}
}

/* The keys' mode on, and reading them; false (and closed) on failure. */
static bool keys_resume(struct agent_term *t)
{
	if (tcsetattr(t->key_fd, TCSANOW, &t->keys_tio) != 0) {
		keys_close(t);
		return false;
	}
	raw_on = 1;
	if (uv_poll_start(&t->key_poll, UV_READABLE, on_key) != 0) {
		keys_close(t);
		return false;
	}
	return true;
}

/* cbreak, no echo, on stdin's terminal if we are its foreground job. */
static bool keys_start(struct agent_term *t)
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
	if (uv_poll_init(t->loop, &t->key_poll, fd) != 0)
		goto fail;
	t->key_poll.data = t;
	t->handles++;
	t->key_fd = fd;
	t->keys = true;
	t->keys_tio = tio;
	raw_fd = fd;
	catch_fatal();
	/* A question being answered gets the terminal first. */
	if (t->held)
		return true;
	return keys_resume(t);
fail:
	close(fd);
	return false;
}

static void hold_keys(struct agent_term *t, bool hold)
{
	if (t->held == hold)
		return;
	t->held = hold;
	if (!t->keys)
		return;
	if (hold) {
		uv_poll_stop(&t->key_poll);
		agent_term_restore();
	} else if (tcgetpgrp(t->key_fd) != getpgrp()) {
		/* Moved to the background meanwhile: hands off. */
		keys_close(t);
	} else {
		keys_resume(t);
	}
}

void agent_term_shell_opened(struct agent_term *t)
{
	bool keys;

	if (t == NULL || t->started || t->stopped || t->loop == NULL)
		return;
	t->started = true;
	t->view = t->o.view == AGENT_VIEW_ON ||
		  (t->o.view == AGENT_VIEW_AUTO && isatty(STDOUT_FILENO));
	keys = !t->o.unattended && keys_start(t);
	if (keys)
		agent_term_say(t,
			       "live view %s: press v to %s it, q or Ctrl-C to "
			       "end the session for everyone",
			       t->view ? "on" : "off",
			       t->view ? "hide" : "show");
	else
		agent_term_say(t,
			       "live view %s; Ctrl-C ends the session for "
			       "everyone",
			       t->view ? "on" : "off");
}

bool agent_term_attended(const struct agent_term *t)
{
	return t != NULL && !t->o.unattended && !t->stopped &&
	       !t->asking_ended && isatty(STDIN_FILENO) &&
	       tcgetpgrp(STDIN_FILENO) == getpgrp();
}

/* ---- Questions --------------------------------------------------------- */

static void show_next(struct agent_term *t);

static void ask_timer_start(struct agent_term *t, enum ask_timer does,
			    uint64_t ms);

/* The shown question is over: keys back, then its asker is told. */
static void answer(struct agent_term *t, enum agent_answer a)
{
	struct agent_question *q = t->shown;

	t->shown = NULL;
	if (t->ask_timer_up)
		uv_timer_stop(&t->ask_timer);
	hold_keys(t, false);
	q->answered(q, a);
	show_next(t);
}

static void on_prompt(void *ctx, bool yes, const char *line)
{
	struct agent_term *t = ctx;

	t->prompt = NULL;
	if (t->shown != NULL)
		snprintf(t->shown->reply, sizeof(t->shown->reply), "%s", line);
	answer(t, yes ? AGENT_ANSWER_YES : AGENT_ANSWER_NO);
}

static void on_ask_timer(uv_timer_t *h)
{
	struct agent_term *t = h->data;

	if (t->ask_timer_does == ASK_NEXT) {
		show_next(t);
		return;
	}
	if (t->shown == NULL)
		return;
	if (t->ask_timer_does == ASK_NO_TERMINAL) {
		answer(t, AGENT_ANSWER_NO_TERMINAL);
		return;
	}
	agent_prompt_cancel(t->prompt);
	t->prompt = NULL;
	answer(t, AGENT_ANSWER_TIMEOUT);
}

static void ask_timer_start(struct agent_term *t, enum ask_timer does,
			    uint64_t ms)
{
	if (!t->ask_timer_up) {
		if (t->loop == NULL ||
		    uv_timer_init(t->loop, &t->ask_timer) != 0)
			return;
		t->ask_timer.data = t;
		t->ask_timer_up = true;
		t->handles++;
	}
	t->ask_timer_does = does;
	uv_timer_start(&t->ask_timer, on_ask_timer, ms, 0);
}

/* Puts the first waiting question on the terminal. */
static void show_next(struct agent_term *t)
{
	struct agent_question *q;
	int r = TETHER_ERR_NOT_FOUND;

	if (t->shown != NULL || t->head == NULL || t->asking_ended)
		return;
	q = t->head;
	t->head = q->next_;
	if (t->head == NULL)
		t->tail = &t->head;
	q->next_ = NULL;
	q->queued_ = false;
	t->shown = q;
	/* Not behind a half line of the live view, nor its keys. */
	newline(t);
	hold_keys(t, true);
	if (!t->o.unattended && !t->stopped && t->loop != NULL)
		r = agent_prompt_start(t->loop, q->text, on_prompt, t,
				       &t->prompt);
	if (r != 0) {
		hold_keys(t, false);
		ask_timer_start(t, ASK_NO_TERMINAL, 0);
		return;
	}
	if (q->timeout_ms > 0)
		ask_timer_start(t, ASK_TIMEOUT, q->timeout_ms);
}

void agent_term_ask(struct agent_term *t, struct agent_question *q)
{
	q->reply[0] = '\0';
	q->next_ = NULL;
	q->queued_ = true;
	*t->tail = q;
	t->tail = &q->next_;
	/* Later, so that no answer comes from within this call. */
	if (t->shown == NULL)
		ask_timer_start(t, ASK_NEXT, 0);
}

bool agent_term_withdraw(struct agent_term *t, struct agent_question *q)
{
	struct agent_question **pp;

	if (t->shown == q) {
		t->shown = NULL;
		agent_prompt_cancel(t->prompt);
		t->prompt = NULL;
		if (t->ask_timer_up)
			uv_timer_stop(&t->ask_timer);
		hold_keys(t, false);
		/* After the asker's own line about it. */
		if (t->head != NULL && !t->asking_ended)
			ask_timer_start(t, ASK_NEXT, 0);
		return true;
	}
	if (!q->queued_)
		return false;
	for (pp = &t->head; *pp != NULL; pp = &(*pp)->next_) {
		if (*pp == q) {
			*pp = q->next_;
			if (t->tail == &q->next_)
				t->tail = pp;
			break;
		}
	}
	q->next_ = NULL;
	q->queued_ = false;
	return false;
}

void agent_term_end_questions(struct agent_term *t)
{
	if (t != NULL)
		t->asking_ended = true;
}

void agent_term_stop(struct agent_term *t)
{
	if (t == NULL || t->stopped)
		return;
	t->stopped = true;
	t->asking_ended = true;
	/* Whoever asked is gone by now: no answer is owed. */
	agent_prompt_cancel(t->prompt);
	t->prompt = NULL;
	t->shown = NULL;
	keys_close(t);
	if (t->view_fd >= 0 && t->view_own && t->queue != NULL &&
	    tether_buf_len(t->queue) > 0) {
		/* One last try for what is queued; never wait for it. */
		if (try_write(t, tether_buf_ptr(t->queue),
			      tether_buf_len(t->queue)) > 0)
			tether_buf_reset(t->queue);
	}
	if (t->mid_line && t->view_fd >= 0) {
		agent_prompt_write_all(t->view_fd, "\n", 1);
		t->mid_line = false;
	}
	view_reset(t);
	t->view = false;
	view_close(t);
}
