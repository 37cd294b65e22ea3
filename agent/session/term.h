/*
 * The customer's terminal: the one place that writes what the person at
 * this machine sees.  Event lines ("alice wants to connect...", "alice
 * runs: ...", warnings) on stdout and stderr, the live view that mirrors
 * what technicians' shells print, the keys that toggle it (v) or end the
 * session (q), and the questions asked there (trust this relay? allow
 * this? may alice connect to HOST:PORT?), one at a time.
 *
 * The programs without a customer (enroll, run) print their lines through
 * it too, with no term at all: every function takes a NULL term and then
 * only writes plain lines to stdout or stderr.
 */
#ifndef TETHER_AGENT_SESSION_TERM_H
#define TETHER_AGENT_SESSION_TERM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <uv.h>

#include "session/prompt.h"

struct agent_term;

/* --view / --no-view; by default the view is on when stdout is a terminal. */
enum agent_view {
	AGENT_VIEW_AUTO,
	AGENT_VIEW_ON,
	AGENT_VIEW_OFF,
};

struct agent_term_opts {
	enum agent_view view;
	/* Where event lines go: stdout and stderr when NULL. */
	FILE *out;
	FILE *err;
	/* Nobody is there to answer: every question is refused at once. */
	bool unattended;
	/* The customer pressed q or Ctrl-C in the live view.  May be NULL. */
	void (*leave)(void *arg);
	void *arg;
};

/*
 * A terminal on loop, opts copied; NULL without memory.  Nothing is
 * touched before the first shell opens or the first question is asked.
 */
struct agent_term *agent_term_new(uv_loop_t *loop,
				  const struct agent_term_opts *opts);
/*
 * Puts the terminal back (agent_term_stop()) and frees t once its
 * handles are closed.  NULL is fine.
 */
void agent_term_free(struct agent_term *t);

/* "tether-agent: ..." as one line on stdout (events). */
void agent_term_say(struct agent_term *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "tether-agent: ..." as one line on stderr (errors). */
void agent_term_warn(struct agent_term *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * "512 B", "1.5 KiB", "23.4 MiB": sizes as the customer reads them (and
 * the status lines of checks).
 */
void agent_term_size(uint64_t n, char *out, size_t outlen);

/*
 * Words from the technician (a command line, the paths asked for) as the
 * customer sees them: cleaned, space-joined, cut with " ..." where out
 * is too small; an empty word shows as the text empty.
 */
void agent_term_words(char *const *words, size_t n, const char *empty,
		      char *out, size_t outlen);

/*
 * The first shell opened: starts the keys (v, q) when stdin is the
 * foreground terminal and prints a hint about them, once.
 */
void agent_term_shell_opened(struct agent_term *t);
/* Mirrors shell output to stdout while the live view is on. */
void agent_term_view(struct agent_term *t, const uint8_t *data, size_t len);
/*
 * Someone sits at the terminal to answer: stdin is one and we are its
 * foreground job (reading it from the background would stop the agent).
 */
bool agent_term_attended(const struct agent_term *t);

/* How a question ended. */
enum agent_answer {
	AGENT_ANSWER_NO,
	AGENT_ANSWER_YES,
	AGENT_ANSWER_TIMEOUT,	  /* not answered in time */
	AGENT_ANSWER_NO_TERMINAL, /* nobody could be asked */
};

/*
 * A yes/no question, kept by the asker (the term borrows it while it is
 * queued or shown).  The text ends in "[y/N] ".
 */
struct agent_question {
	const char *text;    /* borrowed until answered or withdrawn */
	unsigned timeout_ms; /* from when it is shown; 0: none */
	/* Called once, never from within agent_term_ask(). */
	void (*answered)(struct agent_question *q, enum agent_answer a);
	void *arg; /* the asker's */
	/* The answer as typed, blanks around taken off, when answered. */
	char reply[AGENT_PROMPT_LINE_MAX + 1];
	/* The term's. */
	struct agent_question *next_;
	bool queued_;
};

/*
 * Asks q after the questions already waiting: the terminal is put in its
 * normal mode (the keys wait) while it is shown.  Without a terminal
 * (or unattended) q is answered NO_TERMINAL; once the agent is ending
 * (agent_term_end_questions(), agent_term_stop()) it waits, unasked,
 * until withdrawn.  t may not be NULL: the answer comes on its loop.
 */
void agent_term_ask(struct agent_term *t, struct agent_question *q);
/*
 * Takes q back unanswered; true if it was on the terminal (the next one
 * goes up unless the term is stopping).
 */
bool agent_term_withdraw(struct agent_term *t, struct agent_question *q);
/* No further question goes up: the agent is ending. */
void agent_term_end_questions(struct agent_term *t);

/* Puts the terminal back and closes the view and keys.  Idempotent. */
void agent_term_stop(struct agent_term *t);
/* Puts the terminal mode back; async-signal-safe, for the last exits. */
void agent_term_restore(void);

#endif /* TETHER_AGENT_SESSION_TERM_H */
