/*
 * The one relay client, on top of link: connecting with a pinned relay
 * certificate (or asking whoever runs us to trust the one presented, or
 * taking it when told to), hello and welcome, the signature of the
 * welcome's challenge for a client with a key (consoles, enrolled agents),
 * keepalive pings and the idle limit, reconnecting with jittered
 * exponential back-off, and control messages decoded through ctrl.  The
 * attended agent, the enrolled service, enrolment and the console all talk
 * to the relay through it; what they say once let in (join, resume,
 * enroll, requests) is theirs, in on_welcome: that is where a reconnect
 * resumes.
 *
 * A client runs on its owner's libuv loop and owns its handles; it frees
 * itself after tether_client_close(), once they have closed.
 */
#ifndef TETHER_CLIENT_H
#define TETHER_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include <tether/ctrl.h>
#include <tether/frame.h>
#include <tether/tls.h>

struct tether_client;
struct tether_link;

/* Reconnect delays: from MIN, doubling to MAX, each +- 25 %. */
#define TETHER_CLIENT_BACKOFF_MIN_MS 500u
#define TETHER_CLIENT_BACKOFF_MAX_MS 30000u

struct tether_client_opts {
	const char *host;
	int port;
	/* The relay's "SHA256:..." fingerprint to insist on, or NULL. */
	const char *pin;
	/*
	 * Without a pin: take the certificate presented first and pin it
	 * for every reconnect (on_open says so).  Without a pin and without
	 * this, the first connection only fetches the fingerprint for
	 * on_trust and says nothing.
	 */
	bool accept_any;
	/* Who says hello. */
	enum tether_role role;
	/*
	 * The key that signs the relay's challenge (borrowed until the
	 * client is closed; strings too): an enrolled agent's, for agent,
	 * the name it is enrolled as; a console's, for technician, the one
	 * it is registered for, or with a one-time login token (borrowed
	 * until the hello is sent) that registers it.  With a key the
	 * client answers the challenge itself, each under its own label
	 * (tether/sign.h), and on_welcome comes with the auth_ok.
	 */
	const struct tether_sign_key *key;
	const char *agent;
	const char *technician;
	const char *token;
	/* Only TLS, no hello: on_open, then the owner closes (a probe). */
	bool no_hello;
};

/* How far the connection got, as on_down sees it. */
enum tether_client_phase {
	TETHER_CLIENT_CONNECTING, /* TCP and TLS under way */
	TETHER_CLIENT_OPEN,	  /* TLS up, the pin matched; hello sent */
	TETHER_CLIENT_AUTH,	  /* the challenge's signature sent */
	TETHER_CLIENT_READY,	  /* welcomed */
};

struct tether_client_cbs {
	/*
	 * TLS is up and the certificate pinned; fp is the fingerprint the
	 * relay presented; newly_pinned when accept_any just took it.
	 * May be NULL.
	 */
	void (*on_open)(struct tether_client *c, const char *fp,
			bool newly_pinned);
	/*
	 * No pin and no accept_any: the relay presented fp on a connection
	 * that said nothing and is closed again.  Call tether_client_trust()
	 * (now or later) to connect pinned to it, or close the client.
	 */
	void (*on_trust)(struct tether_client *c, const char *fp);
	/*
	 * Welcomed (every time, after each reconnect): the place to join,
	 * resume, authenticate or make requests.  w is the welcome, or with
	 * a key the auth_ok that let us in; valid during the call.
	 */
	void (*on_welcome)(struct tether_client *c,
			   const struct tether_ctrl_msg *w);
	/*
	 * Every other control message from the relay once welcomed, decoded
	 * (ping and pong are answered here; types this version does not know
	 * are logged and dropped; a known type with bad members closes the
	 * connection as a protocol error).  m is the owner's during the
	 * call only (tether_client_take() keeps it).  May be NULL.
	 */
	void (*on_ctrl)(struct tether_client *c, struct tether_ctrl_msg *m);
	/* A DATA frame once welcomed; valid during the call.  May be NULL. */
	void (*on_data)(struct tether_client *c, const struct tether_frame *f);
	/* Queued output fell to the low-water mark.  May be NULL. */
	void (*on_drain)(struct tether_client *c);
	/*
	 * The connection is gone (or never came): err is a TETHER_ERR_*
	 * (TETHER_ERR_REFUSED when the relay sent an ERROR frame,
	 * TETHER_ERR_FINGERPRINT for a certificate that is not the pinned
	 * one), why its words, phase how far it got.  Call
	 * tether_client_retry() to reconnect after a back-off, or close.
	 * Not called after tether_client_close().
	 */
	void (*on_down)(struct tether_client *c, int err, const char *why,
			enum tether_client_phase phase);
};

