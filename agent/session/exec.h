/*
 * Commands on pipes (exec.c) for exec and diag channels and for shells
 * without a terminal, and what they and the shells on a terminal (pty.c)
 * report back.  Nothing here knows of links, keys or messages: a channel
 * drives a child through these calls and callbacks alone, so that moving
 * children behind a privilege boundary later means putting them on a
 * pipe.
 */
#ifndef TETHER_AGENT_SESSION_EXEC_H
#define TETHER_AGENT_SESSION_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include <tether/proto.h>

/* Largest read from a child's output: one channel data chunk. */
#define AGENT_PROC_CHUNK TETHER_CHANNEL_CHUNK

struct agent_proc;

enum agent_stream {
	AGENT_STDOUT = 1, /* the numbers of EOF messages */
	AGENT_STDERR = 2,
};

/* What exec.c and pty.c report about their child. */
struct agent_proc_cbs {
	/* len <= the credit given; the data is valid only during the call. */
	void (*on_output)(void *ctx, enum agent_stream s, const uint8_t *data,
			  size_t len);
	void (*on_eof)(void *ctx, enum agent_stream s);
	/* n bytes given to agent_*_write() are written (or dropped). */
	void (*on_written)(void *ctx, size_t n);
	/* how: 0 exited with value, 1 killed by signal value. */
	void (*on_exit)(void *ctx, int how, uint32_t value);
	/* Every handle is closed; the child is freed after this returns. */
	void (*on_closed)(void *ctx);
};

/* A child on pipes. */
struct agent_spawn {
	const char *file;  /* the program: PATH search unless it has a '/' */
	char *const *argv; /* NULL-terminated; argv[0] as the child sees it */
	int stop_signal;   /* the first signal of agent_proc_kill() */
};

/*
 * Spawns sp->file (cwd agent_work_dir(), inherited environment) with
 * three pipes in a new session.  Output is read only as far as the
 * credit allows (none at first).  On failure returns a negative errno
 * (libuv's UV_E*), makes no callbacks and cleans up by itself.
 */
int agent_proc_spawn(uv_loop_t *loop, const struct agent_spawn *sp,
		     const struct agent_proc_cbs *cbs, void *ctx,
		     struct agent_proc **out);
/* Output bytes the proc may read from now on (0 pauses both pipes). */
void agent_proc_set_credit(struct agent_proc *p, size_t credit);
/* Queues a copy of data for the child's stdin. */
int agent_proc_write(struct agent_proc *p, const void *data, size_t len);
/* Closes the child's stdin once queued writes are out. */
void agent_proc_close_stdin(struct agent_proc *p);
/*
 * Stops the command: the stop signal to its process group, SIGKILL 2 s
 * later if it is still there; drops its output.  Only on_closed is called
 * afterwards.
 */
void agent_proc_kill(struct agent_proc *p);
/* $HOME if it is a directory we can enter, else the passwd entry's, else /. */
const char *agent_work_dir(void);
/*
 * The user's login shell: $SHELL, else the passwd entry's shell, else
 * /bin/sh (the first that is an executable file); path gets it and arg0
 * "-" + its base name, which makes it a login shell.
 */
void agent_login_shell(char *path, size_t pathlen, char *arg0, size_t arg0len);

#endif /* TETHER_AGENT_SESSION_EXEC_H */
