/*
 * Ed25519 keys for enrolled agents (tether/sign.h), on OpenSSL's EVP API.
 * The private key file is written 0600 through a temporary file, and a
 * file others may read is refused on load, as OpenSSH refuses a private
 * key with open permissions: a copied key is a stolen identity.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <tether/alloc.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/proto.h>
#include <tether/sign.h>

struct tether_sign_key {
	EVP_PKEY *pkey;
};

static int public_half(EVP_PKEY *pkey, uint8_t pub[TETHER_SIGN_PUB_LEN])
{
	size_t len = TETHER_SIGN_PUB_LEN;

	if (EVP_PKEY_get_raw_public_key(pkey, pub, &len) != 1 ||
	    len != TETHER_SIGN_PUB_LEN)
		return TETHER_ERR_CRYPTO;
	return 0;
}

int tether_sign_key_generate(const char *path, uint8_t pub[TETHER_SIGN_PUB_LEN])
{
	EVP_PKEY *pkey = NULL;
	char tmp[4096];
	FILE *fp;
	int fd, err = TETHER_ERR_CRYPTO;

	if (!path || !pub)
		return TETHER_ERR_INVALID;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid()) >=
	    (int)sizeof(tmp))
		return TETHER_ERR_TOO_LARGE;
	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!pkey)
		return TETHER_ERR_CRYPTO;
	if (public_half(pkey, pub) < 0)
		goto out;
	/*
	 * A new file, never one found there: O_TRUNC on a planted hard link
	 * or an earlier file would write the key into (and chmod) whatever
	 * it is.  A leftover of a crashed run with our pid goes first.
	 */
	if (unlink(tmp) != 0 && errno != ENOENT) {
		err = TETHER_ERR_SYS;
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0) {
		err = TETHER_ERR_SYS;
		goto out;
	}
	/* The umask may not have narrowed an existing file's mode. */
	fp = fchmod(fd, 0600) == 0 ? fdopen(fd, "w") : NULL;
	if (!fp) {
		close(fd);
		unlink(tmp);
		err = TETHER_ERR_SYS;
		goto out;
	}
	if (PEM_write_PrivateKey(fp, pkey, NULL, NULL, 0, NULL, NULL) != 1) {
		fclose(fp);
		unlink(tmp);
		goto out;
	}
	if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
		fclose(fp);
		unlink(tmp);
		err = TETHER_ERR_SYS;
		goto out;
	}
	if (fclose(fp) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		err = TETHER_ERR_SYS;
		goto out;
	}
	err = 0;
out:
	EVP_PKEY_free(pkey);
	return err;
}

int tether_sign_key_load(const char *path, struct tether_sign_key **out,
			 uint8_t pub[TETHER_SIGN_PUB_LEN])
{
	struct tether_sign_key *k;
	struct stat st;
	EVP_PKEY *pkey;
	FILE *fp;
	int fd;

	if (!path || !out)
		return TETHER_ERR_INVALID;
	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? TETHER_ERR_NOT_FOUND : TETHER_ERR_SYS;
	if (fstat(fd, &st) != 0) {
		close(fd);
		return TETHER_ERR_SYS;
	}
	if (st.st_mode & 077) {
		close(fd);
		return TETHER_ERR_PERM;
	}
	fp = fdopen(fd, "r");
	if (!fp) {
		close(fd);
		return TETHER_ERR_SYS;
	}
	pkey = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	if (!pkey || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(pkey);
		return TETHER_ERR_FORMAT;
	}
	if (pub && public_half(pkey, pub) < 0) {
		EVP_PKEY_free(pkey);
		return TETHER_ERR_CRYPTO;
	}
	k = tether_calloc(1, sizeof(*k));
	if (!k) {
		EVP_PKEY_free(pkey);
		return TETHER_ERR_NOMEM;
	}
	k->pkey = pkey;
	*out = k;
	return 0;
}

void tether_sign_key_free(struct tether_sign_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	tether_free(k);
}

int tether_sign_key_public(const struct tether_sign_key *k,
			   uint8_t pub[TETHER_SIGN_PUB_LEN])
{
	if (!k || !pub)
		return TETHER_ERR_INVALID;
	return public_half(k->pkey, pub);
}

