/*
 * End-to-end: a hostile or broken client speaking raw TLS (or not even
 * that) to the relay.  Each bad frame must get an ERROR frame and/or a
 * closed connection (docs/protocol.md, "Frames"), and the relay must go on
 * serving a normal console afterwards.  The client is plain OpenSSL with
 * blocking sockets and receive timeouts, so no case can hang the test.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <tether/crypto.h>
#include <tether/frame.h>
#include <tether/proto.h>
#include <tether/seal.h>
#include <tether/sign.h>
#include <tether/spake2.h>

#include "harness.h"

TestSuite(malformed, .init = h_setup, .fini = h_teardown);

/* How long the relay may take to reject; its hello timeout is 10 s. */
#define REJECT_MS 5000
#define HELLO_TIMEOUT_MS 12000

struct raw {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	/* Plaintext received, for parsing frames. */
	uint8_t in[1 << 16];
	size_t in_len;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int tcp_connect(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct timeval rcv = {0, 100000}, snd = {5, 0};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0, "socket: %s", strerror(errno));
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0,
		  "connect to the relay: %s", strerror(errno));
	/* Short receive slices so reads can watch a deadline. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof(rcv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd));
	return fd;
}

/*
 * TLS to the relay with the given version range and ALPN list (wire
 * format; NULL for none).  No verification: these tests are about what
 * the relay does with bytes, not about pinning.  True if the handshake
 * completed.
 */
static bool raw_connect(struct raw *c, int port, int max_version,
			const unsigned char *alpn, unsigned alpn_len)
{
	int64_t deadline = now_ms() + REJECT_MS;
	int r;

	memset(c, 0, sizeof(*c));
	c->fd = tcp_connect(port);
	c->ctx = SSL_CTX_new(TLS_client_method());
	cr_assert(c->ctx, "SSL_CTX_new");
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(c->ctx, max_version);
	if (alpn)
		cr_assert(SSL_CTX_set_alpn_protos(c->ctx, alpn, alpn_len) == 0,
			  "ALPN");
	c->ssl = SSL_new(c->ctx);
	cr_assert(c->ssl, "SSL_new");
	SSL_set_fd(c->ssl, c->fd);
	for (;;) {
		r = SSL_connect(c->ssl);
		if (r == 1)
			return true;
		if (SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ ||
		    now_ms() >= deadline)
			break;
	}
	ERR_clear_error();
	return false;
}

static bool raw_tether(struct raw *c, int port)
{
	return raw_connect(c, port, TLS1_3_VERSION,
			   (const unsigned char *)"\x08tether/1", 9);
}

