/*
 * Framed TLS links on libuv TCP handles (see link.h).  Everything here runs
 * on the loop thread, so the read buffer, the send scratch buffer and the
 * spare write buffers live in the links' shared context: no per-connection
 * 256 KiB buffers.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tether/alloc.h>
#include <tether/buf.h>
#include <tether/err.h>
#include <tether/link.h>
#include <tether/log.h>

enum link_state {
	LINK_CONNECTING,
	LINK_HANDSHAKE,
	LINK_OPEN,
	LINK_CLOSING,
};

struct link_write;

struct tether_link_ctx {
	struct tether_tls_ctx *tls;
	struct link_write *spare_writes;
	unsigned spare_count;
	FILE *dump_fp;
	uint8_t *read_buf;     /* LINK_READ_CHUNK */
	uint8_t *send_scratch; /* LINK_TLS_CHUNK */
};

struct tether_link {
	struct tether_link_ctx *ctx;
	uv_tcp_t tcp;
	uv_timer_t timer; /* handshake timeout, then close timeout */
	uv_connect_t connect_req;
	uv_getaddrinfo_t gai;
	uv_shutdown_t shutdown_req;
	struct tether_tls *tls;
	struct tether_link_cbs cbs;
	void *data;
	struct tether_buf *in; /* decrypted bytes awaiting framing */
	size_t max_payload;
	size_t pending;	 /* bytes handed to uv_write, not yet written */
	uint64_t handed; /* bytes ever handed to uv_write */
	enum link_state state;
	int handles; /* open uv handles; freed at zero */
	int close_reason;
	unsigned gai_pending : 1;
	unsigned connected : 1;
	unsigned paused : 1;
	unsigned pumping : 1;
	unsigned above_high : 1;
	unsigned has_pin : 1;
	unsigned handles_closing : 1;
	char pin[TETHER_TLS_FP_LEN];
	char peer[64];
	char reason[256];
};

struct link_write {
	uv_write_t req;
	size_t len;
	size_t cap;
	struct link_write *next; /* in the spare list */
	uint8_t data[];
};

/*
 * Write buffers big enough for one full frame's records are kept for
 * reuse: malloc would hand out fresh mmap'ed pages for each (they are over
 * glibc's mmap threshold), and faulting them in costs more than the copy.
 */
#define LINK_WRITE_CAP (TETHER_FRAME_HEADER_LEN + TETHER_FRAME_MAX + 32u * 1024)
/* Enough to refill a queue at its high-water mark without malloc. */
#define LINK_SPARE_MAX (TETHER_LINK_HIGH_WATER / TETHER_FRAME_MAX + 8)

#define LINK_READ_CHUNK (256u * 1024)
#define LINK_TLS_CHUNK (16u * 1024)
#define LINK_IN_MAX                                                            \
	(TETHER_FRAME_HEADER_LEN + TETHER_FRAME_MAX + 2 * LINK_TLS_CHUNK)
#define LINK_HANDSHAKE_MS 15000
#define LINK_CLOSE_MS 2000

static void close_handles(struct tether_link *l);
static void pump(struct tether_link *l);

struct tether_link_ctx *tether_link_ctx_new(struct tether_tls_ctx *tls)
{
	struct tether_link_ctx *ctx = tether_calloc(1, sizeof(*ctx));

	if (ctx == NULL)
		return NULL;
	ctx->tls = tls;
	ctx->read_buf = tether_malloc(LINK_READ_CHUNK);
	ctx->send_scratch = tether_malloc(LINK_TLS_CHUNK);
	if (ctx->read_buf == NULL || ctx->send_scratch == NULL) {
		tether_link_ctx_free(ctx);
		return NULL;
	}
	return ctx;
}

