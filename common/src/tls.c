/*
 * TLS 1.3 over OpenSSL memory BIOs.  The library never touches a socket:
 * ciphertext goes in through the read BIO and comes out of the write BIO,
 * so the same code serves libuv, blocking sockets and in-memory tests.
 * Only TLS 1.3 with ALPN "tether/1" is spoken; relay certificates are
 * self-signed and the client pins them by fingerprint instead of trusting a
 * CA chain.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <tether/alloc.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/log.h>
#include <tether/tls.h>

#define ERRBUF_LEN 256
#define FP_PREFIX "SHA256:"
#define FP_PREFIX_LEN (sizeof(FP_PREFIX) - 1)
/* RFC 5280 upper bound on a commonName; OpenSSL refuses longer ones. */
#define CN_MAX 64
/* Ten years plus the leap days they can contain. */
#define CERT_DAYS (10 * 365 + 3)

/* ALPN wire format: one length-prefixed protocol name. */
static const unsigned char alpn_wire[] = "\x08" TETHER_TLS_ALPN;
#define ALPN_WIRE_LEN (sizeof(alpn_wire) - 1)
#define ALPN_LEN (sizeof(TETHER_TLS_ALPN) - 1)

struct tether_tls_ctx {
	SSL_CTX *ssl_ctx;
	BIO_METHOD *cq_method; /* the connections' ciphertext queues */
	bool server;
};

/*
 * Ciphertext queues: the BIOs between OpenSSL and the socket.  OpenSSL's
 * memory BIO zero-fills every byte it grows by and reallocates through a
 * cleansing copy; ciphertext needs neither.  The read queue can also
 * borrow the caller's input instead of copying it in, for as long as the
 * caller says (tether_tls_feed_borrow() / _release()).
 */
struct cq {
	uint8_t *d;
	size_t off, end, cap;
	const uint8_t *ext; /* borrowed input, read after d's bytes */
	size_t ext_len;
};

/* An empty queue keeps its buffer for the next frame, up to this. */
#define CQ_KEEP_MAX (1024u * 1024)

static int cq_append(struct cq *q, const void *in, size_t n)
{
	size_t cap;
	uint8_t *nd;

	if (q->off == q->end)
		q->off = q->end = 0;
	if (q->cap - q->end < n && q->off > 0) {
		memmove(q->d, q->d + q->off, q->end - q->off);
		q->end -= q->off;
		q->off = 0;
	}
	if (q->cap - q->end < n) {
		if (n > SIZE_MAX / 2 - q->end)
			return -1;
		cap = q->cap < 16384 ? 16384 : q->cap;
		while (cap - q->end < n)
			cap *= 2;
		nd = tether_reallocarray(q->d, cap, 1);
		if (nd == NULL)
			return -1;
		q->d = nd;
		q->cap = cap;
	}
	memcpy(q->d + q->end, in, n);
	q->end += n;
	return 0;
}

static int cq_write(BIO *b, const char *in, size_t n, size_t *written)
{
	struct cq *q = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	*written = 0;
	if (cq_append(q, in, n) != 0)
		return 0;
	*written = n;
	return 1;
}

static int cq_read(BIO *b, char *out, size_t n, size_t *got)
{
	struct cq *q = BIO_get_data(b);
	size_t k, done = 0;

	BIO_clear_retry_flags(b);
	k = q->end - q->off < n ? q->end - q->off : n;
	if (k > 0) {
		memcpy(out, q->d + q->off, k);
		q->off += k;
		done = k;
	}
	if (q->off == q->end) {
		q->off = q->end = 0;
		if (q->cap > CQ_KEEP_MAX) {
			tether_free(q->d);
			q->d = NULL;
			q->cap = 0;
		}
	}
	k = q->ext_len < n - done ? q->ext_len : n - done;
	if (k > 0) {
		memcpy(out + done, q->ext, k);
		q->ext += k;
		q->ext_len -= k;
		done += k;
	}
	*got = done;
	if (done == 0) {
		/* Empty is "later", never end of stream. */
		BIO_set_retry_read(b);
		return 0;
	}
	return 1;
}