static void raw_free(struct raw *c)
{
	SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* Writes all of p; false once the relay has gone (expected at times). */
static bool raw_send(struct raw *c, const void *p, size_t n)
{
	if (n == 0)
		return true;
	ERR_clear_error();
	return SSL_write(c->ssl, p, (int)n) == (int)n;
}

/* One frame in one write (one TLS record for small frames). */
static bool raw_frame(struct raw *c, uint8_t type, uint8_t flags, uint32_t chan,
		      const void *payload, size_t len)
{
	uint8_t buf[TETHER_FRAME_HEADER_LEN + 2048];

	tether_frame_header_pack(buf, type, flags, chan, (uint32_t)len);
	if (len > sizeof(buf) - TETHER_FRAME_HEADER_LEN)
		return raw_send(c, buf, TETHER_FRAME_HEADER_LEN) &&
		       raw_send(c, payload, len);
	memcpy(buf + TETHER_FRAME_HEADER_LEN, payload, len);
	return raw_send(c, buf, TETHER_FRAME_HEADER_LEN + len);
}

static bool raw_ctrl(struct raw *c, const char *json)
{
	return raw_frame(c, TETHER_FRAME_CTRL, 0, 0, json, strlen(json));
}

/*
 * Reads until the relay closes or the deadline; true if it closed.
 * Whatever arrived is kept in c->in.
 */
static bool raw_read_until_close(struct raw *c, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	uint8_t sink[4096];

	for (;;) {
		size_t room = sizeof(c->in) - c->in_len;
		uint8_t *dst = room ? c->in + c->in_len : sink;
		int n, e;

		ERR_clear_error();
		n = SSL_read(c->ssl, dst, room ? (int)room : (int)sizeof(sink));
		if (n > 0) {
			if (room)
				c->in_len += (size_t)n;
			continue;
		}
		e = SSL_get_error(c->ssl, n);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return true;
		if (now_ms() >= deadline)
			return false;
	}
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* Takes the first whole frame out of c->in, if there is one. */
static bool take_frame(struct raw *c, uint8_t *type, char *payload, size_t len)
{
	size_t n, whole, k;

	if (c->in_len < TETHER_FRAME_HEADER_LEN)
		return false;
	n = be32(c->in);
	whole = TETHER_FRAME_HEADER_LEN + n;
	if (c->in_len < whole)
		return false;
	k = n < len - 1 ? n : len - 1;
	*type = c->in[4];
	memcpy(payload, c->in + TETHER_FRAME_HEADER_LEN, k);
	payload[k] = '\0';
	memmove(c->in, c->in + whole, c->in_len - whole);
	c->in_len -= whole;
	return true;
}

/* Reads one whole frame (waiting up to timeout); false if none came. */
static bool raw_read_frame(struct raw *c, int timeout_ms, uint8_t *type,
			   char *payload, size_t len)
{
	int64_t deadline = now_ms() + timeout_ms;
	int r;

	while (!take_frame(c, type, payload, len)) {
		if (now_ms() >= deadline || c->in_len == sizeof(c->in))
			return false;
		ERR_clear_error();
		r = SSL_read(c->ssl, c->in + c->in_len,
			     (int)(sizeof(c->in) - c->in_len));
		if (r > 0)
			c->in_len += (size_t)r;
		else if (SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ)
			return false;
	}
	return true;
}

/* Any ERROR frame among the bytes received; its text into why. */
static bool got_error_frame(const struct raw *c, char *why, size_t len)
{
	size_t off = 0, n, avail;

	why[0] = '\0';
	while (c->in_len - off >= TETHER_FRAME_HEADER_LEN) {
		const uint8_t *h = c->in + off;

		n = be32(h);
		avail = c->in_len - off - TETHER_FRAME_HEADER_LEN;
		if (h[4] == TETHER_FRAME_ERROR) {
			n = n < avail ? n : avail;
			n = n < len - 1 ? n : len - 1;
			memcpy(why, h + TETHER_FRAME_HEADER_LEN, n);
			why[n] = '\0';
			return true;
		}
		if (n > avail)
			break;
		off += TETHER_FRAME_HEADER_LEN + n;
	}
	return false;
}

/* The welcome to a raw hello: its challenge into challenge. */
static void raw_challenge(struct raw *c,
			  uint8_t challenge[TETHER_AGENT_CHALLENGE_LEN])
{
	char answer[1024];
	uint8_t type = 0;
	const char *ch;
	json_t *j;

	cr_assert(raw_read_frame(c, REJECT_MS, &type, answer, sizeof(answer)),
		  "no answer to hello");
	cr_assert(type == TETHER_FRAME_CTRL && strstr(answer, "welcome"),
		  "hello answered with type %u: %s", type, answer);
	j = json_loads(answer, 0, NULL);
	ch = json_string_value(json_object_get(j, "challenge"));
	cr_assert(ch != NULL, "welcome without a challenge: %s", answer);
	cr_assert_eq(
	    tether_hex_decode(ch, challenge, TETHER_AGENT_CHALLENGE_LEN), 0);
	json_decref(j);
}

/*
 * Signs msg (len bytes) with the key in the file at path and sends it in
 * auth (with "agent":agent unless NULL); asserts auth_ok comes back.
 */
static void raw_auth(struct raw *c, const char *path, const uint8_t *msg,
		     size_t len, const char *agent)
{
	char hex[2 * TETHER_SIGN_SIG_LEN + 1], text[512], answer[1024];
	uint8_t sig[TETHER_SIGN_SIG_LEN], type = 0;
	struct tether_sign_key *k = NULL;

	cr_assert_eq(tether_sign_key_load(path, &k, NULL), 0, "%s", path);
	cr_assert_eq(tether_sign(k, msg, len, sig), 0);
	tether_sign_key_free(k);
	cr_assert_eq(tether_hex_encode(sig, sizeof(sig), hex, sizeof(hex)), 0);
	if (agent != NULL)
		snprintf(text, sizeof(text),
			 "{\"t\":\"auth\",\"agent\":\"%s\",\"sig\":\"%s\"}",
			 agent, hex);
	else
		snprintf(text, sizeof(text), "{\"t\":\"auth\",\"sig\":\"%s\"}",
			 hex);
	cr_assert(raw_ctrl(c, text), "sending auth failed");
	cr_assert(raw_read_frame(c, REJECT_MS, &type, answer, sizeof(answer)),
		  "no answer to auth");
	cr_assert(type == TETHER_FRAME_CTRL && strstr(answer, "auth_ok"),
		  "auth answered with type %u: %s", type, answer);
}

/*
 * hello as admin, whose key the console's login stored in the test's
 * config, and the welcome's challenge signed with it as tether/sign.h
 * says; asserts the relay lets us in.
 */
static void raw_hello(struct raw *c, const struct h_relay *r)
{
	uint8_t challenge[TETHER_AGENT_CHALLENGE_LEN], signed_msg[256];
	uint8_t pub[TETHER_SIGN_PUB_LEN];
	char key[H_PATH_MAX + 32], cfg[H_PATH_MAX];
	struct tether_sign_key *k = NULL;
	size_t len = 0;

	(void)r;
	cr_assert(raw_ctrl(c, "{\"t\":\"hello\",\"role\":\"console\","
			      "\"version\":2,\"technician\":\"admin\"}"),
		  "sending hello failed");
	raw_challenge(c, challenge);
	h_path(cfg, sizeof(cfg), "config");
	snprintf(key, sizeof(key), "%s/tether/technician.key", cfg);
	cr_assert_eq(tether_sign_key_load(key, &k, pub), 0);
	tether_sign_key_free(k);
	cr_assert_eq(tether_sign_console_auth_message(
			 challenge, pub, signed_msg, sizeof(signed_msg), &len),
		     0);
	raw_auth(c, key, signed_msg, len, NULL);
}

/* The relay is alive and a normal console still gets answers. */
static void expect_serving(struct h_relay *r)
{
	struct h_res res;

	cr_assert(h_relay_alive(r), "relay died (status %d); log %s",
		  r->proc.status, r->log);
	h_console_ok(&res, NULL, "ticket", "list", NULL);
	h_res_free(&res);
}

static void up(struct h_relay *r)
{
	h_relay_up(r, NULL);
	h_login(r);
}

enum want { WANT_CLOSE, WANT_ERROR_CLOSE };

/* Does a line of the relay's log end "info: closing ADDR: reason"? */
static bool log_says_closing(const char *log, const char *reason)
{
	size_t n = strlen(reason);
	const char *l = log, *end;

	for (; *l; l = *end ? end + 1 : end) {
		const char *c = strstr(l, "info: closing ");

		end = strchr(l, '\n');
		if (!end)
			end = l + strlen(l);
		if (c && c < end && (size_t)(end - c) > n + 2 &&
		    memcmp(end - n - 2, ": ", 2) == 0 &&
		    memcmp(end - n, reason, n) == 0)
			return true;
	}
	return false;
}

/*
 * One bad input on a fresh connection (after hello if auth): the relay
 * must close it within timeout_ms for reason, and keep serving everyone
 * else.  With WANT_ERROR_CLOSE the reason is the text of the ERROR frame
 * it sends first; with WANT_CLOSE (no frame) it is the one in its log.
 */
static void check_rejects(bool auth, const void *bytes, size_t len,
			  enum want want, const char *reason, int timeout_ms,
			  const char *what)
{
	struct h_relay r;
	struct raw c;
	char why[256];
	char *log;
	bool closed;

	up(&r);
	cr_assert(raw_tether(&c, r.port), "%s: TLS handshake failed", what);
	if (auth)
		raw_hello(&c, &r);
	/* The relay may close while we are still writing: fine. */
	raw_send(&c, bytes, len);
	closed = raw_read_until_close(&c, timeout_ms);
	cr_assert(closed, "%s: relay kept the connection open %d ms", what,
		  timeout_ms);
	if (want == WANT_ERROR_CLOSE) {
		cr_assert(got_error_frame(&c, why, sizeof(why)),
			  "%s: connection closed without an ERROR frame", what);
		cr_assert_str_eq(why, reason,
				 "%s: ERROR frame \"%s\", "
				 "expected \"%s\"",
				 what, why, reason);
	}
	raw_free(&c);
	expect_serving(&r);
	h_relay_stop(&r);
	if (want == WANT_CLOSE) {
		log = h_read_file(r.log, NULL);
		cr_assert(log && log_says_closing(log, reason),
			  "%s: the relay's log does not say \"closing ...: "
			  "%s\":\n%s",
			  what, reason, log ? log : "(no log)");
		free(log);
	}
}

/* A frame built from its fields, for check_rejects(). */
static void check_frame(bool auth, uint8_t type, uint8_t flags, uint32_t chan,
			uint32_t declared, const char *payload,
			const char *reason, const char *what)
{
	uint8_t buf[TETHER_FRAME_HEADER_LEN + 512];
	size_t n = payload ? strlen(payload) : 0;

	cr_assert(n <= 512);
	tether_frame_header_pack(buf, type, flags, chan, declared);
	if (n)
		memcpy(buf + TETHER_FRAME_HEADER_LEN, payload, n);
	check_rejects(auth, buf, TETHER_FRAME_HEADER_LEN + n, WANT_ERROR_CLOSE,
		      reason, REJECT_MS, what);
}

/* Only the header: the relay must not wait for (or allocate) 100 MiB. */
Test(malformed, huge_frame_preauth, .timeout = 60)
{
	check_frame(false, TETHER_FRAME_CTRL, 0, 0, 100u << 20, NULL,
		    "frame too large", "100 MiB frame before hello");
}

Test(malformed, huge_frame_after_hello, .timeout = 60)
{
	check_frame(true, TETHER_FRAME_CTRL, 0, 0, 100u << 20, NULL,
		    "frame too large", "100 MiB frame after hello");
}

/* Over the 16 KiB pre-authentication limit, under the 256 KiB one. */
Test(malformed, preauth_limit, .timeout = 60)
{
	check_frame(false, TETHER_FRAME_CTRL, 0, 0, 20000, NULL,
		    "frame too large", "20000-byte frame before hello");
}

Test(malformed, unknown_type, .timeout = 60)
{
	check_frame(false, 9, 0, 0, 2, "{}", "malformed frame",
		    "frame type 9 before hello");
}

Test(malformed, unknown_type_after_hello, .timeout = 60)
{
	check_frame(true, 9, 0, 0, 2, "{}", "malformed frame",
		    "frame type 9 after hello");
}

Test(malformed, ctrl_not_json, .timeout = 60)
{
	static const char p[] = "this is not JSON {";

	check_frame(false, TETHER_FRAME_CTRL, 0, 0, sizeof(p) - 1, p,
		    "malformed control message: not JSON",
		    "CTRL frame that is not JSON");
}

Test(malformed, ctrl_not_json_after_hello, .timeout = 60)
{
	static const char p[] = "\"t\":\"ping\"";
	uint8_t buf[TETHER_FRAME_HEADER_LEN + sizeof(p)];

	tether_frame_header_pack(buf, TETHER_FRAME_CTRL, 0, 0, sizeof(p) - 1);
	memcpy(buf + TETHER_FRAME_HEADER_LEN, p, sizeof(p) - 1);
	check_rejects(true, buf, sizeof(buf) - 1, WANT_CLOSE,
		      "malformed control message: not JSON", REJECT_MS,
		      "CTRL frame that is not JSON after hello");
}

Test(malformed, data_before_hello, .timeout = 60)
{
	check_frame(false, TETHER_FRAME_DATA, 0, 1, 32,
		    "0123456789abcdef0123456789abcdef", "data before hello",
		    "DATA frame before hello");
}

Test(malformed, nonzero_flags, .timeout = 60)
{
	static const char hello[] =
	    "{\"t\":\"hello\",\"role\":\"agent\",\"version\":2}";

	check_frame(false, TETHER_FRAME_CTRL, 0x80, 0, sizeof(hello) - 1, hello,
		    "malformed frame", "hello with flags 0x80");
}

Test(malformed, nonzero_flags_after_hello, .timeout = 60)
{
	static const char ping[] = "{\"t\":\"ping\"}";

	check_frame(true, TETHER_FRAME_CTRL, 1, 0, sizeof(ping) - 1, ping,
		    "malformed frame", "ping with flags 1 after hello");
}

/* A channel that does not fit the type. */
Test(malformed, data_on_channel_0, .timeout = 60)
{
	check_frame(true, TETHER_FRAME_DATA, 0, 0, 32,
		    "0123456789abcdef0123456789abcdef", "malformed frame",
		    "DATA frame on channel 0");
}

Test(malformed, ctrl_on_channel_5, .timeout = 60)
{
	static const char ping[] = "{\"t\":\"ping\"}";

	check_frame(true, TETHER_FRAME_CTRL, 0, 5, sizeof(ping) - 1, ping,
		    "malformed frame", "CTRL frame on channel 5");
}

/* Channels belong to whoever opened them. */
Test(malformed, data_on_foreign_channel, .timeout = 60)
{
	static const char p[] = "0123456789abcdef0123456789abcdef";
	uint8_t buf[TETHER_FRAME_HEADER_LEN + sizeof(p)];

	tether_frame_header_pack(buf, TETHER_FRAME_DATA, 0, 7, sizeof(p) - 1);
	memcpy(buf + TETHER_FRAME_HEADER_LEN, p, sizeof(p) - 1);
	check_rejects(true, buf, sizeof(buf) - 1, WANT_CLOSE,
		      "data on unknown channel", REJECT_MS,
		      "DATA frame on a channel nobody opened");
}

Test(malformed, garbage_after_tls, .timeout = 60)
{
	uint8_t junk[4096];

	cr_assert(RAND_bytes(junk, sizeof(junk)) == 1);
	/*
	 * Read as a frame header, they declare a length; its top bit set,
	 * that is over every limit whatever the rest says, so the refusal
	 * (and its reason) comes from the header alone.
	 */
	junk[0] |= 0x80;
	check_rejects(false, junk, sizeof(junk), WANT_ERROR_CLOSE,
		      "frame too large", HELLO_TIMEOUT_MS,
		      "4 KiB of random bytes after TLS");
}

/* Says nothing at all after TLS: dropped by the hello timeout. */
Test(malformed, silent_client, .timeout = 60)
{
	check_rejects(false, NULL, 0, WANT_CLOSE, "no hello in time",
		      HELLO_TIMEOUT_MS, "silent client");
}

/*
 * An agent that says hello and then only pings must join (or resume) in
 * time: otherwise one address could hold connections open forever.
 */
Test(malformed, agent_that_never_joins, .timeout = 60)
{
	int64_t deadline;
	bool closed = false;
	struct h_relay r;
	struct raw c;
	char why[256];

	up(&r);
	cr_assert(raw_tether(&c, r.port), "TLS handshake failed");
	cr_assert(raw_ctrl(&c, "{\"t\":\"hello\",\"role\":\"agent\","
			       "\"version\":2}"));
	deadline = now_ms() + 25000;
	while (!closed && now_ms() < deadline) {
		if (!raw_ctrl(&c, "{\"t\":\"ping\"}"))
			break;
		closed = raw_read_until_close(&c, 1000);
	}
	cr_assert(closed, "an agent that never joins is still connected");
	cr_assert(got_error_frame(&c, why, sizeof(why)) &&
		      strstr(why, "join") != NULL,
		  "no ERROR frame naming the join timeout");
	raw_free(&c);
	expect_serving(&r);
	h_relay_stop(&r);
}

static void check_handshake_fails(int max_version, const unsigned char *alpn,
				  unsigned alpn_len, const char *what)
{
	struct h_relay r;
	struct raw c;

	up(&r);
	cr_assert(!raw_connect(&c, r.port, max_version, alpn, alpn_len),
		  "%s: the TLS handshake succeeded", what);
	raw_free(&c);
	expect_serving(&r);
	h_relay_stop(&r);
}

Test(malformed, tls12_only, .timeout = 60)
{
	check_handshake_fails(TLS1_2_VERSION,
			      (const unsigned char *)"\x08tether/1", 9,
			      "TLS 1.2-only client");
}

Test(malformed, alpn_h2, .timeout = 60)
{
	check_handshake_fails(TLS1_3_VERSION, (const unsigned char *)"\x02h2",
			      3, "client offering ALPN h2");
}

Test(malformed, no_alpn, .timeout = 60)
{
	check_handshake_fails(TLS1_3_VERSION, NULL, 0,
			      "client offering no ALPN");
}

Test(malformed, plain_tcp_garbage, .timeout = 60)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: relay\r\n\r\n";
	int64_t deadline;
	struct h_relay r;
	char buf[4096];
	bool closed = false;
	int fd;

	up(&r);
	fd = tcp_connect(r.port);
	cr_assert(write(fd, req, sizeof(req) - 1) == (ssize_t)sizeof(req) - 1,
		  "write: %s", strerror(errno));
	deadline = now_ms() + HELLO_TIMEOUT_MS;
	while (!closed && now_ms() < deadline) {
		ssize_t n = read(fd, buf, sizeof(buf));

		closed = n == 0 || (n < 0 && errno != EAGAIN &&
				    errno != EWOULDBLOCK && errno != EINTR);
	}
	close(fd);
	cr_assert(closed, "relay kept a plain-TCP connection open");
	expect_serving(&r);
	h_relay_stop(&r);
}

/* The relay's resident memory in KiB, from /proc. */
static long rss_kib(pid_t pid)
{
	char path[64], *s, *p;
	long v = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	s = h_read_file(path, NULL);
	p = s ? strstr(s, "VmRSS:") : NULL;
	if (p)
		v = h_number(p + 6, NULL);
	free(s);
	return v;
}

/* Largest resident size of the process over ms milliseconds, in KiB. */
static long peak_rss_kib(pid_t pid, int ms)
{
	int64_t deadline = now_ms() + ms;
	long peak = rss_kib(pid), v;

	while (now_ms() < deadline) {
		usleep(100 * 1000);
		v = rss_kib(pid);
		if (v > peak)
			peak = v;
	}
	return peak;
}

/* n tickets with 199-byte titles, each answered "ok" (ids 1..n). */
static void long_tickets(struct raw *c, int n)
{
	char title[200], msg[512], answer[1024];
	uint8_t type;
	int i;

	memset(title, 'x', sizeof(title) - 1);
	title[sizeof(title) - 1] = '\0';
	for (i = 0; i < n; i++) {
		snprintf(msg, sizeof(msg),
			 "{\"t\":\"ticket_new\",\"id\":%d,\"title\":\"%s\"}",
			 i + 1, title);
		cr_assert(raw_ctrl(c, msg), "ticket_new %d", i);
		cr_assert(
		    raw_read_frame(c, REJECT_MS, &type, answer, sizeof(answer)),
		    "no answer to ticket_new");
		cr_assert(strstr(answer, "\"ok\""), "ticket_new: %s", answer);
	}
}
/*
 * A console that asks for a lot and never reads its answers: the relay
 * must bound what it queues for it ("about 4 MiB of output per
 * connection ... whatever peers do") and keep serving others.
 */
Test(malformed, client_never_reads, .timeout = 120)
{
	char msg[512];
	struct h_relay r;
	struct raw c;
	long base, peak;
	int i;

	up(&r);
	cr_assert(raw_tether(&c, r.port), "TLS handshake failed");
	raw_hello(&c, &r);
	/* 60 tickets with long titles make every list answer ~25 KiB. */
	long_tickets(&c, 60);
	base = rss_kib(r.proc.pid);
	/*
	 * 10000 list requests ask for some 250 MiB of answers: far more
	 * than socket buffers and the relay's bound.  From here on we never
	 * read.  A send that stalls is the relay pushing back, which is the
	 * point.
	 */
	for (i = 0; i < 10000; i++) {
		snprintf(msg, sizeof(msg), "{\"t\":\"ticket_list\",\"id\":%d}",
			 i + 100);
		if (!raw_ctrl(&c, msg))
			break;
	}
	expect_serving(&r);
	peak = peak_rss_kib(r.proc.pid, 3000);
	cr_assert(base > 0 && peak > 0 && peak - base < 64 * 1024,
		  "relay resident memory grew from %ld to %ld KiB for one "
		  "client that does not read",
		  base, peak);
	raw_free(&c);
	expect_serving(&r);
	h_relay_stop(&r);
}

/* One request on c, whose answer must contain every one of parts. */
static void expect_answer(struct raw *c, const char *req,
			  const char *const *parts)
{
	char answer[2048];
	uint8_t type = 0;

	cr_assert(raw_ctrl(c, req), "sending %s", req);
	cr_assert(raw_read_frame(c, REJECT_MS, &type, answer, sizeof(answer)),
		  "no answer to %s", req);
	cr_assert(type == TETHER_FRAME_CTRL, "%s answered with type %u: %s",
		  req, type, answer);
	for (; *parts != NULL; parts++)
		cr_assert(strstr(answer, *parts), "%s answered %s, not %s", req,
			  answer, *parts);
}

/*
 * A console's request the relay cannot read is still answered (err
 * bad_request, with its id) and the connection goes on: an unknown type,
 * members that break the schema, tickets that are not T-N.
 */
Test(malformed, console_requests_answered, .timeout = 60)
{
	static const char *const unknown[] = {
	    "\"err\"", "\"id\":5", "bad_request", "unknown request", NULL};
	static const char *const empty_title[] = {"\"id\":6", "bad_request",
						  "malformed ticket_new", NULL};
	static const char *const bad_ticket[] = {"\"id\":7", "bad_request",
						 "not a ticket", NULL};
	static const char *const pong[] = {"pong", NULL};
	static const char *const tickets[] = {"T-007", "T-+5",
					      "T-99999999999999999999", "T- 5"};
	struct h_relay r;
	struct raw c;
	char req[256];
	size_t i;

	up(&r);
	cr_assert(raw_tether(&c, r.port), "TLS handshake failed");
	raw_hello(&c, &r);
	expect_answer(&c, "{\"t\":\"frobnicate\",\"id\":5}", unknown);
	expect_answer(&c, "{\"t\":\"ticket_new\",\"id\":6,\"title\":\"\"}",
		      empty_title);
	for (i = 0; i < sizeof(tickets) / sizeof(tickets[0]); i++) {
		snprintf(req, sizeof(req),
			 "{\"t\":\"ticket_show\",\"id\":7,\"ticket\":\"%s\"}",
			 tickets[i]);
		expect_answer(&c, req, bad_ticket);
	}
	expect_answer(&c, "{\"t\":\"ping\"}", pong);
	raw_free(&c);
	expect_serving(&r);
	h_relay_stop(&r);
}

/* ---- Sessions of raw peers ------------------------------------------------
 */

/*
 * The relay never looks inside SPAKE2 values or nonces, so raw peers can
 * pair with made-up ones: these tests are about what the relay does with
 * a session's messages, not about keys.
 */
#define RAW_FRAME_MAX 8192

/* Reads frames until a CTRL frame containing part; its payload into out. */
static void raw_expect(struct raw *c, const char *part, char *out, size_t len,
		       const char *what)
{
	int64_t deadline = now_ms() + REJECT_MS;
	uint8_t type = 0;

	for (;;) {
		int left = (int)(deadline - now_ms());

		cr_assert(left > 0 && raw_read_frame(c, left, &type, out, len),
			  "%s: no frame with %s", what, part);
		if (type == TETHER_FRAME_CTRL && strstr(out, part))
			return;
		cr_assert(type == TETHER_FRAME_CTRL, "%s: frame of type %u: %s",
			  what, type, out);
	}
}

/* The integer member name of a JSON object in text. */
static long long json_int_of(const char *text, const char *name)
{
	json_t *j = json_loads(text, 0, NULL);
	json_t *v = json_object_get(j, name);
	long long n;

	cr_assert(json_is_integer(v), "no integer \"%s\" in %s", name, text);
	n = json_integer_value(v);
	json_decref(j);
	return n;
}

/* n bytes of hex: 2n copies of digit. */
static const char *hex_of(size_t n, char digit, char *buf, size_t len)
{
	cr_assert(2 * n < len);
	memset(buf, digit, 2 * n);
	buf[2 * n] = '\0';
	return buf;
}

/* A console, an agent, and what pairs them on the relay. */
struct raw_pair {
	struct raw con;
	struct raw ag;
	char ticket[H_ID_MAX];
	char nameplate[32];
	long long session;
	long long channel;
	int next_id;
};

/* Sends the console's request req ("{...}" without an id), expects ok. */
static void pair_ask(struct raw_pair *p, const char *req, char *answer,
		     size_t len)
{
	char msg[1024], id[32];

	cr_assert(req[0] == '{');
	snprintf(msg, sizeof(msg), "{\"id\":%d,%s", ++p->next_id, req + 1);
	cr_assert(raw_ctrl(&p->con, msg), "sending %s", msg);
	snprintf(id, sizeof(id), "\"id\":%d", p->next_id);
	raw_expect(&p->con, id, answer, len, msg);
	cr_assert(strstr(answer, "\"ok\""), "%s answered %s", msg, answer);
}

/* A ticket (by the real console) and a raw console that invites to it. */
static void pair_invite(struct raw_pair *p, struct h_relay *r)
{
	char msg[512], hex[256], answer[RAW_FRAME_MAX];
	json_t *j;

	memset(p, 0, sizeof(*p));
	h_ticket_new("raw session", p->ticket, sizeof(p->ticket));
	cr_assert(raw_tether(&p->con, r->port), "console: TLS failed");
	raw_hello(&p->con, r);
	snprintf(msg, sizeof(msg),
		 "{\"t\":\"invite\",\"ticket\":\"%s\",\"info\":\"{}\","
		 "\"pake\":\"%s\"}",
		 p->ticket,
		 hex_of(TETHER_SPAKE2_ELEM_LEN, 'a', hex, sizeof(hex)));
	pair_ask(p, msg, answer, sizeof(answer));
	p->session = json_int_of(answer, "session");
	j = json_loads(answer, 0, NULL);
	snprintf(p->nameplate, sizeof(p->nameplate), "%s",
		 json_string_value(json_object_get(j, "nameplate")));
	json_decref(j);
	cr_assert(p->nameplate[0] != '\0', "invite answered %s", answer);
}

/* The agent says hello and claims the nameplate: join_ok. */
static void pair_join(struct raw_pair *p, struct h_relay *r)
{
	char msg[256], answer[RAW_FRAME_MAX];

	cr_assert(raw_tether(&p->ag, r->port), "agent: TLS failed");
	cr_assert(raw_ctrl(&p->ag, "{\"t\":\"hello\",\"role\":\"agent\","
				   "\"version\":2}"));
	raw_expect(&p->ag, "welcome", answer, sizeof(answer), "agent hello");
	snprintf(msg, sizeof(msg), "{\"t\":\"join\",\"nameplate\":\"%s\"}",
		 p->nameplate);
	cr_assert(raw_ctrl(&p->ag, msg));
	raw_expect(&p->ag, "join_ok", answer, sizeof(answer), "join");
}

/* The customer consented: the agent's half stored (session joined). */
static void pair_pake(struct raw_pair *p)
{
	char msg[512], b[256], cb[128], answer[RAW_FRAME_MAX];

	snprintf(msg, sizeof(msg),
		 "{\"t\":\"pake\",\"pake_b\":\"%s\",\"conf_b\":\"%s\"}",
		 hex_of(TETHER_SPAKE2_ELEM_LEN, 'b', b, sizeof(b)),
		 hex_of(TETHER_SPAKE2_CONF_LEN, 'c', cb, sizeof(cb)));
	cr_assert(raw_ctrl(&p->ag, msg));
	raw_expect(&p->ag, "pake_ok", answer, sizeof(answer), "pake");
}

/*
 * The console's confirmation with its sealed info (opaque to the relay:
 * any hex will do here) reaches the agent.
 */
static void pair_confirm_ask(struct raw_pair *p)
{
	char msg[512], hex[128], answer[RAW_FRAME_MAX];

	snprintf(msg, sizeof(msg),
		 "{\"t\":\"confirm\",\"id\":%d,\"session\":%lld,"
		 "\"conf\":\"%s\",\"info\":\"%s\"}",
		 ++p->next_id, p->session,
		 hex_of(TETHER_SPAKE2_CONF_LEN, 'd', hex, sizeof(hex)), hex);
	cr_assert(raw_ctrl(&p->con, msg));
	raw_expect(&p->ag, "\"confirm\"", answer, sizeof(answer),
		   "confirm at the agent");
}

/* Key confirmation both ways: the session is paired. */
static void pair_confirm(struct raw_pair *p)
{
	char msg[512], answer[RAW_FRAME_MAX];

	pair_confirm_ask(p);
	cr_assert(raw_ctrl(&p->ag, "{\"t\":\"confirmed\",\"ok\":true,"
				   "\"allowed\":[\"exec\",\"shell\",\"file\","
				   "\"forward\",\"diag\"]}"));
	snprintf(msg, sizeof(msg), "\"id\":%d", p->next_id);
	raw_expect(&p->con, msg, answer, sizeof(answer), "confirm");
	cr_assert(strstr(answer, "\"ok\""), "confirm answered %s", answer);
}

/* The console asks for an exec channel; the agent gets its open. */
static long long pair_ask_open(struct raw_pair *p)
{
	char msg[512], hex[128], answer[RAW_FRAME_MAX];

	snprintf(msg, sizeof(msg),
		 "{\"t\":\"open\",\"id\":%d,\"session\":%lld,\"kind\":\"exec\","
		 "\"nonce\":\"%s\"}",
		 ++p->next_id, p->session,
		 hex_of(TETHER_SEAL_NONCE_LEN, 'e', hex, sizeof(hex)));
	cr_assert(raw_ctrl(&p->con, msg));
	raw_expect(&p->ag, "\"open\"", answer, sizeof(answer),
		   "open at the agent");
	return json_int_of(answer, "channel");
}

/* The agent's opened for channel. */
static void pair_opened(struct raw_pair *p, long long channel)
{
	char msg[512], hex[128];

	snprintf(msg, sizeof(msg),
		 "{\"t\":\"opened\",\"channel\":%lld,\"nonce\":\"%s\"}",
		 channel, hex_of(TETHER_SEAL_NONCE_LEN, 'f', hex, sizeof(hex)));
	cr_assert(raw_ctrl(&p->ag, msg));
}

/* A channel open on both ends. */
static void pair_open(struct raw_pair *p)
{
	char id[32], answer[RAW_FRAME_MAX];

	p->channel = pair_ask_open(p);
	pair_opened(p, p->channel);
	snprintf(id, sizeof(id), "\"id\":%d", p->next_id);
	raw_expect(&p->con, id, answer, sizeof(answer), "open");
	cr_assert(strstr(answer, "\"ok\""), "open answered %s", answer);
}

/* All of the above: a paired session with one open channel. */
static void pair_up(struct raw_pair *p, struct h_relay *r)
{
	pair_invite(p, r);
	pair_join(p, r);
	pair_pake(p);
	pair_confirm(p);
	pair_open(p);
}

static void pair_free(struct raw_pair *p)
{
	raw_free(&p->con);
	raw_free(&p->ag);
}

/* A relay with --idle-timeout 5, and the console logged in to it. */
static void up_idle(struct h_relay *r)
{
	static const char *const args[] = {"--idle-timeout", "5", NULL};

	h_relay_init(r, "relay");
	h_relay_start_ex(r, NULL, args, NULL);
	h_login(r);
}

/* Polls the relay's log until a line says it closed a peer for reason. */
static bool wait_log_closing(const struct h_relay *r, const char *reason,
			     int timeout_ms, struct raw *keep_alive)
{
	int64_t deadline = now_ms() + timeout_ms;
	bool found = false;
	char *log;

	while (!found && now_ms() < deadline) {
		if (keep_alive != NULL)
			raw_ctrl(keep_alive, "{\"t\":\"ping\"}");
		usleep(250 * 1000);
		log = h_read_file(r->log, NULL);
		found = log != NULL && log_says_closing(log, reason);
		free(log);
	}
	return found;
}

/* Asks for answers and never reads them, until the relay stops reading. */
static void ask_without_reading(struct raw *c, int from_id)
{
	char msg[128];
	int i;

	for (i = 0; i < 10000; i++) {
		snprintf(msg, sizeof(msg), "{\"t\":\"ticket_list\",\"id\":%d}",
			 from_id + i);
		if (!raw_ctrl(c, msg))
			break;
	}
}

/*
 * A console that asks and never reads blocks itself: the relay stops
 * reading it until its answers drain, which they never do.  Its silence
 * is then the relay's doing, but its output not moving is its own: it
 * must go when nothing of it has moved for the idle timeout, not stay
 * forever holding its queue.
 */
Test(malformed, self_blocked_console_times_out, .timeout = 120)
{
	struct h_relay r;
	struct raw c;

	up_idle(&r);
	cr_assert(raw_tether(&c, r.port), "TLS handshake failed");
	raw_hello(&c, &r);
	long_tickets(&c, 60);
	ask_without_reading(&c, 100);
	cr_assert(wait_log_closing(&r, "write timeout", 30000, NULL),
		  "a console that never reads its answers is still "
		  "connected");
	cr_assert(raw_read_until_close(&c, REJECT_MS),
		  "the relay said it closed the console, which is open");
	raw_free(&c);
	expect_serving(&r);
	h_relay_stop(&r);
}

/*
 * An agent that never reads, and a console sending it data: the relay
 * stops reading the console while the agent's queue is full.  The
 * console's silence is the agent's doing and must not count against it;
 * the agent, though its pings come in, moves none of its output and
 * must go, which gives the console back its channel's close.
 */
Test(malformed, agent_that_never_reads, .timeout = 120)
{
	uint8_t frame[TETHER_FRAME_HEADER_LEN + 16384];
	char answer[RAW_FRAME_MAX], want[64];
	struct timeval snd = {1, 0};
	struct raw_pair p;
	struct h_relay r;
	bool stalled = false;
	int i;

	up_idle(&r);
	pair_up(&p, &r);
	tether_frame_header_pack(frame, TETHER_FRAME_DATA, 0,
				 (uint32_t)p.channel,
				 sizeof(frame) - TETHER_FRAME_HEADER_LEN);
	memset(frame + TETHER_FRAME_HEADER_LEN, 'z',
	       sizeof(frame) - TETHER_FRAME_HEADER_LEN);
	/*
	 * A stalled write gives up after 1 s, well inside the idle timeout,
	 * so that the agent's pings keep it from going for silence.  64 MiB
	 * at most: far past the agent's queue and socket buffers.
	 */
	setsockopt(p.con.fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd));
	for (i = 0; i < 4096 && !stalled; i++) {
		if (i % 16 == 0)
			raw_ctrl(&p.ag, "{\"t\":\"ping\"}");
		stalled = !raw_send(&p.con, frame, sizeof(frame));
	}
	cr_assert(stalled, "the relay took 64 MiB for an agent that does "
			   "not read");
	cr_assert(wait_log_closing(&r, "write timeout", 30000, &p.ag),
		  "an agent that never reads is still connected");
	/*
	 * The console was paused for longer than the idle timeout: it is
	 * still there, gets its channel's close, and is served again (the
	 * write that stalled goes first: OpenSSL wants it retried).
	 */
	for (i = 0; i < 10 && !raw_send(&p.con, frame, sizeof(frame)); i++)
		;
	cr_assert(i < 10, "the relay does not read the console again");
	snprintf(want, sizeof(want), "\"channel\":%lld", p.channel);
	raw_expect(&p.con, want, answer, sizeof(answer),
		   "close at the console");
	cr_assert(strstr(answer, "\"close\"") && strstr(answer, "agent"),
		  "the console got %s", answer);
	cr_assert(raw_ctrl(&p.con, "{\"t\":\"ping\"}"));
	raw_expect(&p.con, "pong", answer, sizeof(answer), "ping");
	pair_free(&p);
	expect_serving(&r);
	h_relay_stop(&r);
}