void tether_link_ctx_free(struct tether_link_ctx *ctx)
{
	struct link_write *w, *next;

	if (ctx == NULL)
		return;
	for (w = ctx->spare_writes; w != NULL; w = next) {
		next = w->next;
		tether_free(w);
	}
	if (ctx->dump_fp != NULL)
		fclose(ctx->dump_fp);
	/* Plaintext passed through both: wipe it. */
	tether_freezero(ctx->read_buf, LINK_READ_CHUNK);
	tether_freezero(ctx->send_scratch, LINK_TLS_CHUNK);
	tether_free(ctx);
}

void tether_link_ctx_enable_dump(struct tether_link_ctx *ctx, const char *path)
{
#ifdef TETHER_TEST_HOOKS
	if (ctx->dump_fp == NULL && path != NULL && *path != '\0')
		ctx->dump_fp = fopen(path, "abe");
#else
	(void)ctx;
	(void)path;
#endif
}

static struct tether_link *link_new(uv_loop_t *loop,
				    struct tether_link_ctx *ctx, bool server,
				    const struct tether_link_cbs *cbs,
				    void *data)
{
	struct tether_link *l = tether_calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->ctx = ctx;
	l->tls = tether_tls_new(ctx->tls, server);
	l->in = tether_buf_new(LINK_IN_MAX);
	if (l->tls == NULL || l->in == NULL) {
		tether_tls_free(l->tls);
		tether_buf_free(l->in);
		tether_free(l);
		return NULL;
	}
	l->cbs = *cbs;
	l->data = data;
	l->max_payload = TETHER_FRAME_MAX_PREAUTH;
	uv_tcp_init(loop, &l->tcp);
	uv_timer_init(loop, &l->timer);
	l->tcp.data = l;
	l->timer.data = l;
	l->handles = 2;
	return l;
}