/*
 * New client on loop; opts and cbs are copied (opts' strings are not: the
 * host and pin stay the caller's until the client is closed, the token
 * until the hello is sent).  NULL on no memory.  Nothing happens before
 * tether_client_start().
 */
struct tether_client *tether_client_new(uv_loop_t *loop,
					const struct tether_client_opts *opts,
					const struct tether_client_cbs *cbs,
					void *arg);
/* Starts connecting: 0, or TETHER_ERR_NOMEM (nothing started). */
int tether_client_start(struct tether_client *c);
/* After on_trust: connects again, pinned to the fingerprint it saw. */
int tether_client_trust(struct tether_client *c);
/*
 * After on_down: reconnects after the next back-off delay, which it
 * returns (ms), so the owner can say so.
 */
unsigned tether_client_retry(struct tether_client *c);
/* The link works again (resumed, authenticated): back-off from the start. */
void tether_client_backoff_reset(struct tether_client *c);
/*
 * Closes the connection after what is queued has gone (bounded by the
 * link's timer), stops everything and frees the client once its handles
 * have closed.  No callback runs after this returns.  NULL is fine.
 */
void tether_client_close(struct tether_client *c);

/* Encodes and sends a control message (tether_ctrl_encode()). */
int tether_client_send(struct tether_client *c, enum tether_ctrl_type t,
		       const void *body);
/*
 * Sends a request with a fresh id (in *id, may be NULL); its answer comes
 * to on_ctrl as TETHER_CTRL_OK or TETHER_CTRL_ERR with that id (decode
 * an OK with tether_ctrl_decode_answer()).
 */
int tether_client_request(struct tether_client *c, enum tether_ctrl_type t,
			  const void *body, int64_t *id);

/*
 * For short-lived programs that run the loop themselves: run it until the
 * client is welcomed (or, with no_hello, open), or until it is down:
 * 0, or the err on_down was given (on_down runs first, as always).
 * TETHER_ERR_STATE from inside a callback of the client's loop (while
 * either blocking call runs): uv_run() is not re-entrant.  The guard is
 * this client's: a program that runs the loop itself, or holds several
 * clients on one loop, must not call either from any loop callback.
 */
int tether_client_wait_ready(struct tether_client *c);
/*
 * Sends a request and runs the loop until its answer comes: 0 with the
 * answer in *answer (free it with tether_ctrl_msg_free()): type
 * TETHER_CTRL_ERR with its code and message, or TETHER_CTRL_OK already
 * decoded as t's answer.  A negative TETHER_ERR_* if it could not be sent,
 * the connection went down meanwhile (on_down ran) or the answer was
 * malformed (TETHER_ERR_PROTOCOL or TETHER_ERR_FORMAT, as
 * tether_ctrl_decode_answer() says; the connection is then closed).  Other
 * traffic meanwhile goes to the callbacks as usual; TETHER_ERR_STATE from
 * inside one of them (nothing is sent), as for tether_client_wait_ready().
 */
int tether_client_call(struct tether_client *c, enum tether_ctrl_type t,
		       const void *body, struct tether_ctrl_msg *answer);

/*
 * Moves the message on_ctrl was given into *out (the owner frees it with
 * tether_ctrl_msg_free()), leaving on_ctrl's empty.
 */
void tether_client_take(struct tether_ctrl_msg *m, struct tether_ctrl_msg *out);

/* The link while connected (to send DATA frames), else NULL. */
struct tether_link *tether_client_link(const struct tether_client *c);
bool tether_client_ready(const struct tether_client *c);
enum tether_client_phase tether_client_phase(const struct tether_client *c);
/*
 * The fingerprint of the relay's certificate ("" before the first open),
 * also the one it presented when refused with TETHER_ERR_FINGERPRINT.
 */
const char *tether_client_fingerprint(const struct tether_client *c);
void *tether_client_arg(const struct tether_client *c);
uv_loop_t *tether_client_loop(const struct tether_client *c);

/*
 * Jittered exponential back-off: the delay to wait now (base +- 25 %),
 * and *base_ms doubled for the next time, up to
 * TETHER_CLIENT_BACKOFF_MAX_MS.  Exposed for its unit test.
 */
unsigned tether_client_backoff_next(unsigned *base_ms);

#endif /* TETHER_CLIENT_H */