/* The state of the ticket's session with this nameplate, as shown. */
static char *session_state(const char *ticket, const char *nameplate)
{
	json_t *t = h_ticket_show(ticket), *s;
	char *state = NULL;
	size_t i;

	json_array_foreach (json_object_get(t, "sessions"), i, s) {
		if (strcmp(json_string_value(json_object_get(s, "nameplate")),
			   nameplate) == 0)
			state = strdup(
			    json_string_value(json_object_get(s, "state")));
	}
	json_decref(t);
	cr_assert(state != NULL, "no session %s on %s", nameplate, ticket);
	return state;
}

/*
 * An agent's decline after the customer said yes (its pake stored) or
 * after pairing is out of order: ERROR, and the session is as it was,
 * neither declined nor audited as such.
 */
static void decline_refused(struct raw_pair *p, const char *state)
{
	char why[256], *now;
	json_t *t;

	cr_assert(raw_ctrl(&p->ag, "{\"t\":\"decline\"}"));
	cr_assert(raw_read_until_close(&p->ag, REJECT_MS),
		  "a decline when %s was taken", state);
	cr_assert(got_error_frame(&p->ag, why, sizeof(why)),
		  "a decline when %s: closed without an ERROR frame", state);
	cr_assert_str_eq(why, "decline out of order", "decline when %s", state);
	now = session_state(p->ticket, p->nameplate);
	cr_assert_str_eq(now, state, "a decline when %s made the session %s",
			 state, now);
	free(now);
	t = h_ticket_show(p->ticket);
	cr_assert(!h_audit_has(t, "declined"),
		  "a refused decline when %s is in the audit: %s", state,
		  h_audit_names(t));
	json_decref(t);
	pair_free(p);
}

