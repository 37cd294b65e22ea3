/*
 * TLS 1.3 as a libuv-free filter on memory BIOs (nginx/curl style): the
 * caller feeds ciphertext in with tether_tls_feed(), takes ciphertext out
 * with tether_tls_out_take(), and moves plaintext with read/write.  ALPN is
 * always "tether/1"; peers offering anything else, or TLS < 1.3, fail.
 * Relay certificates are self-signed and pinned by SHA-256 fingerprint.
 */
#ifndef TETHER_TLS_H
#define TETHER_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tether_tls_ctx;
struct tether_tls;

#define TETHER_TLS_ALPN "tether/1"
/* "SHA256:" + 43 chars of unpadded base64 + NUL, rounded up. */
#define TETHER_TLS_FP_LEN 64

/*
 * Server context from PEM files.  NULL on failure (reason logged).
 * Caller frees with tether_tls_ctx_free().
 */
struct tether_tls_ctx *tether_tls_ctx_new_server(const char *cert_path,
						 const char *key_path);
/*
 * Client context.  No chain verification: the caller pins the relay's
 * certificate by comparing tether_tls_peer_fingerprint() after handshake.
 */
struct tether_tls_ctx *tether_tls_ctx_new_client(void);
void tether_tls_ctx_free(struct tether_tls_ctx *ctx);

/* One connection's TLS state; ctx must outlive it.  NULL on no memory. */
struct tether_tls *tether_tls_new(struct tether_tls_ctx *ctx, bool server);
void tether_tls_free(struct tether_tls *t);

/* Hands n bytes of ciphertext received from the network to TLS. */
int tether_tls_feed(struct tether_tls *t, const void *data, size_t n);
/*
 * The same without a copy: TLS reads data where it is until
 * tether_tls_feed_release(), which copies what is still unread.  The
 * caller keeps data unchanged until then and releases before the next
 * feed (TETHER_ERR_STATE otherwise).
 */
int tether_tls_feed_borrow(struct tether_tls *t, const void *data, size_t n);
int tether_tls_feed_release(struct tether_tls *t);
/*
 * Advances the handshake: 0 when complete, TETHER_ERR_AGAIN when it needs
 * more input (drain the output first), TETHER_ERR_TLS on failure (reason in
 * tether_tls_error()).
 */
int tether_tls_handshake(struct tether_tls *t);
bool tether_tls_is_established(const struct tether_tls *t);
/*
 * Reads up to n plaintext bytes into buf; *got says how many.  Returns 0,
 * TETHER_ERR_AGAIN (nothing buffered), TETHER_ERR_CLOSED (peer sent
 * close_notify) or TETHER_ERR_TLS.
 */
int tether_tls_read(struct tether_tls *t, void *buf, size_t n, size_t *got);
/* Encrypts all n bytes (output then waits in tether_tls_out_*). */
int tether_tls_write(struct tether_tls *t, const void *buf, size_t n);
/* Queues a close_notify alert. */
int tether_tls_shutdown(struct tether_tls *t);

/* Bytes of ciphertext waiting to be sent. */
size_t tether_tls_out_pending(const struct tether_tls *t);
/* Moves up to n pending ciphertext bytes into buf; *got says how many. */
int tether_tls_out_take(struct tether_tls *t, void *buf, size_t n, size_t *got);

/* Last failure reason (static or per-connection string); never NULL. */
const char *tether_tls_error(const struct tether_tls *t);
/* Writes the peer certificate's "SHA256:..." fingerprint into out. */
int tether_tls_peer_fingerprint(const struct tether_tls *t,
				char out[TETHER_TLS_FP_LEN]);

/*
 * Makes a self-signed P-256 certificate valid for ten years and its key;
 * the key file is written 0600.  fp_out (may be NULL) gets the fingerprint.
 */
int tether_tls_cert_generate(const char *cert_path, const char *key_path,
			     const char *common_name,
			     char fp_out[TETHER_TLS_FP_LEN]);
/* Fingerprint of the certificate in a PEM file. */
int tether_tls_cert_fingerprint(const char *cert_path,
				char out[TETHER_TLS_FP_LEN]);

#endif /* TETHER_TLS_H */
