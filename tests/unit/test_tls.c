/*
 * Unit tests for the memory-BIO TLS filter.  Client and server run in one
 * process and we carry ciphertext between them by hand, so every test is
 * deterministic and needs no sockets.  Raw OpenSSL peers stand in for
 * foreign clients and servers (TLS 1.2, wrong or missing ALPN).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <tether/alloc.h>
#include <tether/err.h>
#include <tether/tls.h>

#define MAX_ROUNDS 64
#define BIG_LEN (1024 * 1024)

static char dir[64];
static char cert_path[128];
static char key_path[128];
static char cert_fp[TETHER_TLS_FP_LEN];
static struct tether_tls_ctx *sctx;
static struct tether_tls_ctx *cctx;

static void path_in_dir(char *out, size_t len, const char *name)
{
	int n = snprintf(out, len, "%s/%s", dir, name);

	cr_assert(n > 0 && (size_t)n < len);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "%s", "/tmp/tether-tls-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	path_in_dir(cert_path, sizeof(cert_path), "relay.crt");
	path_in_dir(key_path, sizeof(key_path), "relay.key");
	cr_assert_eq(tether_tls_cert_generate(cert_path, key_path, "relay.test",
					      cert_fp),
		     0);
	sctx = tether_tls_ctx_new_server(cert_path, key_path);
	cctx = tether_tls_ctx_new_client();
	cr_assert_not_null(sctx);
	cr_assert_not_null(cctx);
}

/* Empties and removes the temporary directory, whatever a test left. */
static void teardown(void)
{
	struct dirent *de;
	DIR *d;

	tether_alloc_fail_after(0);
	tether_tls_ctx_free(sctx);
	tether_tls_ctx_free(cctx);
	sctx = NULL;
	cctx = NULL;
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
	rmdir(dir);
}

TestSuite(tls, .init = setup, .fini = teardown);

/* Moves every pending ciphertext byte from one side to the other. */
static size_t move(struct tether_tls *from, struct tether_tls *to)
{
	unsigned char buf[4096];
	size_t total = 0, got;

	while (tether_tls_out_pending(from) > 0) {
		cr_assert_eq(tether_tls_out_take(from, buf, sizeof(buf), &got),
			     0);
		cr_assert_gt(got, 0);
		cr_assert_eq(tether_tls_feed(to, buf, got), 0);
		total += got;
	}
	return total;
}

/* Runs both handshakes to completion or first failure. */
static void handshake_pair(struct tether_tls *c, struct tether_tls *s, int *rc,
			   int *rs)
{
	int i;

	*rc = *rs = TETHER_ERR_AGAIN;
	for (i = 0; i < MAX_ROUNDS; i++) {
		*rc = tether_tls_handshake(c);
		move(c, s);
		*rs = tether_tls_handshake(s);
		move(s, c);
		if ((*rc == 0 && *rs == 0) || *rc == TETHER_ERR_TLS ||
		    *rs == TETHER_ERR_TLS)
			return;
	}
}

static void connect_pair(struct tether_tls **c, struct tether_tls **s)
{
	int rc, rs;

	*c = tether_tls_new(cctx, false);
	*s = tether_tls_new(sctx, true);
	cr_assert_not_null(*c);
	cr_assert_not_null(*s);
	handshake_pair(*c, *s, &rc, &rs);
	cr_assert_eq(rc, 0, "client: %s", tether_tls_error(*c));
	cr_assert_eq(rs, 0, "server: %s", tether_tls_error(*s));
}

/* Reads all buffered plaintext into buf at *off (bounded by cap). */
static void drain(struct tether_tls *t, unsigned char *buf, size_t cap,
		  size_t *off)
{
	size_t got;
	int r;

	for (;;) {
		r = tether_tls_read(t, buf + *off, cap - *off, &got);
		if (r == TETHER_ERR_AGAIN)
			break;
		cr_assert_eq(r, 0, "read: %s", tether_tls_error(t));
		cr_assert_gt(got, 0);
		*off += got;
		cr_assert_leq(*off, cap);
		if (*off == cap)
			break;
	}
}