/*
 * decline is the customer's no to the consent screen, which the agent
 * shows once the console's confirmation came: the relay takes it only
 * while that confirmation waits for the agent's answer (docs/protocol.md,
 * "Agent messages").
 */
Test(malformed, decline_only_at_consent, .timeout = 90)
{
	char answer[RAW_FRAME_MAX], id[32], *state;
	struct raw_pair p;
	struct h_relay r;
	json_t *t;

	up(&r);
	pair_invite(&p, &r);
	pair_join(&p, &r);
	pair_pake(&p);
	decline_refused(&p, "joined");

	pair_invite(&p, &r);
	pair_join(&p, &r);
	pair_pake(&p);
	pair_confirm(&p);
	decline_refused(&p, "paired");

	/* In its place it ends the session as declined. */
	pair_invite(&p, &r);
	pair_join(&p, &r);
	pair_pake(&p);
	pair_confirm_ask(&p);
	cr_assert(raw_ctrl(&p.ag, "{\"t\":\"decline\"}"));
	raw_expect(&p.ag, "\"ended\"", answer, sizeof(answer), "decline");
	/* The console waiting on its confirmation hears why. */
	snprintf(id, sizeof(id), "\"id\":%d", p.next_id);
	raw_expect(&p.con, id, answer, sizeof(answer), "confirm");
	cr_assert(strstr(answer, "\"declined\"") &&
		      strstr(answer, "the customer declined the invite"),
		  "confirm answered %s", answer);
	state = session_state(p.ticket, p.nameplate);
	cr_assert_str_eq(state, "declined");
	free(state);
	t = h_ticket_show(p.ticket);
	cr_assert(h_audit_has(t, "declined"), "no declined in the audit: %s",
		  h_audit_names(t));
	json_decref(t);
	pair_free(&p);
	expect_serving(&r);
	h_relay_stop(&r);
}