static void set_reason(struct tether_link *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_reason(struct tether_link *l, const char *fmt, ...)
{
	va_list ap;

	if (l->reason[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(l->reason, sizeof(l->reason), fmt, ap);
	va_end(ap);
}

void tether_link_set_close_reason(struct tether_link *l, const char *reason)
{
	size_t i, j = 0;

	/* Peer text goes to terminals: keep printable ASCII only. */
	for (i = 0; reason[i] != '\0' && j + 1 < sizeof(l->reason); i++)
		if (reason[i] >= 0x20 && reason[i] < 0x7f)
			l->reason[j++] = reason[i];
	l->reason[j] = '\0';
}

const char *tether_link_close_reason(const struct tether_link *l)
{
	if (l->reason[0] != '\0')
		return l->reason;
	return tether_strerror(l->close_reason);
}

void *tether_link_data(const struct tether_link *l)
{
	return l->data;
}

void tether_link_set_data(struct tether_link *l, void *data)
{
	l->data = data;
}

void tether_link_set_max_payload(struct tether_link *l, size_t max)
{
	l->max_payload = max > TETHER_FRAME_MAX ? TETHER_FRAME_MAX : max;
}

const char *tether_link_peer(const struct tether_link *l)
{
	return l->peer;
}

int tether_link_peer_fingerprint(const struct tether_link *l,
				 char out[TETHER_TLS_FP_LEN])
{
	return tether_tls_peer_fingerprint(l->tls, out);
}

bool tether_link_is_open(const struct tether_link *l)
{
	return l->state == LINK_OPEN;
}

size_t tether_link_pending(const struct tether_link *l)
{
	return l->pending;
}

bool tether_link_over_high_water(const struct tether_link *l)
{
	return l->pending > TETHER_LINK_HIGH_WATER;
}

uint64_t tether_link_written(const struct tether_link *l)
{
	/*
	 * libuv holds what the socket has not taken yet, partial writes
	 * counted, so that a slow reader shows progress before a whole
	 * write completes.
	 */
	if (!l->connected)
		return l->handed;
	return l->handed -
	       uv_stream_get_write_queue_size((const uv_stream_t *)&l->tcp);
}

static struct link_write *write_new(struct tether_link_ctx *ctx, size_t n)
{
	struct link_write *w = ctx->spare_writes;

	/*
	 * Only writes near a full frame use (and make) spares, so that the
	 * memory behind a queue stays close to the bytes it counts.
	 */
	if (n > LINK_WRITE_CAP / 2 && n <= LINK_WRITE_CAP && w != NULL) {
		ctx->spare_writes = w->next;
		ctx->spare_count--;
		return w;
	}
	if (n < LINK_WRITE_CAP && n > LINK_WRITE_CAP / 2)
		n = LINK_WRITE_CAP;
	w = tether_malloc(sizeof(*w) + n);
	if (w != NULL)
		w->cap = n;
	return w;
}

static void write_free(struct tether_link_ctx *ctx, struct link_write *w)
{
	if (w->cap == LINK_WRITE_CAP && ctx->spare_count < LINK_SPARE_MAX) {
		w->next = ctx->spare_writes;
		ctx->spare_writes = w;
		ctx->spare_count++;
		return;
	}
	tether_free(w);
}

static void on_write(uv_write_t *req, int status)
{
	struct link_write *w = (struct link_write *)req;
	struct tether_link *l = req->handle->data;

	l->pending -= w->len;
	write_free(l->ctx, w);
	if (status < 0 && status != UV_ECANCELED) {
		set_reason(l, "write failed: %s", uv_strerror(status));
		tether_link_close(l, TETHER_ERR_SYS);
		return;
	}
	if (l->above_high && l->pending <= TETHER_LINK_LOW_WATER &&
	    l->state == LINK_OPEN) {
		l->above_high = 0;
		if (l->cbs.on_drain != NULL)
			l->cbs.on_drain(l);
	}
}

/* Moves whatever TLS produced onto the socket in one write. */
static int flush_tls(struct tether_link *l)
{
	struct link_write *w;
	size_t n, got;
	uv_buf_t b;
	int r;

	n = tether_tls_out_pending(l->tls);
	if (n == 0 || !l->connected)
		return TETHER_OK;
	w = write_new(l->ctx, n);
	if (w == NULL)
		return TETHER_ERR_NOMEM;
	if ((r = tether_tls_out_take(l->tls, w->data, n, &got)) != 0) {
		write_free(l->ctx, w);
		return r;
	}
	w->len = got;
	b = uv_buf_init((char *)w->data, (unsigned int)got);
	if ((r = uv_write(&w->req, (uv_stream_t *)&l->tcp, &b, 1, on_write)) <
	    0) {
		write_free(l->ctx, w);
		set_reason(l, "write failed: %s", uv_strerror(r));
		return TETHER_ERR_SYS;
	}
	l->pending += got;
	l->handed += got;
	if (l->pending > TETHER_LINK_HIGH_WATER)
		l->above_high = 1;
	return TETHER_OK;
}

static void on_close(uv_handle_t *h)
{
	struct tether_link *l = h->data;

	if (--l->handles > 0)
		return;
	if (l->cbs.on_close != NULL)
		l->cbs.on_close(l, l->close_reason);
	tether_tls_free(l->tls);
	tether_buf_free(l->in);
	tether_free(l);
}

static void close_handles(struct tether_link *l)
{
	if (l->handles_closing || l->gai_pending)
		return;
	l->handles_closing = 1;
	uv_close((uv_handle_t *)&l->tcp, on_close);
	uv_close((uv_handle_t *)&l->timer, on_close);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	(void)status;
	close_handles(req->handle->data);
}

static void on_close_timer(uv_timer_t *t)
{
	close_handles(t->data);
}

void tether_link_close(struct tether_link *l, int reason)
{
	if (l->state == LINK_CLOSING)
		return;
	l->state = LINK_CLOSING;
	l->close_reason = reason;
	if (!l->connected) {
		close_handles(l);
		return;
	}
	uv_read_stop((uv_stream_t *)&l->tcp);
	if (tether_tls_is_established(l->tls) &&
	    tether_tls_shutdown(l->tls) == 0)
		flush_tls(l);
	/* Let queued output (an error frame, say) go out, but not forever. */
	uv_timer_stop(&l->timer);
	uv_timer_start(&l->timer, on_close_timer, LINK_CLOSE_MS, 0);
	if (uv_shutdown(&l->shutdown_req, (uv_stream_t *)&l->tcp,
			on_shutdown) != 0)
		close_handles(l);
}

void tether_link_close_error(struct tether_link *l, int err, const char *reason)
{
	if (l->state == LINK_OPEN)
		tether_link_send(l, TETHER_FRAME_ERROR, 0, reason,
				 strlen(reason));
	set_reason(l, "%s", reason);
	tether_link_close(l, err);
}

int tether_link_send2(struct tether_link *l, const uint8_t *hdr, size_t hdr_len,
		      const void *payload, size_t len)
{
	size_t head;
	int r;

	if (l->state != LINK_OPEN)
		return TETHER_ERR_CLOSED;
	if (hdr_len > TETHER_FRAME_HEADER_LEN + TETHER_FRAME_MAX ||
	    len > TETHER_FRAME_HEADER_LEN + TETHER_FRAME_MAX - hdr_len)
		return TETHER_ERR_TOO_LARGE;
	/*
	 * A frame in one piece goes to TLS as it is.  A header and payload
	 * apart are joined for the first record only, so that a small frame
	 * stays one record and a large one is not copied once more.
	 */
	if (len == 0 || hdr_len >= LINK_TLS_CHUNK) {
		head = 0;
		r = tether_tls_write(l->tls, hdr, hdr_len);
	} else {
		head = len < LINK_TLS_CHUNK - hdr_len
			   ? len
			   : LINK_TLS_CHUNK - hdr_len;
		memcpy(l->ctx->send_scratch, hdr, hdr_len);
		memcpy(l->ctx->send_scratch + hdr_len, payload, head);
		r = tether_tls_write(l->tls, l->ctx->send_scratch,
				     hdr_len + head);
	}
	if (r == 0 && head < len)
		r = tether_tls_write(l->tls, (const uint8_t *)payload + head,
				     len - head);
	if (r != 0)
		return r;
	return flush_tls(l);
}

int tether_link_send(struct tether_link *l, uint8_t type, uint32_t channel,
		     const void *payload, size_t len)
{
	uint8_t hdr[TETHER_FRAME_HEADER_LEN];

	if (len > TETHER_FRAME_MAX)
		return TETHER_ERR_TOO_LARGE;
	tether_frame_header_pack(hdr, type, 0, channel, (uint32_t)len);
	return tether_link_send2(l, hdr, sizeof(hdr), payload, len);
}

int tether_link_send_raw(struct tether_link *l, const void *raw, size_t len)
{
	return tether_link_send2(l, raw, len, NULL, 0);
}

int tether_link_send_json(struct tether_link *l, const json_t *msg)
{
	char *s;
	int r;

	/* 15 digits: perfdata 20.17 goes out as 20.17, not ...0000002. */
	s = json_dumps(msg, JSON_COMPACT | JSON_REAL_PRECISION(15));
	if (s == NULL)
		return TETHER_ERR_NOMEM;
	r = tether_link_send(l, TETHER_FRAME_CTRL, 0, s, strlen(s));
	free(s);
	return r;
}

void tether_link_pause(struct tether_link *l)
{
	if (l->paused || l->state == LINK_CLOSING)
		return;
	l->paused = 1;
	uv_read_stop((uv_stream_t *)&l->tcp);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct tether_link *l = h->data;

	(void)suggested;
	*buf = uv_buf_init((char *)l->ctx->read_buf, LINK_READ_CHUNK);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

void tether_link_resume(struct tether_link *l)
{
	if (!l->paused || l->state == LINK_CLOSING)
		return;
	l->paused = 0;
	uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read);
	pump(l);
}

static void handle_error_frame(struct tether_link *l,
			       const struct tether_frame *f)
{
	char text[256];
	size_t n = f->len < sizeof(text) - 1 ? f->len : sizeof(text) - 1;

	memcpy(text, f->payload, n);
	text[n] = '\0';
	tether_link_set_close_reason(l, text);
	tether_link_close(l, TETHER_ERR_REFUSED);
}

/* Decrypts what TLS holds and hands out whole frames until paused. */
static void pump(struct tether_link *l)
{
	struct tether_frame f;
	size_t got;
	uint8_t *p;
	int r;

	if (l->pumping)
		return;
	l->pumping = 1;
	while (l->state == LINK_OPEN && !l->paused) {
		r = tether_frame_decode(l->in, l->max_payload, &f);
		if (r == 0) {
			if (f.type == TETHER_FRAME_ERROR)
				handle_error_frame(l, &f);
			else
				l->cbs.on_frame(l, &f);
			continue;
		}
		if (r != TETHER_ERR_INCOMPLETE) {
			tether_link_close_error(l, r,
						r == TETHER_ERR_TOO_LARGE
						    ? "frame too large"
						    : "malformed frame");
			break;
		}
		if ((r = tether_buf_reserve(l->in, LINK_TLS_CHUNK, &p)) != 0) {
			tether_link_close_error(l, r, "input overflow");
			break;
		}
		r = tether_tls_read(l->tls, p, LINK_TLS_CHUNK, &got);
		tether_buf_consume_end(l->in, LINK_TLS_CHUNK - got);
		if (r == TETHER_ERR_AGAIN)
			break;
		if (r == TETHER_ERR_CLOSED) {
			set_reason(l, "connection closed by peer");
			tether_link_close(l, TETHER_ERR_CLOSED);
			break;
		}
		if (r != 0) {
			set_reason(l, "TLS: %s", tether_tls_error(l->tls));
			tether_link_close(l, TETHER_ERR_TLS);
			break;
		}
		if (l->ctx->dump_fp != NULL && got > 0) {
			fwrite(p, 1, got, l->ctx->dump_fp);
			fflush(l->ctx->dump_fp);
		}
	}
	if (l->state != LINK_CLOSING && flush_tls(l) != 0)
		tether_link_close(l, TETHER_ERR_SYS);
	l->pumping = 0;
}

static void finish_handshake(struct tether_link *l)
{
	char fp[TETHER_TLS_FP_LEN];

	if (l->has_pin) {
		if (tether_tls_peer_fingerprint(l->tls, fp) != 0 ||
		    strcmp(fp, l->pin) != 0) {
			set_reason(l,
				   "relay certificate fingerprint %s does "
				   "not match the pinned %s",
				   fp, l->pin);
			tether_link_close(l, TETHER_ERR_FINGERPRINT);
			return;
		}
	}
	uv_timer_stop(&l->timer);
	l->state = LINK_OPEN;
	if (l->cbs.on_open != NULL)
		l->cbs.on_open(l);
}

static void advance_handshake(struct tether_link *l)
{
	int r = tether_tls_handshake(l->tls);

	if (flush_tls(l) != 0) {
		tether_link_close(l, TETHER_ERR_SYS);
		return;
	}
	if (r == TETHER_ERR_AGAIN)
		return;
	if (r != 0) {
		set_reason(l, "TLS handshake failed: %s",
			   tether_tls_error(l->tls));
		tether_link_close(l, TETHER_ERR_TLS);
		return;
	}
	finish_handshake(l);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct tether_link *l = s->data;

	if (l->state == LINK_CLOSING || nread == 0)
		return;
	if (nread < 0) {
		if (nread == UV_EOF)
			set_reason(l, "connection closed by peer");
		else
			set_reason(l, "read failed: %s",
				   uv_strerror((int)nread));
		tether_link_close(l, TETHER_ERR_CLOSED);
		return;
	}
	/* read_buf is ours until the next read: TLS reads it in place. */
	if (tether_tls_feed_borrow(l->tls, buf->base, (size_t)nread) != 0) {
		tether_link_close(l, TETHER_ERR_INTERNAL);
		return;
	}
	if (l->state == LINK_HANDSHAKE)
		advance_handshake(l);
	if (l->state == LINK_OPEN)
		pump(l);
	if (tether_tls_feed_release(l->tls) != 0)
		tether_link_close(l, TETHER_ERR_NOMEM);
}

static void on_handshake_timeout(uv_timer_t *t)
{
	struct tether_link *l = t->data;

	set_reason(l, "TLS handshake timed out");
	tether_link_close(l, TETHER_ERR_TLS);
}

static void start_tls(struct tether_link *l)
{
	l->connected = 1;
	l->state = LINK_HANDSHAKE;
	uv_tcp_nodelay(&l->tcp, 1);
	uv_timer_start(&l->timer, on_handshake_timeout, LINK_HANDSHAKE_MS, 0);
	uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read);
	advance_handshake(l);
}

static void record_peer(struct tether_link *l)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char ip[48] = "?";
	int port = 0;

	if (uv_tcp_getpeername(&l->tcp, (struct sockaddr *)&ss, &len) != 0)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		uv_ip4_name(in, ip, sizeof(ip));
		port = ntohs(in->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		uv_ip6_name(in6, ip, sizeof(ip));
		port = ntohs(in6->sin6_port);
	}
	snprintf(l->peer, sizeof(l->peer), "%s:%d", ip, port);
}

struct tether_link *tether_link_accept(uv_stream_t *server,
				       struct tether_link_ctx *ctx,
				       const struct tether_link_cbs *cbs,
				       void *data)
{
	struct tether_link *l;

	l = link_new(server->loop, ctx, true, cbs, data);
	if (l == NULL)
		return NULL;
	if (uv_accept(server, (uv_stream_t *)&l->tcp) != 0) {
		/* The caller never sees this link: no callback may reach it. */
		l->cbs.on_close = NULL;
		l->data = NULL;
		tether_link_close(l, TETHER_ERR_SYS);
		return NULL;
	}
	record_peer(l);
	start_tls(l);
	return l;
}

static void on_connect(uv_connect_t *req, int status)
{
	struct tether_link *l = req->handle->data;

	if (status == UV_ECANCELED || l->state == LINK_CLOSING)
		return;
	if (status < 0) {
		set_reason(l, "cannot connect to %s: %s", l->peer,
			   uv_strerror(status));
		tether_link_close(l, TETHER_ERR_SYS);
		return;
	}
	start_tls(l);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
	struct tether_link *l = req->data;
	int r;

	l->gai_pending = 0;
	if (l->state == LINK_CLOSING) {
		uv_freeaddrinfo(ai);
		close_handles(l);
		return;
	}
	if (status < 0) {
		set_reason(l, "cannot resolve %s: %s", l->peer,
			   uv_strerror(status));
		tether_link_close(l, TETHER_ERR_SYS);
		return;
	}
	r = uv_tcp_connect(&l->connect_req, &l->tcp, ai->ai_addr, on_connect);
	uv_freeaddrinfo(ai);
	if (r < 0) {
		set_reason(l, "cannot connect to %s: %s", l->peer,
			   uv_strerror(r));
		tether_link_close(l, TETHER_ERR_SYS);
	}
}

struct tether_link *
tether_link_connect(uv_loop_t *loop, struct tether_link_ctx *ctx,
		    const char *host, int port, const char *pin,
		    const struct tether_link_cbs *cbs, void *data)
{
	struct addrinfo hints;
	struct tether_link *l;
	char portstr[16];

	l = link_new(loop, ctx, false, cbs, data);
	if (l == NULL)
		return NULL;
	if (pin != NULL) {
		snprintf(l->pin, sizeof(l->pin), "%s", pin);
		l->has_pin = 1;
	}
	snprintf(l->peer, sizeof(l->peer), "%s:%d", host, port);
	snprintf(portstr, sizeof(portstr), "%d", port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	l->gai.data = l;
	l->gai_pending = 1;
	if (uv_getaddrinfo(loop, &l->gai, on_resolved, host, portstr, &hints) !=
	    0) {
		l->gai_pending = 0;
		set_reason(l, "cannot resolve %s", host);
		tether_link_close(l, TETHER_ERR_SYS);
	}
	return l;
}