static long cq_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct cq *q = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_PENDING:
		return (long)(q->end - q->off + q->ext_len);
	case BIO_CTRL_FLUSH:
		return 1;
	default:
		return 0;
	}
}

static int cq_create(BIO *b)
{
	struct cq *q = tether_calloc(1, sizeof(*q));

	if (q == NULL)
		return 0;
	BIO_set_data(b, q);
	BIO_set_init(b, 1);
	return 1;
}

static int cq_destroy(BIO *b)
{
	struct cq *q = BIO_get_data(b);

	if (q != NULL) {
		tether_free(q->d);
		tether_free(q);
	}
	BIO_set_data(b, NULL);
	return 1;
}

/*
 * The queues' BIO method, one per context.  Its type number is fixed
 * rather than drawn from BIO_get_new_index(), whose supply of about a
 * hundred numbers per process would run out as contexts come and go; the
 * number only names the type to BIO_find_type(), which nothing asks.
 */
#define CQ_BIO_TYPE (0xe0 | BIO_TYPE_SOURCE_SINK)

static BIO_METHOD *cq_method_new(void)
{
	BIO_METHOD *m = BIO_meth_new(CQ_BIO_TYPE, "tether ciphertext queue");

	if (m == NULL || !BIO_meth_set_write_ex(m, cq_write) ||
	    !BIO_meth_set_read_ex(m, cq_read) ||
	    !BIO_meth_set_ctrl(m, cq_ctrl) ||
	    !BIO_meth_set_create(m, cq_create) ||
	    !BIO_meth_set_destroy(m, cq_destroy)) {
		BIO_meth_free(m);
		return NULL;
	}
	return m;
}

struct tether_tls {
	SSL *ssl;
	BIO *rbio; /* ciphertext from the peer; owned by ssl */
	BIO *wbio; /* ciphertext for the peer; owned by ssl */
	bool server;
	bool established;
	/*
	 * Set after a fatal error.  OpenSSL must not be driven again once it
	 * reported SSL_ERROR_SSL/SYSCALL, and our own ALPN check has no
	 * OpenSSL state to remember it, so we keep failing on our own.
	 */
	bool failed;
	/* Our ALPN callbacks refused the client; explains the failure. */
	bool alpn_refused;
	char err[ERRBUF_LEN];
};

/*
 * Turns the first queued OpenSSL error into words.  The common handshake
 * failures get a sentence an operator can act on; the rest use OpenSSL's
 * reason string, which is still better than a bare code.
 */
static void openssl_reason(const char *what, char *buf, size_t len)
{
	unsigned long e = ERR_peek_error();
	const char *reason;
	/* Smaller than buf so that what + reason fits untruncated. */
	char raw[ERRBUF_LEN / 2];

	if (e == 0) {
		snprintf(buf, len, "%s failed", what);
		return;
	}
	switch (ERR_GET_LIB(e) == ERR_LIB_SSL ? ERR_GET_REASON(e) : 0) {
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
		reason = "peer does not support TLS 1.3";
		break;
	case SSL_R_NO_APPLICATION_PROTOCOL:
	case SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL:
		reason = "peer does not speak ALPN " TETHER_TLS_ALPN;
		break;
	default:
		reason = ERR_reason_error_string(e);
		if (!reason) {
			ERR_error_string_n(e, raw, sizeof(raw));
			reason = raw;
		}
		break;
	}
	snprintf(buf, len, "%s: %s", what, reason);
}

static void set_error(struct tether_tls *t, const char *msg)
{
	snprintf(t->err, sizeof(t->err), "%s", msg);
}

/*
 * Maps the result of an SSL_* call.  WANT_* only means the memory BIO ran
 * dry (or, for writes, cannot happen); everything else is fatal for the
 * connection and latches t->failed.
 */