/* How many of the ticket's audit events are named event. */
static size_t audit_count(const char *ticket, const char *event)
{
	json_t *t = h_ticket_show(ticket), *a;
	size_t i, n = 0;

	json_array_foreach (json_object_get(t, "audit"), i, a) {
		if (strcmp(json_string_value(json_object_get(a, "event")),
			   event) == 0)
			n++;
	}
	json_decref(t);
	return n;
}

/* The console's close for channel, whose answer must contain part. */
static void console_close(struct raw_pair *p, long long channel,
			  const char *part)
{
	char msg[128], id[32], answer[RAW_FRAME_MAX];

	snprintf(msg, sizeof(msg),
		 "{\"t\":\"close\",\"id\":%d,\"channel\":%lld}", ++p->next_id,
		 channel);
	cr_assert(raw_ctrl(&p->con, msg));
	snprintf(id, sizeof(id), "\"id\":%d", p->next_id);
	raw_expect(&p->con, id, answer, sizeof(answer), msg);
	cr_assert(strstr(answer, part), "%s answered %s, not %s", msg, answer,
		  part);
}

/* Asserts the ticket's channel_open and channel_close audit rows. */
static void expect_channel_rows(const struct raw_pair *p, size_t opens,
				size_t closes, const char *after)
{
	size_t o = audit_count(p->ticket, "channel_open");
	size_t c = audit_count(p->ticket, "channel_close");

	cr_assert(o == opens && c == closes,
		  "after %s: %zu channel_open and %zu channel_close rows, "
		  "expected %zu and %zu",
		  after, o, c, opens, closes);
}