/* Sends len bytes from a to b in chunk-sized writes and checks them. */
static void transfer(struct tether_tls *a, struct tether_tls *b, size_t len,
		     size_t chunk)
{
	unsigned char *src = malloc(len), *dst = malloc(len);
	size_t i, sent = 0, off = 0;

	cr_assert_not_null(src);
	cr_assert_not_null(dst);
	for (i = 0; i < len; i++)
		src[i] = (unsigned char)(i * 131 + (i >> 9));
	while (sent < len) {
		size_t n = len - sent < chunk ? len - sent : chunk;

		cr_assert_eq(tether_tls_write(a, src + sent, n), 0);
		sent += n;
		move(a, b);
		drain(b, dst, len, &off);
	}
	cr_assert_eq(off, len);
	cr_assert_eq(memcmp(src, dst, len), 0);
	free(src);
	free(dst);
}

/*
 * A raw OpenSSL endpoint on memory BIOs, for peers our API refuses to be.
 * The BIOs are owned by the SSL once attached.
 */
struct raw {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *rbio, *wbio;
};

static void raw_init(struct raw *r, SSL_CTX *ctx, bool server)
{
	r->ctx = ctx;
	r->ssl = SSL_new(ctx);
	r->rbio = BIO_new(BIO_s_mem());
	r->wbio = BIO_new(BIO_s_mem());
	cr_assert(r->ssl && r->rbio && r->wbio);
	BIO_set_mem_eof_return(r->rbio, -1);
	SSL_set_bio(r->ssl, r->rbio, r->wbio);
	if (server)
		SSL_set_accept_state(r->ssl);
	else
		SSL_set_connect_state(r->ssl);
}

static void raw_free(struct raw *r)
{
	SSL_free(r->ssl);
	SSL_CTX_free(r->ctx);
	ERR_clear_error();
}

static SSL_CTX *raw_client_ctx(int max_version, const char *alpn)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());
	unsigned char wire[64];
	size_t n;

	cr_assert_not_null(c);
	cr_assert(SSL_CTX_set_max_proto_version(c, max_version));
	SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
	if (alpn) {
		n = strlen(alpn);
		cr_assert_lt(n, sizeof(wire) - 1);
		wire[0] = (unsigned char)n;
		memcpy(wire + 1, alpn, n);
		cr_assert_eq(
		    SSL_CTX_set_alpn_protos(c, wire, (unsigned int)n + 1), 0);
	}
	return c;
}

static void raw_to_tls(struct raw *r, struct tether_tls *t)
{
	unsigned char buf[4096];
	size_t got;

	while (BIO_ctrl_pending(r->wbio) > 0) {
		cr_assert_eq(BIO_read_ex(r->wbio, buf, sizeof(buf), &got), 1);
		cr_assert_eq(tether_tls_feed(t, buf, got), 0);
	}
}

static void tls_to_raw(struct tether_tls *t, struct raw *r)
{
	unsigned char buf[4096];
	size_t got, put;

	while (tether_tls_out_pending(t) > 0) {
		cr_assert_eq(tether_tls_out_take(t, buf, sizeof(buf), &got), 0);
		cr_assert_eq(BIO_write_ex(r->rbio, buf, got, &put), 1);
	}
}

/*
 * Drives a raw peer against one of ours.  Returns our side's final
 * handshake result; *raw_ok says whether the raw side finished.
 */
static int raw_handshake(struct raw *r, struct tether_tls *t, bool *raw_ok)
{
	int i, ours = TETHER_ERR_AGAIN, theirs = 0, why;

	for (i = 0; i < MAX_ROUNDS; i++) {
		/*
		 * SSL_get_error() blames any stale queued error, and must run
		 * before the BIOs are touched again (it reads their flags).
		 */
		ERR_clear_error();
		theirs = SSL_do_handshake(r->ssl);
		why = theirs == 1 ? SSL_ERROR_NONE
				  : SSL_get_error(r->ssl, theirs);
		raw_to_tls(r, t);
		ours = tether_tls_handshake(t);
		tls_to_raw(t, r);
		if (ours == TETHER_ERR_TLS || (ours == 0 && theirs == 1))
			break;
		if (why != SSL_ERROR_NONE && why != SSL_ERROR_WANT_READ)
			break;
	}
	/* Let the raw side see our last flight (an alert, say). */
	ERR_clear_error();
	theirs = SSL_do_handshake(r->ssl);
	*raw_ok = theirs == 1;
	ERR_clear_error();
	return ours;
}