static int ssl_result(struct tether_tls *t, int ret, const char *what)
{
	int e = SSL_get_error(t->ssl, ret);

	switch (e) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return TETHER_ERR_AGAIN;
	case SSL_ERROR_ZERO_RETURN:
		set_error(t, "peer closed the TLS session");
		return TETHER_ERR_CLOSED;
	default:
		/*
		 * Our callbacks know better than OpenSSL's generic "callback
		 * failed".  SSL_ERROR_SYSCALL with an empty queue means I/O
		 * trouble, which memory BIOs never have; call it corruption.
		 */
		if (t->alpn_refused)
			set_error(t,
				  "client did not offer ALPN " TETHER_TLS_ALPN);
		else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
			snprintf(t->err, sizeof(t->err),
				 "%s: unexpected end of TLS stream", what);
		else
			openssl_reason(what, t->err, sizeof(t->err));
		break;
	}
	t->failed = true;
	ERR_clear_error();
	return TETHER_ERR_TLS;
}

/* Logs why a context could not be built; the queue is cleared after. */
static void log_ctx_error(const char *what)
{
	char buf[ERRBUF_LEN];

	openssl_reason(what, buf, sizeof(buf));
	tether_log_err(TETHER_ERR_TLS, "%s", buf);
	ERR_clear_error();
}

/*
 * Server ALPN selection: pick tether/1 or abort with no_application_protocol
 * so that foreign clients (browsers, scanners) fail during the handshake
 * instead of after it.
 */
static int alpn_select(SSL *ssl, const unsigned char **out,
		       unsigned char *outlen, const unsigned char *in,
		       unsigned int inlen, void *arg)
{
	struct tether_tls *t = SSL_get_app_data(ssl);
	unsigned int i = 0;

	(void)arg;
	while (i < inlen) {
		unsigned int n = in[i++];

		if (n > inlen - i)
			break;
		if (n == ALPN_LEN && memcmp(in + i, TETHER_TLS_ALPN, n) == 0) {
			*out = in + i;
			*outlen = (unsigned char)n;
			return SSL_TLSEXT_ERR_OK;
		}
		i += n;
	}
	if (t)
		t->alpn_refused = true;
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/*
 * The ALPN select callback only runs when the client sent the extension;
 * a ClientHello without ALPN would otherwise complete the handshake.
 */
static int client_hello_cb(SSL *ssl, int *al, void *arg)
{
	struct tether_tls *t = SSL_get_app_data(ssl);
	const unsigned char *ext;
	size_t len;

	(void)arg;
	if (!SSL_client_hello_get0_ext(
		ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext,
		&len)) {
		if (t)
			t->alpn_refused = true;
		*al = SSL_AD_NO_APPLICATION_PROTOCOL;
		return SSL_CLIENT_HELLO_ERROR;
	}
	return SSL_CLIENT_HELLO_SUCCESS;
}

/* Settings both roles share: TLS 1.3 only, no renegotiation, no tickets. */
static int ctx_common(SSL_CTX *c)
{
	if (!SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION))
		return -1;
	SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET |
				   SSL_OP_NO_COMPRESSION);
	/*
	 * Partial writes stay off so SSL_write_ex() consumes whole buffers;
	 * release-buffers stays off because reallocating the record buffers
	 * on every idle moment costs more than the memory it saves.
	 */
	SSL_CTX_clear_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE |
				  SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
	return 0;
}

