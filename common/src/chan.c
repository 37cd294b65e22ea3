/*
 * Sealed channel ends (see chan.h).  Each message is sealed in place in the
 * channel's send buffer (header, message byte, body, tag), which grows to
 * the largest message the channel sent: a few bytes for one that only
 * credits windows, a frame for one that streams.
 */
#include <string.h>

#include <tether/alloc.h>
#include <tether/buf.h>
#include <tether/chan.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/link.h>
#include <tether/msg.h>
#include <tether/proto.h>

struct tether_chan {
	uint32_t id;
	struct tether_seal *tx;
	struct tether_seal *rx;
	size_t window;	    /* the credit limit, both ways */
	size_t send_window; /* data bytes we may send */
	size_t recv_window; /* data bytes the peer may still send */
	size_t unacked;	    /* consumed but not yet credited back */
	uint8_t *rbuf;	    /* opened plaintext */
	uint8_t *sbuf;	    /* a frame being sealed */
	size_t sbuf_cap;
};

struct tether_chan *
tether_chan_new(uint32_t id, bool console, const uint8_t *ke, size_t ke_len,
		const uint8_t nonce_c[TETHER_SEAL_NONCE_LEN],
		const uint8_t nonce_a[TETHER_SEAL_NONCE_LEN])
{
	uint8_t k_c2a[TETHER_SEAL_KEY_LEN], k_a2c[TETHER_SEAL_KEY_LEN];
	struct tether_chan *c;

	c = tether_calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->id = id;
	c->window = c->send_window = c->recv_window = TETHER_CHANNEL_WINDOW;
	if (tether_seal_derive(ke, ke_len, nonce_c, nonce_a, id,
			       TETHER_SEAL_CONSOLE_TO_AGENT, k_c2a) != 0 ||
	    tether_seal_derive(ke, ke_len, nonce_c, nonce_a, id,
			       TETHER_SEAL_AGENT_TO_CONSOLE, k_a2c) != 0)
		goto fail;
	c->tx = tether_seal_new(console ? k_c2a : k_a2c);
	c->rx = tether_seal_new(console ? k_a2c : k_c2a);
	c->rbuf = tether_malloc(TETHER_FRAME_MAX);
	if (c->tx == NULL || c->rx == NULL || c->rbuf == NULL)
		goto fail;
	tether_wipe(k_c2a, sizeof(k_c2a));
	tether_wipe(k_a2c, sizeof(k_a2c));
	return c;
fail:
	tether_wipe(k_c2a, sizeof(k_c2a));
	tether_wipe(k_a2c, sizeof(k_a2c));
	tether_chan_free(c);
	return NULL;
}

void tether_chan_free(struct tether_chan *c)
{
	if (c == NULL)
		return;
	tether_seal_free(c->tx);
	tether_seal_free(c->rx);
	tether_freezero(c->rbuf, TETHER_FRAME_MAX);
	tether_freezero(c->sbuf, c->sbuf_cap);
	tether_free(c);
}

int tether_chan_set_window(struct tether_chan *c, size_t window)
{
	/* Only before any data moved, and within what a WINDOW can carry. */
	if (window < TETHER_CHANNEL_WINDOW ||
	    window > TETHER_CHANNEL_WINDOW_MAX || c->send_window != c->window ||
	    c->recv_window != c->window || c->unacked != 0)
		return TETHER_ERR_INVALID;
	c->window = c->send_window = c->recv_window = window;
	return TETHER_OK;
}

uint32_t tether_chan_id(const struct tether_chan *c)
{
	return c->id;
}

static bool is_data(uint8_t msg)
{
	return msg == TETHER_MSG_STDIN || msg == TETHER_MSG_STDOUT ||
	       msg == TETHER_MSG_STDERR || msg == TETHER_MSG_BLOCK;
}

/* The sink of tether_chan_send(): straight onto the link. */
static int to_link(void *arg, const uint8_t *frame, size_t len)
{
	return tether_link_send_raw(arg, frame, len);
}

int tether_chan_send(struct tether_chan *c, struct tether_link *l, uint8_t msg,
		     const void *body, size_t len)
{
	return tether_chan_send_to(c, to_link, l, msg, body, len);
}