static void raw_client_against_server(int max_version, const char *alpn,
				      const char *want_words)
{
	struct tether_tls *s = tether_tls_new(sctx, true);
	struct raw r;
	bool raw_ok;

	cr_assert_not_null(s);
	raw_init(&r, raw_client_ctx(max_version, alpn), false);
	cr_assert_eq(raw_handshake(&r, s, &raw_ok), TETHER_ERR_TLS);
	cr_assert_not(raw_ok, "raw client completed a forbidden handshake");
	cr_assert_not(tether_tls_is_established(s));
	cr_assert_not_null(strstr(tether_tls_error(s), want_words), "%s",
			   tether_tls_error(s));
	/* Failure latches. */
	cr_assert_eq(tether_tls_handshake(s), TETHER_ERR_TLS);
	raw_free(&r);
	tether_tls_free(s);
}

Test(tls, cert_generate_writes_private_key_and_fingerprint)
{
	char fp[TETHER_TLS_FP_LEN];
	struct stat st;

	cr_assert_eq(stat(key_path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600);
	cr_assert_eq(stat(cert_path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0644);
	cr_assert_eq(tether_tls_cert_fingerprint(cert_path, fp), 0);
	cr_assert_str_eq(fp, cert_fp);
	cr_assert_eq(strncmp(fp, "SHA256:", 7), 0);
	cr_assert_eq(strlen(fp), 50);
	cr_assert_null(strchr(fp, '='));
}

Test(tls, cert_is_self_signed_p256_for_ten_years)
{
	FILE *f = fopen(cert_path, "r");
	X509 *x;
	EVP_PKEY *pub;
	char cn[80];
	time_t nine_years = time(NULL) + 9L * 365 * 86400;

	cr_assert_not_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	cr_assert_not_null(x);
	cr_assert_eq(X509_get_version(x), X509_VERSION_3);
	cr_assert_gt(X509_NAME_get_text_by_NID(X509_get_subject_name(x),
					       NID_commonName, cn, sizeof(cn)),
		     0);
	cr_assert_str_eq(cn, "relay.test");
	pub = X509_get0_pubkey(x);
	cr_assert_not_null(pub);
	cr_assert(EVP_PKEY_is_a(pub, "EC"));
	cr_assert_eq(EVP_PKEY_get_bits(pub), 256);
	cr_assert_eq(X509_verify(x, pub), 1);
	cr_assert_lt(X509_cmp_time(X509_get0_notBefore(x), NULL), 0);
	cr_assert_gt(X509_cmp_time(X509_get0_notAfter(x), &nine_years), 0);
	cr_assert_eq(X509_check_ca(x), 0);
	cr_assert_eq(X509_check_host(x, "relay.test", 0, 0, NULL), 1);
	X509_free(x);
}

Test(tls, cert_generate_is_fresh_and_tightens_existing_key_mode)
{
	char b_crt[128], b_key[128], fp[TETHER_TLS_FP_LEN];
	struct stat st;
	int fd;

	path_in_dir(b_crt, sizeof(b_crt), "b.crt");
	path_in_dir(b_key, sizeof(b_key), "b.key");
	fd = open(b_key, O_WRONLY | O_CREAT, 0666);
	cr_assert_geq(fd, 0);
	cr_assert_eq(fchmod(fd, 0666), 0);
	close(fd);
	/* A free-form name goes in the CN only; NULL fp_out is allowed. */
	cr_assert_eq(tether_tls_cert_generate(b_crt, b_key, "Relay Büro", NULL),
		     0);
	cr_assert_eq(stat(b_key, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600);
	cr_assert_eq(tether_tls_cert_fingerprint(b_crt, fp), 0);
	cr_assert_str_neq(fp, cert_fp);
}

Test(tls, cert_generate_refuses_symlinked_key)
{
	char other[128], link_key[128], b_crt[128];
	struct stat st;
	FILE *f;

	path_in_dir(other, sizeof(other), "other");
	path_in_dir(link_key, sizeof(link_key), "link.key");
	path_in_dir(b_crt, sizeof(b_crt), "b.crt");
	f = fopen(other, "w");
	cr_assert_not_null(f);
	fputs("precious\n", f);
	fclose(f);
	cr_assert_eq(symlink(other, link_key), 0);
	cr_assert_eq(tether_tls_cert_generate(b_crt, link_key, "x", NULL),
		     TETHER_ERR_SYS);
	cr_assert_eq(stat(other, &st), 0);
	cr_assert_eq(st.st_size, 9);
	cr_assert_eq(access(b_crt, F_OK), -1);
}

Test(tls, cert_generate_rejects_bad_arguments)
{
	char b_crt[128], b_key[128];
	char long_name[80];

	path_in_dir(b_crt, sizeof(b_crt), "b.crt");
	path_in_dir(b_key, sizeof(b_key), "b.key");
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	cr_assert_eq(tether_tls_cert_generate(b_crt, b_key, "", NULL),
		     TETHER_ERR_INVALID);
	cr_assert_eq(tether_tls_cert_generate(b_crt, b_key, long_name, NULL),
		     TETHER_ERR_INVALID);
	cr_assert_eq(tether_tls_cert_generate(NULL, b_key, "x", NULL),
		     TETHER_ERR_INVALID);
	cr_assert_eq(
	    tether_tls_cert_generate("/nonexistent/dir/c", b_key, "x", NULL),
	    TETHER_ERR_SYS);
	/* The key written before the certificate failed is removed. */
	cr_assert_eq(access(b_key, F_OK), -1);
}

Test(tls, cert_generate_out_of_memory_leaves_no_files)
{
	char b_crt[128], b_key[128], fp[TETHER_TLS_FP_LEN];

	path_in_dir(b_crt, sizeof(b_crt), "b.crt");
	path_in_dir(b_key, sizeof(b_key), "b.key");
	tether_alloc_fail_after(1);
	cr_assert_eq(tether_tls_cert_generate(b_crt, b_key, "x", fp),
		     TETHER_ERR_NOMEM);
	tether_alloc_fail_after(0);
	cr_assert_eq(fp[0], '\0');
	cr_assert_eq(access(b_crt, F_OK), -1);
	cr_assert_eq(access(b_key, F_OK), -1);
}

Test(tls, cert_fingerprint_errors)
{
	char junk[128], fp[TETHER_TLS_FP_LEN];
	FILE *f;

	cr_assert_eq(tether_tls_cert_fingerprint("/nonexistent/x.crt", fp),
		     TETHER_ERR_NOT_FOUND);
	cr_assert_eq(fp[0], '\0');
	path_in_dir(junk, sizeof(junk), "junk.crt");
	f = fopen(junk, "w");
	cr_assert_not_null(f);
	fputs("not a certificate\n", f);
	fclose(f);
	cr_assert_eq(tether_tls_cert_fingerprint(junk, fp), TETHER_ERR_FORMAT);
	/* The key file is PEM but not a certificate. */
	cr_assert_eq(tether_tls_cert_fingerprint(key_path, fp),
		     TETHER_ERR_FORMAT);
}

Test(tls, server_ctx_rejects_missing_or_mismatched_files)
{
	char b_crt[128], b_key[128];
	struct tether_tls_ctx *c;

	cr_assert_null(tether_tls_ctx_new_server("/nonexistent.crt", key_path));
	cr_assert_null(tether_tls_ctx_new_server(cert_path, "/nonexistent"));
	cr_assert_null(tether_tls_ctx_new_server(key_path, key_path));
	path_in_dir(b_crt, sizeof(b_crt), "b.crt");
	path_in_dir(b_key, sizeof(b_key), "b.key");
	cr_assert_eq(tether_tls_cert_generate(b_crt, b_key, "b", NULL), 0);
	cr_assert_null(tether_tls_ctx_new_server(cert_path, b_key));
	c = tether_tls_ctx_new_server(b_crt, b_key);
	cr_assert_not_null(c);
	tether_tls_ctx_free(c);
}

Test(tls, handshake_and_data_both_ways)
{
	struct tether_tls *c, *s;
	unsigned char buf[64];
	size_t off;

	connect_pair(&c, &s);
	cr_assert(tether_tls_is_established(c));
	cr_assert(tether_tls_is_established(s));
	/* Done is done: further calls are no-ops. */
	cr_assert_eq(tether_tls_handshake(c), 0);
	cr_assert_eq(tether_tls_handshake(s), 0);
	cr_assert_eq(tether_tls_out_pending(c), 0);
	cr_assert_eq(tether_tls_out_pending(s), 0);

	cr_assert_eq(tether_tls_write(c, "hello relay", 11), 0);
	cr_assert_gt(tether_tls_out_pending(c), 11);
	move(c, s);
	off = 0;
	drain(s, buf, sizeof(buf), &off);
	cr_assert_eq(off, 11);
	cr_assert_eq(memcmp(buf, "hello relay", 11), 0);

	cr_assert_eq(tether_tls_write(s, "hi agent", 8), 0);
	move(s, c);
	off = 0;
	drain(c, buf, sizeof(buf), &off);
	cr_assert_eq(off, 8);
	cr_assert_eq(memcmp(buf, "hi agent", 8), 0);

	/* Nothing buffered now. */
	cr_assert_eq(tether_tls_read(c, buf, sizeof(buf), &off),
		     TETHER_ERR_AGAIN);
	cr_assert_eq(off, 0);
	tether_tls_free(c);
	tether_tls_free(s);
}

Test(tls, one_mebibyte_each_way)
{
	struct tether_tls *c, *s;

	connect_pair(&c, &s);
	transfer(c, s, BIG_LEN, 65536);
	/* An odd chunk size crosses record boundaries unevenly. */
	transfer(s, c, BIG_LEN, 100003);
	/* One write far larger than a record. */
	transfer(c, s, BIG_LEN, BIG_LEN);
	tether_tls_free(c);
	tether_tls_free(s);
}

Test(tls, byte_at_a_time_delivery)
{
	struct tether_tls *c = tether_tls_new(cctx, false);
	struct tether_tls *s = tether_tls_new(sctx, true);
	unsigned char b, buf[16];
	size_t got, off = 0;
	int i, rc = TETHER_ERR_AGAIN, rs = TETHER_ERR_AGAIN;

	cr_assert(c && s);
	/* Fragmented input must only ever yield AGAIN, never an error. */
	for (i = 0; i < 100000 && (rc != 0 || rs != 0); i++) {
		if (rc != 0)
			rc = tether_tls_handshake(c);
		if (rs != 0)
			rs = tether_tls_handshake(s);
		cr_assert(rc == 0 || rc == TETHER_ERR_AGAIN);
		cr_assert(rs == 0 || rs == TETHER_ERR_AGAIN);
		if (tether_tls_out_take(c, &b, 1, &got) == 0 && got == 1)
			cr_assert_eq(tether_tls_feed(s, &b, 1), 0);
		if (tether_tls_out_take(s, &b, 1, &got) == 0 && got == 1)
			cr_assert_eq(tether_tls_feed(c, &b, 1), 0);
	}
	cr_assert_eq(rc, 0);
	cr_assert_eq(rs, 0);
	cr_assert_eq(tether_tls_write(c, "split", 5), 0);
	while (tether_tls_out_pending(c) > 0) {
		cr_assert_eq(tether_tls_out_take(c, &b, 1, &got), 0);
		cr_assert_eq(tether_tls_feed(s, &b, 1), 0);
		drain(s, buf, sizeof(buf), &off);
	}
	cr_assert_eq(off, 5);
	cr_assert_eq(memcmp(buf, "split", 5), 0);
	tether_tls_free(c);
	tether_tls_free(s);
}

Test(tls, peer_fingerprint_matches_cert_file)
{
	struct tether_tls *c, *s;
	char fp[TETHER_TLS_FP_LEN], file_fp[TETHER_TLS_FP_LEN];

	c = tether_tls_new(cctx, false);
	cr_assert_not_null(c);
	cr_assert_eq(tether_tls_peer_fingerprint(c, fp), TETHER_ERR_STATE);
	tether_tls_free(c);

	connect_pair(&c, &s);
	cr_assert_eq(tether_tls_peer_fingerprint(c, fp), 0);
	cr_assert_eq(tether_tls_cert_fingerprint(cert_path, file_fp), 0);
	cr_assert_str_eq(fp, file_fp);
	cr_assert_str_eq(fp, cert_fp);
	cr_assert_eq(strncmp(fp, "SHA256:", 7), 0);
	cr_assert_eq(strlen(fp), 50);
	/* Clients present no certificate. */
	cr_assert_eq(tether_tls_peer_fingerprint(s, fp), TETHER_ERR_NOT_FOUND);
	tether_tls_free(c);
	tether_tls_free(s);
}

Test(tls, tls12_client_is_refused)
{
	raw_client_against_server(TLS1_2_VERSION, TETHER_TLS_ALPN, "TLS 1.3");
}

Test(tls, wrong_alpn_is_refused)
{
	raw_client_against_server(TLS1_3_VERSION, "http/1.1", "ALPN");
}

Test(tls, missing_alpn_is_refused)
{
	raw_client_against_server(TLS1_3_VERSION, NULL, "ALPN");
}

Test(tls, raw_tls13_client_with_alpn_is_accepted)
{
	struct tether_tls *s = tether_tls_new(sctx, true);
	struct raw r;
	bool raw_ok;

	cr_assert_not_null(s);
	raw_init(&r, raw_client_ctx(TLS1_3_VERSION, TETHER_TLS_ALPN), false);
	cr_assert_eq(raw_handshake(&r, s, &raw_ok), 0, "%s",
		     tether_tls_error(s));
	cr_assert(raw_ok);
	cr_assert(tether_tls_is_established(s));
	raw_free(&r);
	tether_tls_free(s);
}

Test(tls, client_refuses_server_without_alpn)
{
	struct tether_tls *c = tether_tls_new(cctx, false);
	SSL_CTX *sc = SSL_CTX_new(TLS_server_method());
	struct raw r;
	bool raw_ok;

	cr_assert_not_null(c);
	cr_assert_not_null(sc);
	cr_assert_eq(
	    SSL_CTX_use_certificate_file(sc, cert_path, SSL_FILETYPE_PEM), 1);
	cr_assert_eq(
	    SSL_CTX_use_PrivateKey_file(sc, key_path, SSL_FILETYPE_PEM), 1);
	raw_init(&r, sc, true);
	cr_assert_eq(raw_handshake(&r, c, &raw_ok), TETHER_ERR_TLS);
	cr_assert_str_eq(tether_tls_error(c),
			 "relay did not negotiate ALPN tether/1");
	cr_assert_not(tether_tls_is_established(c));
	cr_assert_eq(tether_tls_write(c, "x", 1), TETHER_ERR_TLS);
	raw_free(&r);
	tether_tls_free(c);
}

Test(tls, shutdown_reaches_peer_as_closed)
{
	struct tether_tls *c, *s;
	unsigned char buf[16];
	size_t got;

	connect_pair(&c, &s);
	cr_assert_eq(tether_tls_write(c, "last", 4), 0);
	cr_assert_eq(tether_tls_shutdown(c), 0);
	move(c, s);
	/* Data sent before close_notify still arrives first. */
	cr_assert_eq(tether_tls_read(s, buf, sizeof(buf), &got), 0);
	cr_assert_eq(got, 4);
	cr_assert_eq(tether_tls_read(s, buf, sizeof(buf), &got),
		     TETHER_ERR_CLOSED);
	cr_assert_eq(got, 0);
	cr_assert_eq(tether_tls_read(s, buf, sizeof(buf), &got),
		     TETHER_ERR_CLOSED);
	/* The server answers with its own close_notify. */
	cr_assert_eq(tether_tls_shutdown(s), 0);
	move(s, c);
	cr_assert_eq(tether_tls_read(c, buf, sizeof(buf), &got),
		     TETHER_ERR_CLOSED);
	tether_tls_free(c);
	tether_tls_free(s);
}

Test(tls, garbage_before_handshake_is_tls_error)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: relay\r\n\r\n";
	struct tether_tls *s = tether_tls_new(sctx, true);
	const char *why;

	cr_assert_not_null(s);
	cr_assert_eq(tether_tls_feed(s, http, sizeof(http) - 1), 0);
	cr_assert_eq(tether_tls_handshake(s), TETHER_ERR_TLS);
	why = tether_tls_error(s);
	cr_assert_not_null(why);
	cr_assert_gt(strlen(why), 0);
	cr_assert_eq(tether_tls_handshake(s), TETHER_ERR_TLS);
	tether_tls_free(s);
}

Test(tls, garbage_after_handshake_is_tls_error)
{
	struct tether_tls *c, *s;
	unsigned char junk[4096], buf[64];
	size_t i, got;

	connect_pair(&c, &s);
	/* Looks like an application_data record header, then noise. */
	junk[0] = 0x17;
	junk[1] = 0x03;
	junk[2] = 0x03;
	junk[3] = 0x0f;
	junk[4] = 0xfb;
	for (i = 5; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 7 + 3);
	cr_assert_eq(tether_tls_feed(s, junk, sizeof(junk)), 0);
	cr_assert_eq(tether_tls_read(s, buf, sizeof(buf), &got),
		     TETHER_ERR_TLS);
	cr_assert_not(tether_tls_is_established(s));
	cr_assert_eq(tether_tls_write(s, "x", 1), TETHER_ERR_TLS);
	cr_assert_eq(tether_tls_shutdown(s), TETHER_ERR_TLS);
	tether_tls_free(c);
	tether_tls_free(s);
}

Test(tls, plaintext_before_handshake_is_state_error)
{
	struct tether_tls *c = tether_tls_new(cctx, false);
	unsigned char buf[8];
	size_t got = 99;

	cr_assert_not_null(c);
	cr_assert_not(tether_tls_is_established(c));
	cr_assert_eq(tether_tls_read(c, buf, sizeof(buf), &got),
		     TETHER_ERR_STATE);
	cr_assert_eq(got, 0);
	cr_assert_eq(tether_tls_write(c, "x", 1), TETHER_ERR_STATE);
	cr_assert_eq(tether_tls_shutdown(c), TETHER_ERR_STATE);
	cr_assert_eq(tether_tls_out_take(c, buf, sizeof(buf), &got), 0);
	cr_assert_eq(got, 0);
	tether_tls_free(c);
}

Test(tls, error_string_never_null)
{
	struct tether_tls *c = tether_tls_new(cctx, false);

	cr_assert_not_null(tether_tls_error(NULL));
	cr_assert_not_null(c);
	cr_assert_not_null(tether_tls_error(c));
	cr_assert_not(tether_tls_is_established(NULL));
	cr_assert_eq(tether_tls_out_pending(NULL), 0);
	tether_tls_free(c);
}

Test(tls, role_must_match_context)
{
	cr_assert_null(tether_tls_new(sctx, false));
	cr_assert_null(tether_tls_new(cctx, true));
	cr_assert_null(tether_tls_new(NULL, true));
}

Test(tls, free_null_is_fine)
{
	tether_tls_free(NULL);
	tether_tls_ctx_free(NULL);
}

Test(tls, out_of_memory_is_clean)
{
	struct tether_tls_ctx *c;
	struct tether_tls *t;

	tether_alloc_fail_after(1);
	t = tether_tls_new(sctx, true);
	tether_alloc_fail_after(0);
	cr_assert_null(t);

	tether_alloc_fail_after(1);
	c = tether_tls_ctx_new_client();
	tether_alloc_fail_after(0);
	cr_assert_null(c);

	tether_alloc_fail_after(1);
	c = tether_tls_ctx_new_server(cert_path, key_path);
	tether_alloc_fail_after(0);
	cr_assert_null(c);
}
