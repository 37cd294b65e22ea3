/*
 * Frame codec (docs/protocol.md, "Frames").  A frame is a 10-byte big-endian
 * header, u32 length | u8 type | u8 flags | u32 channel, then length bytes
 * of payload.  The payload limit is checked as soon as the header is in,
 * before anything is buffered or allocated for the payload.
 */
#ifndef TETHER_FRAME_H
#define TETHER_FRAME_H

#include <stddef.h>
#include <stdint.h>

struct tether_buf;

#define TETHER_FRAME_HEADER_LEN 10
/* Largest payload once authenticated, and before. */
#define TETHER_FRAME_MAX (256u * 1024)
#define TETHER_FRAME_MAX_PREAUTH (16u * 1024)

enum tether_frame_type {
	TETHER_FRAME_CTRL = 1, /* JSON control message, channel 0 */
	TETHER_FRAME_DATA = 2, /* sealed end-to-end payload, channel >= 1 */
	TETHER_FRAME_ERROR =
	    3, /* UTF-8 reason, channel 0; sender then closes */
};

struct tether_frame {
	uint8_t type;
	uint8_t flags;
	uint32_t channel;
	uint32_t len;		/* payload length */
	const uint8_t *payload; /* points into the decoded buffer */
	const uint8_t *raw;	/* header + payload, for verbatim forwarding */
	size_t raw_len;
};

/*
 * Decodes one frame from the front of in and consumes it.  f's pointers stay
 * valid until the next modifying call on in.  Returns TETHER_ERR_INCOMPLETE
 * (nothing consumed) until a whole frame is there; TETHER_ERR_TOO_LARGE as
 * soon as a header declares more than max_payload; TETHER_ERR_PROTOCOL for an
 * unknown type, non-zero flags or a channel that does not fit the type.
 */
int tether_frame_decode(struct tether_buf *in, size_t max_payload,
			struct tether_frame *f);
/* Writes the 10-byte header for the given fields into hdr. */
void tether_frame_header_pack(uint8_t hdr[TETHER_FRAME_HEADER_LEN],
			      uint8_t type, uint8_t flags, uint32_t channel,
			      uint32_t len);
/* Appends a whole frame to out.  TETHER_ERR_TOO_LARGE over TETHER_FRAME_MAX. */
int tether_frame_encode(struct tether_buf *out, uint8_t type, uint8_t flags,
			uint32_t channel, const void *payload, size_t len);

#endif /* TETHER_FRAME_H */