/*
 * A channel_close audit row stands for a channel that was opened (and
 * audited so): closes of channels never opened, or closed already, from
 * either end, write none and break nothing; neither does a channel whose
 * console left before the agent's opened came, which never opened for
 * the technician.
 */
Test(malformed, channel_close_rows_pair_with_opens, .timeout = 90)
{
	static const char *const args[] = {"-v", NULL};
	char answer[RAW_FRAME_MAX], want[64], peer[64];
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	struct raw_pair p;
	struct h_relay r;
	long long late;
	int64_t deadline;
	bool gone = false;
	char *log;

	h_relay_init(&r, "relay");
	h_relay_start_ex(&r, NULL, args, NULL);
	h_login(&r);
	pair_up(&p, &r);
	expect_channel_rows(&p, 1, 0, "the open");
	console_close(&p, 999, "not_found");
	expect_channel_rows(&p, 1, 0, "a close of a channel never opened");
	console_close(&p, p.channel, "\"ok\"");
	snprintf(want, sizeof(want), "\"channel\":%lld", p.channel);
	raw_expect(&p.ag, want, answer, sizeof(answer), "close at the agent");
	cr_assert(strstr(answer, "\"close\""), "the agent got %s", answer);
	expect_channel_rows(&p, 1, 1, "the close");
	console_close(&p, p.channel, "not_found");
	cr_assert(raw_ctrl(&p.ag, "{\"t\":\"close\",\"channel\":999}"));
	snprintf(answer, sizeof(answer), "{\"t\":\"close\",\"channel\":%lld}",
		 p.channel);
	cr_assert(raw_ctrl(&p.ag, answer));
	cr_assert(raw_ctrl(&p.ag, "{\"t\":\"ping\"}"));
	raw_expect(&p.ag, "pong", answer, sizeof(answer), "agent ping");
	expect_channel_rows(&p, 1, 1, "closes of a closed channel");

	/* The console asks for a channel and leaves before it opens. */
	late = pair_ask_open(&p);
	cr_assert(getsockname(p.con.fd, (struct sockaddr *)&sa, &len) == 0);
	snprintf(peer, sizeof(peer), "peer 127.0.0.1:%u closed",
		 ntohs(sa.sin_port));
	raw_free(&p.con);
	deadline = now_ms() + REJECT_MS;
	while (!gone && now_ms() < deadline) {
		usleep(50 * 1000);
		log = h_read_file(r.log, NULL);
		gone = log != NULL && strstr(log, peer) != NULL;
		free(log);
	}
	cr_assert(gone, "the relay's log never says \"%s\"", peer);
	pair_opened(&p, late);
	snprintf(want, sizeof(want), "\"channel\":%lld", late);
	raw_expect(&p.ag, want, answer, sizeof(answer), "late close");
	cr_assert(strstr(answer, "\"close\""), "the agent got %s", answer);
	expect_channel_rows(&p, 1, 1, "an opened for a console that left");
	raw_free(&p.ag);
	expect_serving(&r);
	h_relay_stop(&r);
}