struct tether_tls_ctx *tether_tls_ctx_new_server(const char *cert_path,
						 const char *key_path)
{
	struct tether_tls_ctx *ctx = NULL;
	SSL_CTX *c = NULL;

	if (!cert_path || !key_path) {
		tether_log_err(TETHER_ERR_INVALID,
			       "no certificate or key path");
		goto out;
	}
	ERR_clear_error();
	c = SSL_CTX_new(TLS_server_method());
	if (!c) {
		log_ctx_error("SSL_CTX_new");
		goto out;
	}
	if (ctx_common(c) < 0) {
		log_ctx_error("TLS 1.3 setup");
		goto out;
	}
	if (SSL_CTX_use_certificate_chain_file(c, cert_path) != 1) {
		log_ctx_error(cert_path);
		goto out;
	}
	if (SSL_CTX_use_PrivateKey_file(c, key_path, SSL_FILETYPE_PEM) != 1) {
		log_ctx_error(key_path);
		goto out;
	}
	if (SSL_CTX_check_private_key(c) != 1) {
		log_ctx_error("key does not match certificate");
		goto out;
	}
	/* Resumption is off, so tickets would only waste a round of bytes. */
	SSL_CTX_set_num_tickets(c, 0);
	SSL_CTX_set_options(c, SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_client_hello_cb(c, client_hello_cb, NULL);
	SSL_CTX_set_alpn_select_cb(c, alpn_select, NULL);

	ctx = tether_calloc(1, sizeof(*ctx));
	if (ctx != NULL && (ctx->cq_method = cq_method_new()) == NULL) {
		tether_free(ctx);
		ctx = NULL;
	}
	if (!ctx) {
		tether_log_err(TETHER_ERR_NOMEM, "TLS server context");
		goto out;
	}
	ctx->ssl_ctx = c;
	ctx->server = true;
	c = NULL;
out:
	SSL_CTX_free(c);
	return ctx;
}

struct tether_tls_ctx *tether_tls_ctx_new_client(void)
{
	struct tether_tls_ctx *ctx = NULL;
	SSL_CTX *c;

	ERR_clear_error();
	c = SSL_CTX_new(TLS_client_method());
	if (!c) {
		log_ctx_error("SSL_CTX_new");
		goto out;
	}
	if (ctx_common(c) < 0) {
		log_ctx_error("TLS 1.3 setup");
		goto out;
	}
	/* The relay's certificate is pinned by fingerprint, not by a CA. */
	SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
	/* Unlike nearly everything else in OpenSSL, 0 means success here. */
	if (SSL_CTX_set_alpn_protos(c, alpn_wire, ALPN_WIRE_LEN) != 0) {
		log_ctx_error("ALPN setup");
		goto out;
	}

	ctx = tether_calloc(1, sizeof(*ctx));
	if (ctx != NULL && (ctx->cq_method = cq_method_new()) == NULL) {
		tether_free(ctx);
		ctx = NULL;
	}
	if (!ctx) {
		tether_log_err(TETHER_ERR_NOMEM, "TLS client context");
		goto out;
	}
	ctx->ssl_ctx = c;
	ctx->server = false;
	c = NULL;
out:
	SSL_CTX_free(c);
	return ctx;
}

void tether_tls_ctx_free(struct tether_tls_ctx *ctx)
{
	if (!ctx)
		return;
	SSL_CTX_free(ctx->ssl_ctx);
	BIO_meth_free(ctx->cq_method);
	tether_free(ctx);
}

struct tether_tls *tether_tls_new(struct tether_tls_ctx *ctx, bool server)
{
	struct tether_tls *t = NULL;
	BIO *rbio = NULL, *wbio = NULL;
	SSL *ssl = NULL;

	if (!ctx)
		goto out;
	/* A server method cannot connect, nor a client method accept. */
	if (ctx->server != server) {
		tether_log_err(TETHER_ERR_INVALID,
			       "TLS role does not match its context");
		goto out;
	}
	t = tether_calloc(1, sizeof(*t));
	if (!t)
		goto out;
	ERR_clear_error();
	ssl = SSL_new(ctx->ssl_ctx);
	rbio = BIO_new(ctx->cq_method);
	wbio = BIO_new(ctx->cq_method);
	if (!ssl || !rbio || !wbio)
		goto fail;
	SSL_set_bio(ssl, rbio, wbio);
	/* Lets the ALPN callbacks record why they refused a client. */
	SSL_set_app_data(ssl, t);
	if (server)
		SSL_set_accept_state(ssl);
	else
		SSL_set_connect_state(ssl);
	t->ssl = ssl;
	t->rbio = rbio;
	t->wbio = wbio;
	t->server = server;
	goto out;
fail:
	ERR_clear_error();
	BIO_free(rbio);
	BIO_free(wbio);
	SSL_free(ssl);
	tether_free(t);
	t = NULL;
out:
	return t;
}

void tether_tls_free(struct tether_tls *t)
{
	if (!t)
		return;
	SSL_free(t->ssl); /* frees both BIOs */
	tether_free(t);
}

int tether_tls_feed(struct tether_tls *t, const void *data, size_t n)
{
	size_t written = 0;

	if (!t || (!data && n))
		return TETHER_ERR_INVALID;
	if (n == 0)
		return 0;
	ERR_clear_error();
	/* The queue grows as needed, so it takes all or fails on memory. */
	if (BIO_write_ex(t->rbio, data, n, &written) != 1 || written != n) {
		ERR_clear_error();
		set_error(t, "out of memory buffering TLS input");
		return TETHER_ERR_NOMEM;
	}
	return 0;
}

int tether_tls_feed_borrow(struct tether_tls *t, const void *data, size_t n)
{
	struct cq *q;

	if (!t || (!data && n))
		return TETHER_ERR_INVALID;
	q = BIO_get_data(t->rbio);
	if (q->ext_len > 0)
		return TETHER_ERR_STATE;
	q->ext = data;
	q->ext_len = n;
	return 0;
}

int tether_tls_feed_release(struct tether_tls *t)
{
	struct cq *q;
	int r = 0;

	if (!t)
		return TETHER_ERR_INVALID;
	q = BIO_get_data(t->rbio);
	if (q->ext_len > 0 && cq_append(q, q->ext, q->ext_len) != 0) {
		set_error(t, "out of memory buffering TLS input");
		r = TETHER_ERR_NOMEM;
	}
	q->ext = NULL;
	q->ext_len = 0;
	return r;
}

/*
 * TLS 1.3 lets a client finish before the server has seen anything, so the
 * client checks ALPN itself: a server that ignores ALPN would otherwise get
 * through.  The server side re-checks as a guard against callback bugs.
 */
static int check_alpn(struct tether_tls *t)
{
	const unsigned char *proto = NULL;
	unsigned int len = 0;

	SSL_get0_alpn_selected(t->ssl, &proto, &len);
	if (len == ALPN_LEN && memcmp(proto, TETHER_TLS_ALPN, len) == 0)
		return 0;
	if (t->server)
		set_error(t, "client did not negotiate ALPN " TETHER_TLS_ALPN);
	else
		set_error(t, "relay did not negotiate ALPN " TETHER_TLS_ALPN);
	t->failed = true;
	return TETHER_ERR_TLS;
}

int tether_tls_handshake(struct tether_tls *t)
{
	int ret;

	if (!t)
		return TETHER_ERR_INVALID;
	if (t->failed)
		return TETHER_ERR_TLS;
	if (t->established)
		return 0;
	ERR_clear_error();
	ret = SSL_do_handshake(t->ssl);
	if (ret != 1) {
		ret = ssl_result(t, ret, "TLS handshake");
		/* close_notify mid-handshake is a failed handshake too. */
		if (ret == TETHER_ERR_CLOSED) {
			t->failed = true;
			ret = TETHER_ERR_TLS;
		}
		return ret;
	}
	ret = check_alpn(t);
	if (ret < 0)
		return ret;
	t->established = true;
	return 0;
}

bool tether_tls_is_established(const struct tether_tls *t)
{
	return t && t->established && !t->failed;
}

int tether_tls_read(struct tether_tls *t, void *buf, size_t n, size_t *got)
{
	size_t nread = 0;
	int ret;

	if (got)
		*got = 0;
	if (!t || !buf || !got)
		return TETHER_ERR_INVALID;
	if (t->failed)
		return TETHER_ERR_TLS;
	/*
	 * SSL_read would run the handshake implicitly and skip the client's
	 * ALPN check, so plaintext flows only after tether_tls_handshake().
	 */
	if (!t->established)
		return TETHER_ERR_STATE;
	if (n == 0)
		return 0;
	ERR_clear_error();
	ret = SSL_read_ex(t->ssl, buf, n, &nread);
	if (ret != 1)
		return ssl_result(t, ret, "TLS read");
	*got = nread;
	return 0;
}

int tether_tls_write(struct tether_tls *t, const void *buf, size_t n)
{
	const unsigned char *p = buf;
	size_t done;
	int ret;

	if (!t || (!buf && n))
		return TETHER_ERR_INVALID;
	if (t->failed)
		return TETHER_ERR_TLS;
	if (!t->established)
		return TETHER_ERR_STATE;
	/*
	 * Without partial writes SSL_write_ex() consumes the whole buffer in
	 * one call; the loop only guards against that ever changing.
	 */
	while (n > 0) {
		done = 0;
		ERR_clear_error();
		ret = SSL_write_ex(t->ssl, p, n, &done);
		if (ret != 1) {
			ret = ssl_result(t, ret, "TLS write");
			/*
			 * The memory BIO cannot be full, so "retry" here would
			 * loop forever; report it as the failure it is.
			 */
			if (ret == TETHER_ERR_AGAIN ||
			    ret == TETHER_ERR_CLOSED) {
				t->failed = true;
				ret = TETHER_ERR_TLS;
			}
			return ret;
		}
		p += done;
		n -= done;
	}
	return 0;
}

int tether_tls_shutdown(struct tether_tls *t)
{
	int ret;

	if (!t)
		return TETHER_ERR_INVALID;
	if (t->failed)
		return TETHER_ERR_TLS;
	if (!t->established)
		return TETHER_ERR_STATE;
	ERR_clear_error();
	/* 0: our close_notify is queued, the peer's has not arrived; fine. */
	ret = SSL_shutdown(t->ssl);
	if (ret >= 0)
		return 0;
	ret = ssl_result(t, ret, "TLS shutdown");
	return ret == TETHER_ERR_AGAIN ? 0 : ret;
}

size_t tether_tls_out_pending(const struct tether_tls *t)
{
	if (!t)
		return 0;
	return BIO_ctrl_pending(t->wbio);
}

int tether_tls_out_take(struct tether_tls *t, void *buf, size_t n, size_t *got)
{
	size_t nread = 0;

	if (got)
		*got = 0;
	if (!t || !buf || !got)
		return TETHER_ERR_INVALID;
	if (n == 0 || BIO_ctrl_pending(t->wbio) == 0)
		return 0;
	ERR_clear_error();
	if (BIO_read_ex(t->wbio, buf, n, &nread) != 1) {
		ERR_clear_error();
		return 0;
	}
	*got = nread;
	return 0;
}

const char *tether_tls_error(const struct tether_tls *t)
{
	if (!t)
		return "no TLS connection";
	if (t->err[0] == '\0')
		return "no TLS error";
	return t->err;
}

/* "SHA256:" + unpadded base64 of SHA-256 over the certificate's DER. */
static int x509_fingerprint(X509 *cert, char out[TETHER_TLS_FP_LEN])
{
	uint8_t md[TETHER_SHA256_LEN];
	unsigned char *der = NULL, *p;
	int len, ret;

	len = i2d_X509(cert, NULL);
	if (len <= 0) {
		ret = TETHER_ERR_CRYPTO;
		goto out;
	}
	der = tether_malloc((size_t)len);
	if (!der) {
		ret = TETHER_ERR_NOMEM;
		goto out;
	}
	/* i2d advances its pointer argument; keep der for the free. */
	p = der;
	if (i2d_X509(cert, &p) != len) {
		ret = TETHER_ERR_CRYPTO;
		goto out;
	}
	ret = tether_sha256(der, (size_t)len, md);
	if (ret < 0)
		goto out;
	memcpy(out, FP_PREFIX, FP_PREFIX_LEN);
	ret = tether_base64_encode(md, sizeof(md), out + FP_PREFIX_LEN,
				   TETHER_TLS_FP_LEN - FP_PREFIX_LEN);
out:
	ERR_clear_error();
	tether_free(der);
	if (ret < 0)
		out[0] = '\0';
	return ret;
}

int tether_tls_peer_fingerprint(const struct tether_tls *t,
				char out[TETHER_TLS_FP_LEN])
{
	X509 *cert;

	if (!out)
		return TETHER_ERR_INVALID;
	out[0] = '\0';
	if (!t)
		return TETHER_ERR_INVALID;
	if (!t->established || t->failed)
		return TETHER_ERR_STATE;
	/* Borrowed reference: nothing to free. */
	cert = SSL_get0_peer_certificate(t->ssl);
	if (!cert)
		return TETHER_ERR_NOT_FOUND;
	return x509_fingerprint(cert, out);
}

int tether_tls_cert_fingerprint(const char *cert_path,
				char out[TETHER_TLS_FP_LEN])
{
	X509 *cert = NULL;
	FILE *f = NULL;
	int ret;

	if (!out)
		return TETHER_ERR_INVALID;
	out[0] = '\0';
	if (!cert_path)
		return TETHER_ERR_INVALID;
	f = fopen(cert_path, "re");
	if (!f) {
		ret = errno == ENOENT ? TETHER_ERR_NOT_FOUND : TETHER_ERR_SYS;
		goto out;
	}
	ERR_clear_error();
	cert = PEM_read_X509(f, NULL, NULL, NULL);
	if (!cert) {
		ERR_clear_error();
		ret = TETHER_ERR_FORMAT;
		goto out;
	}
	ret = x509_fingerprint(cert, out);
out:
	X509_free(cert);
	if (f)
		fclose(f);
	return ret;
}

/*
 * Opens path for writing with exactly the given mode.  O_NOFOLLOW stops a
 * planted symlink from redirecting the key; fchmod fixes up a file that
 * already existed with looser permissions, or lost bits to the umask.
 */
static FILE *open_for_write(const char *path, mode_t mode)
{
	FILE *f;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		  mode);
	if (fd < 0)
		return NULL;
	if (fchmod(fd, mode) < 0) {
		close(fd);
		return NULL;
	}
	f = fdopen(fd, "w");
	if (!f)
		close(fd);
	return f;
}