int tether_sign_key_fingerprint(const uint8_t pub[TETHER_SIGN_PUB_LEN],
				char *out, size_t outlen)
{
	static const char prefix[] = "SHA256:";
	uint8_t hash[TETHER_SHA256_LEN];
	int r;

	if (!pub || !out || outlen < sizeof(prefix))
		return TETHER_ERR_INVALID;
	r = tether_sha256(pub, TETHER_SIGN_PUB_LEN, hash);
	if (r != 0)
		return r;
	memcpy(out, prefix, sizeof(prefix) - 1);
	return tether_base64_encode(hash, sizeof(hash),
				    out + sizeof(prefix) - 1,
				    outlen - (sizeof(prefix) - 1));
}

int tether_sign(const struct tether_sign_key *k, const void *msg, size_t n,
		uint8_t sig[TETHER_SIGN_SIG_LEN])
{
	EVP_MD_CTX *ctx;
	size_t len = TETHER_SIGN_SIG_LEN;
	int err = TETHER_ERR_CRYPTO;

	if (!k || (!msg && n) || !sig)
		return TETHER_ERR_INVALID;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return TETHER_ERR_NOMEM;
	/* Ed25519 is one-shot: no digest, the whole message at once. */
	if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
	    EVP_DigestSign(ctx, sig, &len, msg, n) == 1 &&
	    len == TETHER_SIGN_SIG_LEN)
		err = 0;
	EVP_MD_CTX_free(ctx);
	return err;
}

int tether_sign_verify(const uint8_t pub[TETHER_SIGN_PUB_LEN], const void *msg,
		       size_t n, const uint8_t sig[TETHER_SIGN_SIG_LEN])
{
	EVP_PKEY *pkey;
	EVP_MD_CTX *ctx;
	int err = TETHER_ERR_AUTH;

	if (!pub || (!msg && n) || !sig)
		return TETHER_ERR_INVALID;
	pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub,
					   TETHER_SIGN_PUB_LEN);
	if (!pkey)
		return TETHER_ERR_AUTH;
	ctx = EVP_MD_CTX_new();
	if (!ctx) {
		EVP_PKEY_free(pkey);
		return TETHER_ERR_NOMEM;
	}
	if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
	    EVP_DigestVerify(ctx, sig, TETHER_SIGN_SIG_LEN, msg, n) == 1)
		err = 0;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	return err;
}

/* context with its NUL, the challenge, then tail: one layout for both. */
static int auth_message(const char *context, const uint8_t *challenge,
			const void *tail, size_t tail_len, uint8_t *out,
			size_t outlen, size_t *len)
{
	size_t ctx_len = strlen(context) + 1;

	if (outlen < ctx_len + TETHER_AGENT_CHALLENGE_LEN ||
	    outlen - ctx_len - TETHER_AGENT_CHALLENGE_LEN < tail_len)
		return TETHER_ERR_TOO_LARGE;
	memcpy(out, context, ctx_len);
	memcpy(out + ctx_len, challenge, TETHER_AGENT_CHALLENGE_LEN);
	memcpy(out + ctx_len + TETHER_AGENT_CHALLENGE_LEN, tail, tail_len);
	*len = ctx_len + TETHER_AGENT_CHALLENGE_LEN + tail_len;
	return 0;
}

int tether_sign_auth_message(const uint8_t *challenge, const char *name,
			     uint8_t *out, size_t outlen, size_t *len)
{
	if (!challenge || !name || !out || !len)
		return TETHER_ERR_INVALID;
	return auth_message(TETHER_AGENT_AUTH_CONTEXT, challenge, name,
			    strlen(name), out, outlen, len);
}

int tether_sign_console_auth_message(const uint8_t *challenge,
				     const uint8_t pub[TETHER_SIGN_PUB_LEN],
				     uint8_t *out, size_t outlen, size_t *len)
{
	if (!challenge || !pub || !out || !len)
		return TETHER_ERR_INVALID;
	return auth_message(TETHER_CONSOLE_AUTH_CONTEXT, challenge, pub,
			    TETHER_SIGN_PUB_LEN, out, outlen, len);
}
