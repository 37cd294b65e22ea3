/*
 * Shells on a pseudo-terminal (pty.c) for shell channels that asked for
 * one; driven and reporting as the commands of exec.h are.
 */
#ifndef TETHER_AGENT_SESSION_PTY_H
#define TETHER_AGENT_SESSION_PTY_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "session/exec.h"

struct agent_pty;

struct agent_pty_opts {
	const char *file; /* as in struct agent_spawn */
	char *const *argv;
	const char *term; /* TERM for the child ("dumb" if unusable) */
	uint16_t cols;	  /* initial window size (0: unknown) */
	uint16_t rows;
};

/*
 * Starts o->file on a new pseudo-terminal (forkpty): the child leads its
 * own session with the pty as its controlling terminal, cwd
 * agent_work_dir(), TERM set.  Output (one stream, reported as
 * AGENT_STDOUT) is read only as far as the credit allows (none at first);
 * its end is reported as EOF of both streams.  On failure returns a
 * negative errno (UV_E*), makes no callbacks and cleans up by itself.
 */
int agent_pty_spawn(uv_loop_t *loop, const struct agent_pty_opts *o,
		    const struct agent_proc_cbs *cbs, void *ctx,
		    struct agent_pty **out);
/* Output bytes the pty may read from now on (0 pauses it). */
void agent_pty_set_credit(struct agent_pty *p, size_t credit);
/* Writes data to the terminal, queueing what it does not take yet. */
int agent_pty_write(struct agent_pty *p, const void *data, size_t len);
/*
 * The technician's input ended.  A terminal has no end of file to pass
 * on (only the EOF character, wrong for binary input), so queued input is
 * still written and anything later dropped; the pty stays open.
 */
void agent_pty_close_stdin(struct agent_pty *p);
/* New window size (TIOCSWINSZ; the kernel signals SIGWINCH). */
void agent_pty_resize(struct agent_pty *p, uint16_t cols, uint16_t rows);
/*
 * Hangs up: closes the master, SIGHUP to the shell's process group,
 * SIGKILL 2 s later if it is still there.  Only on_closed is called
 * afterwards, once the child is reaped.
 */
void agent_pty_kill(struct agent_pty *p);

#endif /* TETHER_AGENT_SESSION_PTY_H */
