/*
 * A framed TLS connection on a libuv TCP handle: the glue between uv
 * streams, the TLS filter and the frame codec, shared by the relay, the agent
 * and the console.  Writes are queued with a byte count the owner can watch
 * for back-pressure; reads can be paused.  A link is freed only after its
 * handle's close callback has run, never inside one of its own callbacks.
 */
#ifndef TETHER_LINK_H
#define TETHER_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include <tether/frame.h>
#include <tether/tls.h>

struct tether_link;
struct tether_link_ctx;

struct tether_link_cbs {
	/* TLS is up (and, on a client, the pin matched). */
	void (*on_open)(struct tether_link *l);
	/*
	 * One decoded frame; f's pointers are valid only during the call.
	 * The callee may close or pause the link.
	 */
	void (*on_frame)(struct tether_link *l, const struct tether_frame *f);
	/* Queued output fell to the low-water mark after being above it. */
	void (*on_drain)(struct tether_link *l);
	/*
	 * The link is closed; reason is 0 for an orderly close or a
	 * TETHER_ERR_* (TETHER_ERR_REFUSED: the peer sent an ERROR frame,
	 * whose text is the reason); tether_link_close_reason() has words.  The
	 * link is freed when this returns.
	 */
	void (*on_close)(struct tether_link *l, int reason);
};

/* Above this much queued output, tether_link_over_high_water() is true. */
#define TETHER_LINK_HIGH_WATER (4u * 1024 * 1024)
#define TETHER_LINK_LOW_WATER (1u * 1024 * 1024)

/*
 * What the links of one loop share: the TLS context (borrowed: it must
 * outlive this), the buffer every read lands in, a pool of write buffers,
 * and the test dump.  Single-threaded like the loop; it must outlive its
 * links.  NULL on no memory; free with tether_link_ctx_free().
 */
struct tether_link_ctx *tether_link_ctx_new(struct tether_tls_ctx *tls);
void tether_link_ctx_free(struct tether_link_ctx *ctx);

/*
 * Accepts a pending connection on server (a listening uv_tcp_t) as a TLS
 * server link.  Returns NULL on failure.  The link owns itself until
 * on_close.
 */
struct tether_link *tether_link_accept(uv_stream_t *server,
				       struct tether_link_ctx *ctx,
				       const struct tether_link_cbs *cbs,
				       void *data);
/*
 * Connects to host:port as a TLS client.  pin, if not NULL, is the expected
 * "SHA256:..." fingerprint: a different certificate closes the link with
 * TETHER_ERR_FINGERPRINT before on_open.  Failures (DNS, refused, TLS) are
 * reported through on_close.  NULL only on immediate failure.
 */
struct tether_link *
tether_link_connect(uv_loop_t *loop, struct tether_link_ctx *ctx,
		    const char *host, int port, const char *pin,
		    const struct tether_link_cbs *cbs, void *data);

void *tether_link_data(const struct tether_link *l);
void tether_link_set_data(struct tether_link *l, void *data);
/* Largest accepted payload; TETHER_FRAME_MAX_PREAUTH until raised. */
void tether_link_set_max_payload(struct tether_link *l, size_t max);
/* "127.0.0.1:port" of the peer. */
const char *tether_link_peer(const struct tether_link *l);
/* The peer certificate's fingerprint (clients). */
int tether_link_peer_fingerprint(const struct tether_link *l,
				 char out[TETHER_TLS_FP_LEN]);
bool tether_link_is_open(const struct tether_link *l);

/* Sends one frame.  TETHER_ERR_CLOSED once closing. */
int tether_link_send(struct tether_link *l, uint8_t type, uint32_t channel,
		     const void *payload, size_t len);
/* Sends a header and payload given separately (avoids a copy). */
int tether_link_send2(struct tether_link *l, const uint8_t *hdr, size_t hdr_len,
		      const void *payload, size_t len);
/* Sends a CTRL frame with the JSON object (compact encoding). */
int tether_link_send_json(struct tether_link *l, const json_t *msg);
/* Sends an already-encoded frame verbatim. */
int tether_link_send_raw(struct tether_link *l, const void *raw, size_t len);
/* Bytes accepted by send but not yet written to the socket. */
size_t tether_link_pending(const struct tether_link *l);
bool tether_link_over_high_water(const struct tether_link *l);
/*
 * Bytes the socket has taken so far (it only grows): output that waits
 * while this stands still is not being read.
 */
uint64_t tether_link_written(const struct tether_link *l);

/* Stops delivering frames (and reading) until resumed. */
void tether_link_pause(struct tether_link *l);
void tether_link_resume(struct tether_link *l);

/*
 * Closes the link after trying to deliver what is queued (bounded by a
 * short timer).  reason is kept for on_close.  Safe to call repeatedly and
 * from callbacks.
 */
void tether_link_close(struct tether_link *l, int reason);
/*
 * Sends an ERROR frame with the reason text, then closes with err.
 */
void tether_link_close_error(struct tether_link *l, int err,
			     const char *reason);
/* Words for why the link closed (TLS reason, peer's error frame, ...). */
const char *tether_link_close_reason(const struct tether_link *l);
/* Keeps a textual reason (e.g. the peer's ERROR frame) for on_close. */
void tether_link_set_close_reason(struct tether_link *l, const char *reason);

/*
 * Test hook: with test hooks compiled in, every plaintext byte the links
 * of ctx read after TLS is appended to the file at path (the relay passes
 * $TETHER_PLAINTEXT_DUMP).  Used to prove the relay never sees channel
 * content.  Without test hooks it does nothing.
 */
void tether_link_ctx_enable_dump(struct tether_link_ctx *ctx, const char *path);

#endif /* TETHER_LINK_H */