/* fclose() that also reports a failed final flush (disk full). */
static int close_checked(FILE *f, int ret)
{
	if (fclose(f) != 0 && ret == 0)
		ret = TETHER_ERR_SYS;
	return ret;
}

/* Letters, digits, dots and dashes: what a DNS subjectAltName may hold. */
static bool is_dns_name(const char *s)
{
	for (; *s; s++) {
		if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
		    !(*s >= '0' && *s <= '9') && *s != '.' && *s != '-')
			return false;
	}
	return true;
}

/* subjectAltName DNS:name, built directly so the name is never parsed. */
static int add_san(X509 *x, const char *name)
{
	GENERAL_NAMES *names = NULL;
	GENERAL_NAME *gn = NULL;
	ASN1_IA5STRING *ia5 = NULL;
	int ret = TETHER_ERR_CRYPTO;

	names = sk_GENERAL_NAME_new_null();
	gn = GENERAL_NAME_new();
	ia5 = ASN1_IA5STRING_new();
	if (!names || !gn || !ia5)
		goto out;
	if (!ASN1_STRING_set(ia5, name, -1))
		goto out;
	GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
	ia5 = NULL;
	if (!sk_GENERAL_NAME_push(names, gn))
		goto out;
	gn = NULL;
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0,
			      X509V3_ADD_DEFAULT) != 1)
		goto out;
	ret = 0;