int tether_chan_send_to(struct tether_chan *c, tether_chan_sink sink, void *arg,
			uint8_t msg, const void *body, size_t len)
{
	size_t plen = 1 + len, flen = plen + TETHER_SEAL_TAG_LEN;
	size_t need = TETHER_FRAME_HEADER_LEN + flen;
	int r;

	if (len > TETHER_CHAN_BODY_MAX)
		return TETHER_ERR_TOO_LARGE;
	if (need > c->sbuf_cap) {
		/* Grown by doubling, so a stream settles after a few sends. */
		size_t cap = c->sbuf_cap < 256 ? 256 : c->sbuf_cap;
		uint8_t *nb;

		while (cap < need)
			cap *= 2;
		if (cap > TETHER_FRAME_HEADER_LEN + TETHER_FRAME_MAX)
			cap = TETHER_FRAME_HEADER_LEN + TETHER_FRAME_MAX;
		nb = tether_malloc(cap);
		if (nb == NULL)
			return TETHER_ERR_NOMEM;
		tether_freezero(c->sbuf, c->sbuf_cap);
		c->sbuf = nb;
		c->sbuf_cap = cap;
	}
	if (is_data(msg)) {
		if (len > c->send_window)
			return TETHER_ERR_AGAIN;
		c->send_window -= len;
	}
	tether_frame_header_pack(c->sbuf, TETHER_FRAME_DATA, 0, c->id,
				 (uint32_t)flen);
	/* Sealed from where the body is: no copy of it first. */
	r = tether_seal_encrypt2(c->tx, c->sbuf, TETHER_FRAME_HEADER_LEN, &msg,
				 1, body, len,
				 c->sbuf + TETHER_FRAME_HEADER_LEN);
	if (r != 0)
		return r;
	return sink(arg, c->sbuf, need);
}

int tether_chan_send_u8(struct tether_chan *c, struct tether_link *l,
			uint8_t msg, uint8_t v)
{
	return tether_chan_send(c, l, msg, &v, 1);
}

int tether_chan_send_u32(struct tether_chan *c, struct tether_link *l,
			 uint8_t msg, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16),
			(uint8_t)(v >> 8), (uint8_t)v};

	return tether_chan_send(c, l, msg, b, sizeof(b));
}

int tether_chan_open(struct tether_chan *c, const struct tether_frame *f,
		     uint8_t *msg, const uint8_t **body, size_t *len)
{
	struct tether_msg_window w;
	size_t plen;
	int r;

	*msg = 0;
	*body = NULL;
	*len = 0;
	if (f->type != TETHER_FRAME_DATA || f->channel != c->id)
		return TETHER_ERR_PROTOCOL;
	if (f->len < TETHER_SEAL_TAG_LEN + 1)
		return TETHER_ERR_FORMAT;
	r = tether_seal_decrypt(c->rx, f->raw, TETHER_FRAME_HEADER_LEN,
				f->payload, f->len, c->rbuf);
	if (r != 0)
		return r;
	plen = f->len - TETHER_SEAL_TAG_LEN;
	*msg = c->rbuf[0];
	*body = c->rbuf + 1;
	*len = plen - 1;
	if (is_data(*msg)) {
		if (*len > c->recv_window)
			return TETHER_ERR_PROTOCOL;
		c->recv_window -= *len;
	} else if (*msg == TETHER_MSG_WINDOW) {
		/* Short, long or trailing: all one malformed WINDOW. */
		if ((r = tether_msg_decode_window(*body, *len, &w)) != 0)
			return r == TETHER_ERR_NOMEM ? r : TETHER_ERR_FORMAT;
		if (w.credit > c->window ||
		    c->send_window + w.credit > c->window)
			return TETHER_ERR_PROTOCOL;
		c->send_window += w.credit;
	}
	return TETHER_OK;
}

size_t tether_chan_send_window(const struct tether_chan *c)
{
	return c->send_window;
}

static int send_window(struct tether_chan *c, tether_chan_sink sink, void *arg,
		       uint32_t credit)
{
	const struct tether_msg_window m = {.credit = credit};
	struct tether_buf *b = tether_buf_new(sizeof(credit));
	int r = b != NULL ? tether_msg_encode_window(b, &m) : TETHER_ERR_NOMEM;

	if (r == 0)
		r = tether_chan_send_to(c, sink, arg, TETHER_MSG_WINDOW,
					tether_buf_ptr(b), tether_buf_len(b));
	tether_buf_free(b);
	return r;
}

int tether_chan_consumed(struct tether_chan *c, struct tether_link *l, size_t n)
{
	return tether_chan_consumed_to(c, to_link, l, n);
}

int tether_chan_consumed_to(struct tether_chan *c, tether_chan_sink sink,
			    void *arg, size_t n)
{
	uint32_t credit;
	int r;

	c->unacked += n;
	/* Credit back in big steps: one WINDOW per quarter window. */
	if (c->unacked < c->window / 4)
		return TETHER_OK;
	credit = (uint32_t)c->unacked;
	if ((r = send_window(c, sink, arg, credit)) != 0)
		return r;
	c->recv_window += credit;
	c->unacked = 0;
	return TETHER_OK;
}