/* ---- Enrolled agents ------------------------------------------------------
 */

/*
 * A raw connection authenticated as the enrolled agent whose key is
 * DIR/agent.key (enrolled by the real tether-agent): hello, the welcome's
 * challenge signed with tether/sign.h, auth, auth_ok.
 */
static void raw_enrolled(struct raw *c, const struct h_relay *r,
			 const char *name)
{
	uint8_t challenge[TETHER_AGENT_CHALLENGE_LEN], signed_msg[256];
	char key[H_PATH_MAX];
	size_t len = 0;

	cr_assert(raw_tether(c, r->port), "TLS handshake failed");
	cr_assert(raw_ctrl(c, "{\"t\":\"hello\",\"role\":\"agent\","
			      "\"version\":2}"));
	raw_challenge(c, challenge);
	h_path(key, sizeof(key), "agent.key");
	cr_assert_eq(tether_sign_auth_message(challenge, name, signed_msg,
					      sizeof(signed_msg), &len),
		     0);
	raw_auth(c, key, signed_msg, len, name);
}

/* One message from an authenticated agent must close it with an ERROR. */
static void agent_rejects(const struct h_relay *r, const char *json,
			  const char *why_part)
{
	struct raw c;
	char why[256];

	raw_enrolled(&c, r, "raw-01");
	raw_ctrl(&c, json);
	cr_assert(raw_read_until_close(&c, REJECT_MS),
		  "relay kept an agent open after %s", json);
	cr_assert(got_error_frame(&c, why, sizeof(why)),
		  "no ERROR frame after %s", json);
	cr_assert(strstr(why, why_part), "ERROR \"%s\" after %s", why, json);
	raw_free(&c);
}