out:
	ASN1_IA5STRING_free(ia5);
	GENERAL_NAME_free(gn);
	GENERAL_NAMES_free(names);
	return ret;
}

/* Self-signed leaf: random serial, CN and SAN from name, CA:FALSE. */
static X509 *make_cert(EVP_PKEY *pkey, const char *name)
{
	unsigned char serial[16];
	BASIC_CONSTRAINTS *bc = NULL;
	BIGNUM *bn = NULL;
	X509_NAME *subj;
	X509 *x;

	x = X509_new();
	if (!x)
		goto out;
	if (!X509_set_version(x, X509_VERSION_3))
		goto fail;
	if (RAND_bytes(serial, sizeof(serial)) != 1)
		goto fail;
	/* Serials are positive INTEGERs; keep 16 significant bytes. */
	serial[0] = (serial[0] & 0x7f) | 0x40;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
		goto fail;
	/* An hour of slack for peers whose clocks run a little behind. */
	if (!X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), CERT_DAYS, 0, NULL))
		goto fail;
	subj = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8,
					(const unsigned char *)name, -1, -1,
					0) ||
	    !X509_set_issuer_name(x, subj))
		goto fail;
	if (!X509_set_pubkey(x, pkey))
		goto fail;
	bc = BASIC_CONSTRAINTS_new();
	if (!bc)
		goto fail;
	bc->ca = 0;
	if (X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1,
			      X509V3_ADD_DEFAULT) != 1)
		goto fail;
	/* Free-form names (spaces, UTF-8) stay in the CN only. */
	if (is_dns_name(name) && add_san(x, name) < 0)
		goto fail;
	if (X509_sign(x, pkey, EVP_sha256()) <= 0)
		goto fail;
	goto out;
