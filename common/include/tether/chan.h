/*
 * One end of a sealed end-to-end channel (docs/protocol.md, "Key schedule
 * and sealed messages"): the two directional seals, message framing inside
 * the seal, and the credit windows for data bytes.  Used by the agent and
 * the console; the relay never has one.
 */
#ifndef TETHER_CHAN_H
#define TETHER_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tether/frame.h>
#include <tether/seal.h>

struct tether_chan;
struct tether_link;

/* Largest body of one sealed message. */
#define TETHER_CHAN_BODY_MAX (TETHER_FRAME_MAX - TETHER_SEAL_TAG_LEN - 1)

/*
 * Keys for channel id from Ke and both open nonces; console says which end
 * we are.  NULL on failure.  Free with tether_chan_free().
 */
struct tether_chan *
tether_chan_new(uint32_t id, bool console, const uint8_t *ke, size_t ke_len,
		const uint8_t nonce_c[TETHER_SEAL_NONCE_LEN],
		const uint8_t nonce_a[TETHER_SEAL_NONCE_LEN]);
void tether_chan_free(struct tether_chan *c);
/*
 * Raises both credit windows from TETHER_CHANNEL_WINDOW to window (up to
 * TETHER_CHANNEL_WINDOW_MAX) before any data moved; both ends must agree,
 * which the channel's kind tells them (file channels: TETHER_FILE_WINDOW).
 */
int tether_chan_set_window(struct tether_chan *c, size_t window);
uint32_t tether_chan_id(const struct tether_chan *c);

/*
 * Seals msg (enum tether_msg) with body and sends it on l as one DATA
 * frame.  Data messages (STDIN/STDOUT/STDERR/BLOCK) spend send window; the
 * caller checks tether_chan_send_window() first.
 */
int tether_chan_send(struct tether_chan *c, struct tether_link *l, uint8_t msg,
		     const void *body, size_t len);
/* Convenience senders. */
int tether_chan_send_u8(struct tether_chan *c, struct tether_link *l,
			uint8_t msg, uint8_t v);
int tether_chan_send_u32(struct tether_chan *c, struct tether_link *l,
			 uint8_t msg, uint32_t v);
/*
 * Where sealed frames go when the caller puts something of its own between
 * the channel and the link (the agent's channels, and their tests and fuzz
 * target that run without a network): frame is one whole DATA frame,
 * header and sealed payload, valid during the call.  0 or TETHER_ERR_*.
 */
typedef int (*tether_chan_sink)(void *arg, const uint8_t *frame, size_t len);
/* tether_chan_send() and tether_chan_consumed() with the frame to sink. */
int tether_chan_send_to(struct tether_chan *c, tether_chan_sink sink, void *arg,
			uint8_t msg, const void *body, size_t len);
int tether_chan_consumed_to(struct tether_chan *c, tether_chan_sink sink,
			    void *arg, size_t n);
/*
 * Opens a DATA frame addressed to this channel.  On success *msg is the
 * message byte and *body, *len its body, valid until the next open.  A WINDOW
 * message is applied here (and still reported).  TETHER_ERR_AUTH for a
 * frame that does not authenticate (forged, replayed, reordered, dropped);
 * TETHER_ERR_PROTOCOL for data beyond the granted window.
 */
int tether_chan_open(struct tether_chan *c, const struct tether_frame *f,
		     uint8_t *msg, const uint8_t **body, size_t *len);

/* Data bytes we may still send. */
size_t tether_chan_send_window(const struct tether_chan *c);
/*
 * Records that n received data bytes were written out; sends a WINDOW
 * message on l once enough credit has built up.
 */
int tether_chan_consumed(struct tether_chan *c, struct tether_link *l,
			 size_t n);

#endif /* TETHER_CHAN_H */
