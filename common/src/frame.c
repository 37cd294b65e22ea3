/*
 * Frame codec (docs/protocol.md, "Frames").  The decoder looks at the header
 * first, so an oversized or malformed frame is refused before its payload
 * is waited for or buffered.
 */
#include <string.h>

#include <tether/buf.h>
#include <tether/err.h>
#include <tether/frame.h>

static int check_header(uint8_t type, uint8_t flags, uint32_t channel)
{
	if (flags != 0)
		return TETHER_ERR_PROTOCOL;
	switch (type) {
	case TETHER_FRAME_CTRL:
	case TETHER_FRAME_ERROR:
		return channel == 0 ? TETHER_OK : TETHER_ERR_PROTOCOL;
	case TETHER_FRAME_DATA:
		return channel != 0 ? TETHER_OK : TETHER_ERR_PROTOCOL;
	default:
		return TETHER_ERR_PROTOCOL;
	}
}

int tether_frame_decode(struct tether_buf *in, size_t max_payload,
			struct tether_frame *f)
{
	uint32_t len, channel;
	uint8_t type, flags;
	int r;

	f->type = f->flags = 0;
	f->channel = f->len = 0;
	f->payload = f->raw = NULL;
	f->raw_len = 0;
	if (tether_buf_len(in) < TETHER_FRAME_HEADER_LEN)
		return TETHER_ERR_INCOMPLETE;
	if ((r = tether_buf_peek_u32(in, 0, &len)) != 0 ||
	    (r = tether_buf_peek_u8(in, 4, &type)) != 0 ||
	    (r = tether_buf_peek_u8(in, 5, &flags)) != 0 ||
	    (r = tether_buf_peek_u32(in, 6, &channel)) != 0)
		return r;
	if (len > max_payload || len > TETHER_FRAME_MAX)
		return TETHER_ERR_TOO_LARGE;
	if ((r = check_header(type, flags, channel)) != 0)
		return r;
	if (tether_buf_len(in) - TETHER_FRAME_HEADER_LEN < len)
		return TETHER_ERR_INCOMPLETE;
	f->type = type;
	f->flags = flags;
	f->channel = channel;
	f->len = len;
	f->raw = tether_buf_ptr(in);
	f->raw_len = TETHER_FRAME_HEADER_LEN + (size_t)len;
	f->payload = f->raw + TETHER_FRAME_HEADER_LEN;
	return tether_buf_consume(in, f->raw_len);
}

void tether_frame_header_pack(uint8_t hdr[TETHER_FRAME_HEADER_LEN],
			      uint8_t type, uint8_t flags, uint32_t channel,
			      uint32_t len)
{
	hdr[0] = (uint8_t)(len >> 24);
	hdr[1] = (uint8_t)(len >> 16);
	hdr[2] = (uint8_t)(len >> 8);
	hdr[3] = (uint8_t)len;
	hdr[4] = type;
	hdr[5] = flags;
	hdr[6] = (uint8_t)(channel >> 24);
	hdr[7] = (uint8_t)(channel >> 16);
	hdr[8] = (uint8_t)(channel >> 8);
	hdr[9] = (uint8_t)channel;
}

int tether_frame_encode(struct tether_buf *out, uint8_t type, uint8_t flags,
			uint32_t channel, const void *payload, size_t len)
{
	uint8_t *p;
	int r;

	if (len > TETHER_FRAME_MAX)
		return TETHER_ERR_TOO_LARGE;
	if ((r = check_header(type, flags, channel)) != 0)
		return r;
	/* One reservation: a failure must not leave a header alone in out. */
	if ((r = tether_buf_reserve(out, TETHER_FRAME_HEADER_LEN + len, &p)) !=
	    0)
		return r;
	tether_frame_header_pack(p, type, flags, channel, (uint32_t)len);
	if (len > 0)
		memcpy(p + TETHER_FRAME_HEADER_LEN, payload, len);
	return TETHER_OK;
}