Test(malformed, enrolled_agent_bad_messages, .timeout = 120)
{
	char conf[H_PATH_MAX], big[3000], answer[8192];
	struct h_relay r;
	struct raw c;
	uint8_t type = 0;
	struct h_res res;

	up(&r);
	h_path(conf, sizeof(conf), "agent.conf");
	h_enroll(&r, "raw-01", conf);

	agent_rejects(&r, "{\"t\":\"check\"}", "malformed check");
	agent_rejects(&r,
		      "{\"t\":\"check\",\"seq\":\"1\",\"check\":\"x\","
		      "\"state\":\"OK\",\"type\":\"HARD\",\"attempt\":1,"
		      "\"max_attempts\":1,\"ts\":1}",
		      "malformed check");
	agent_rejects(&r,
		      "{\"t\":\"check\",\"seq\":1,\"check\":\"x\","
		      "\"state\":\"FINE\",\"type\":\"HARD\",\"attempt\":1,"
		      "\"max_attempts\":1,\"ts\":1}",
		      "malformed check");
	agent_rejects(&r,
		      "{\"t\":\"check\",\"seq\":1,\"check\":\"../x\","
		      "\"state\":\"OK\",\"type\":\"HARD\",\"attempt\":1,"
		      "\"max_attempts\":1,\"ts\":1}",
		      "malformed check");
	agent_rejects(&r,
		      "{\"t\":\"check\",\"seq\":1,\"check\":\"x\","
		      "\"state\":\"OK\",\"type\":\"HARD\",\"attempt\":1,"
		      "\"max_attempts\":1,\"ts\":1,\"perfdata\":{}}",
		      "malformed check");
	agent_rejects(&r, "{\"t\":\"diag\",\"ticket\":7}", "malformed diag");
	agent_rejects(&r, "{\"t\":\"join\",\"nameplate\":\"1\"}",
		      "unknown message");
	agent_rejects(&r,
		      "{\"t\":\"auth\",\"agent\":\"raw-01\",\"sig\":\"00\"}",
		      "busy connection");

	/* Long output is clipped, not refused; an unasked diag is ignored. */
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	raw_enrolled(&c, &r, "raw-01");
	{
		char msg[4096];

		snprintf(
		    msg, sizeof(msg),
		    "{\"t\":\"check\",\"seq\":1,\"check\":\"long\","
		    "\"state\":\"WARNING\",\"type\":\"HARD\",\"attempt\":1,"
		    "\"max_attempts\":1,\"ts\":1,\"output\":\"%s\"}",
		    big);
		cr_assert(raw_ctrl(&c, msg));
	}
	cr_assert(raw_read_frame(&c, REJECT_MS, &type, answer, sizeof(answer)));
	cr_assert(strstr(answer, "check_ack"), "got %s", answer);
	cr_assert(raw_ctrl(&c, "{\"t\":\"diag\",\"ticket\":\"T-1\","
			       "\"bundle\":\"AAAA\"}"));
	cr_assert(raw_ctrl(&c, "{\"t\":\"ping\"}"));
	cr_assert(raw_read_frame(&c, REJECT_MS, &type, answer, sizeof(answer)));
	cr_assert(strstr(answer, "pong"), "got %s", answer);
	raw_free(&c);
	h_console_ok(&res, NULL, "health", "raw-01", "--json", NULL);
	cr_assert(strstr(res.out, "\"long\"") && strlen(res.out) < 2500,
		  "clipped output not stored: %.300s", res.out);
	h_res_free(&res);
	expect_serving(&r);
	h_relay_stop(&r);
}

Test(malformed, enroll_and_auth_refusals, .timeout = 60)
{
	char conf[H_PATH_MAX], why[256], answer[1024];
	struct h_relay r;
	struct raw c;
	uint8_t type;

	up(&r);
	/* A made-up token. */
	cr_assert(raw_tether(&c, r.port));
	cr_assert(raw_ctrl(&c, "{\"t\":\"hello\",\"role\":\"agent\","
			       "\"version\":2}"));
	cr_assert(raw_read_frame(&c, REJECT_MS, &type, answer, sizeof(answer)));
	cr_assert(raw_ctrl(&c, "{\"t\":\"enroll\",\"token\":\"tte_nope\","
			       "\"name\":\"x\",\"pubkey\":\"00000000000000000"
			       "000000000000000000000000000000000000000000000"
			       "00\"}"));
	cr_assert(raw_read_until_close(&c, REJECT_MS));
	cr_assert(got_error_frame(&c, why, sizeof(why)) &&
		      strstr(why, "invalid or expired enrollment token"),
		  "ERROR \"%s\"", why);
	raw_free(&c);
	/* A signature by nobody's key. */
	h_path(conf, sizeof(conf), "agent.conf");
	h_enroll(&r, "raw-02", conf);
	cr_assert(raw_tether(&c, r.port));
	cr_assert(raw_ctrl(&c, "{\"t\":\"hello\",\"role\":\"agent\","
			       "\"version\":2}"));
	cr_assert(raw_read_frame(&c, REJECT_MS, &type, answer, sizeof(answer)));
	{
		char msg[512], hex[129];

		memset(hex, 'a', 128);
		hex[128] = '\0';
		snprintf(msg, sizeof(msg),
			 "{\"t\":\"auth\",\"agent\":\"raw-02\",\"sig\":\"%s\"}",
			 hex);
		cr_assert(raw_ctrl(&c, msg));
	}
	cr_assert(raw_read_until_close(&c, REJECT_MS));
	cr_assert(got_error_frame(&c, why, sizeof(why)) &&
		      strstr(why, "agent authentication failed"),
		  "ERROR \"%s\"", why);
	raw_free(&c);
	expect_serving(&r);
	h_relay_stop(&r);
}

/*
 * ticket_list names one assignee: a name, assignee_me or unassigned.  Two
 * at once is bad_request, answered on the connection that stays open;
 * "me" as a name is a technician's name (none here), never the asker.
 */
Test(malformed, ticket_list_one_assignee, .timeout = 60)
{
	static const char *const both[] = {
	    "{\"t\":\"ticket_list\",\"id\":1,\"assignee\":\"admin\","
	    "\"assignee_me\":true}",
	    "{\"t\":\"ticket_list\",\"id\":2,\"assignee_me\":true,"
	    "\"unassigned\":true}",
	    "{\"t\":\"ticket_list\",\"id\":3,\"assignee\":\"admin\","
	    "\"unassigned\":true}",
	};
	char answer[1024];
	struct h_relay r;
	struct raw c;
	uint8_t type;
	size_t i;

	up(&r);
	cr_assert(raw_tether(&c, r.port), "TLS handshake failed");
	raw_hello(&c, &r);
	for (i = 0; i < sizeof(both) / sizeof(both[0]); i++) {
		cr_assert(raw_ctrl(&c, both[i]), "sending %s", both[i]);
		cr_assert(raw_read_frame(&c, REJECT_MS, &type, answer,
					 sizeof(answer)),
			  "no answer to %s", both[i]);
		cr_assert(strstr(answer, "\"bad_request\"") &&
			      strstr(answer, "a list is of one assignee"),
			  "%s: %s", both[i], answer);
	}
	cr_assert(raw_ctrl(&c, "{\"t\":\"ticket_list\",\"id\":4,"
			       "\"assignee\":\"me\"}"));
	cr_assert(raw_read_frame(&c, REJECT_MS, &type, answer, sizeof(answer)),
		  "no answer to assignee \"me\"");
	cr_assert(strstr(answer, "\"not_found\"") &&
		      strstr(answer, "no technician me"),
		  "\"me\" as a name: %s", answer);
	cr_assert(raw_ctrl(&c, "{\"t\":\"ticket_list\",\"id\":5,"
			       "\"assignee_me\":true,\"unassigned\":false}"));
	cr_assert(raw_read_frame(&c, REJECT_MS, &type, answer, sizeof(answer)),
		  "no answer to assignee_me");
	cr_assert(strstr(answer, "\"ok\""), "assignee_me: %s", answer);
	raw_free(&c);
	expect_serving(&r);
	h_relay_stop(&r);
}