fail:
	X509_free(x);
	x = NULL;
out:
	BASIC_CONSTRAINTS_free(bc);
	BN_free(bn);
	return x;
}

/*
 * Writes a private key (pkey) or a certificate (x) as PEM to path with the
 * given mode; *wrote says whether the file was created, for clean-up.
 */
static int write_pem(const char *path, mode_t mode, EVP_PKEY *pkey, X509 *x,
		     bool *wrote)
{
	FILE *f = open_for_write(path, mode);
	int ret = 0, ok;

	if (!f) {
		tether_log_err(TETHER_ERR_SYS, "%s: %s", path, strerror(errno));
		return TETHER_ERR_SYS;
	}
	*wrote = true;
	if (pkey)
		ok = PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL);
	else
		ok = PEM_write_X509(f, x);
	if (ok != 1)
		ret = TETHER_ERR_SYS;
	return close_checked(f, ret);
}

int tether_tls_cert_generate(const char *cert_path, const char *key_path,
			     const char *common_name,
			     char fp_out[TETHER_TLS_FP_LEN])
{
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	bool wrote_key = false, wrote_cert = false;
	int ret;

	if (fp_out)
		fp_out[0] = '\0';
	if (!cert_path || !key_path || !common_name || common_name[0] == '\0' ||
	    strlen(common_name) > CN_MAX)
		return TETHER_ERR_INVALID;

	ERR_clear_error();
	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (!pkey) {
		ret = TETHER_ERR_CRYPTO;
		goto out;
	}
	x = make_cert(pkey, common_name);
	if (!x) {
		ret = TETHER_ERR_CRYPTO;
		goto out;
	}

	ret = write_pem(key_path, 0600, pkey, NULL, &wrote_key);
	if (ret < 0)
		goto out;
	ret = write_pem(cert_path, 0644, NULL, x, &wrote_cert);
	if (ret < 0)
		goto out;

	if (fp_out)
		ret = x509_fingerprint(x, fp_out);
out:
	/*
	 * Half a pair is worse than none: a later start would find files and
	 * fail on them instead of generating a fresh pair.
	 */
	if (ret < 0 && wrote_cert)
		unlink(cert_path);
	if (ret < 0 && wrote_key)
		unlink(key_path);
	ERR_clear_error();
	X509_free(x);
	EVP_PKEY_free(pkey);
	return ret;
}
