/*
 * File channels, agent side (docs/protocol.md, "File transfer"): the
 * customer's policy on where a technician may write and read, and one
 * transfer on the shared engine (tether/xfer.h) per channel.  chan.c
 * owns the channel: it hands this file the channel's sealed messages and
 * the channel itself as a struct agent_file_io, and sends CLOSE when a
 * call here says the transfer is over.
 */
#ifndef TETHER_AGENT_SESSION_FILE_H
#define TETHER_AGENT_SESSION_FILE_H

#include <stddef.h>
#include <stdint.h>

#include <tether/ctrl.h>
#include <tether/xfer.h>

struct agent_file;
struct agent_term;

/* Directories a file transfer may reach: realpath'ed, without duplicates. */
struct agent_roots {
	char **dirs; /* owned */
	size_t n;
};

/* --allow-write (default: home and /tmp) and --allow-read (none: any). */
struct agent_file_policy {
	struct agent_roots write;
	struct agent_roots read;
};

/*
 * Adds dir, resolved with realpath(), to roots (--allow-write,
 * --allow-read); on failure why says why (static text).
 */
int agent_file_allow(struct agent_roots *roots, const char *dir,
		     const char **why);
/* After the options: the default write roots, home and /tmp, if none. */
int agent_file_policy_init(struct agent_file_policy *p);
/* "write in ROOTS and read ..." for the customer, cut to fit out. */
void agent_file_describe_policy(const struct agent_file_policy *p, char *out,
				size_t outlen);
void agent_file_policy_free(struct agent_file_policy *p);

/* A file channel as this file sees it. */
struct agent_file_io {
	/* The channel: sealed messages and windows, for the engine too. */
	struct tether_xfer_io chan;
	/* The relay's audit record of one entry (chan.arg is its arg). */
	int (*report)(void *arg, const struct tether_ctrl_xfer_report *r);
};

/* Who a transfer is for and where its lines and records go. */
struct agent_file_env {
	const struct agent_file_policy *policy;
	struct agent_term *term;
	uint32_t channel;
	const char *technician; /* copied */
	struct agent_file_io io;
};

/* What agent_file_start(), _input() and _pump() return besides errors. */
#define AGENT_FILE_MORE 0 /* the transfer goes on */
#define AGENT_FILE_DONE 1 /* it is over: chan.c sends CLOSE */

/*
 * The console's first message on a file channel (GET or PUT): checks the
 * policy and starts the engine.  AGENT_FILE_MORE with the transfer in
 * *out; AGENT_FILE_DONE when the request was refused (ERROR is sent, the
 * customer told, the refusal audited); or a TETHER_ERR_* with why in *why
 * (static text) for a malformed request or no memory, and
 * TETHER_ERR_CLOSED when the link is going away.  *out is set only with
 * AGENT_FILE_MORE; free it with agent_file_free().
 */
int agent_file_start(const struct agent_file_env *env, uint8_t msg,
		     const uint8_t *body, size_t len, struct agent_file **out,
		     const char **why);
/* Every later sealed message but WINDOW, CLOSE and ERROR; as above. */
int agent_file_input(struct agent_file *f, uint8_t msg, const uint8_t *body,
		     size_t len, const char **why);
/* Window came back or the link drained: send more; as above. */
int agent_file_pump(struct agent_file *f, const char **why);
/* Stops the transfer (a partial file stays, to resume).  NULL is fine. */
void agent_file_free(struct agent_file *f);

#endif /* TETHER_AGENT_SESSION_FILE_H */
