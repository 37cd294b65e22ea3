/*
 * Ed25519 identity tests: RFC 8032's first vector, key files (0600, open
 * permissions refused, junk refused), sign/verify round trips and the
 * agent authentication message layout.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/proto.h>
#include <tether/sign.h>

static char dir[] = "/tmp/tether-sign-XXXXXX";

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(sign, .init = setup, .fini = teardown);

Test(sign, rfc8032_vector1_verifies)
{
	uint8_t pub[32], sig[64];

	cr_assert_eq(tether_hex_decode("d75a980182b10ab7d54bfed3c964073a"
				       "0ee172f3daa62325af021a68f707511a",
				       pub, sizeof(pub)),
		     0);
	cr_assert_eq(tether_hex_decode("e5564300c360ac729086e2cc806e828a"
				       "84877f1eb8e5d974d873e06522490155"
				       "5fb8821590a33bacc61e39701cf9b46b"
				       "d25bf5f0595bbe24655141438e7a100b",
				       sig, sizeof(sig)),
		     0);
	cr_assert_eq(tether_sign_verify(pub, "", 0, sig), 0);
	sig[10] ^= 1;
	cr_assert_eq(tether_sign_verify(pub, "", 0, sig), TETHER_ERR_AUTH);
	sig[10] ^= 1;
	cr_assert_eq(tether_sign_verify(pub, "x", 1, sig), TETHER_ERR_AUTH);
}

Test(sign, generate_load_sign_verify)
{
	char path[256];
	uint8_t pub[32], pub2[32], sig[64];
	struct tether_sign_key *k = NULL;
	struct stat st;

	snprintf(path, sizeof(path), "%s/agent.key", dir);
	cr_assert_eq(tether_sign_key_generate(path, pub), 0);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	cr_assert_eq(tether_sign_key_load(path, &k, pub2), 0);
	cr_assert_eq(memcmp(pub, pub2, 32), 0);
	cr_assert_eq(tether_sign(k, "hello", 5, sig), 0);
	cr_assert_eq(tether_sign_verify(pub, "hello", 5, sig), 0);
	cr_assert_eq(tether_sign_verify(pub, "hellp", 5, sig), TETHER_ERR_AUTH);
	tether_sign_key_free(k);
	tether_sign_key_free(NULL);

	/* A second key replaces the first and differs from it. */
	cr_assert_eq(tether_sign_key_generate(path, pub2), 0);
	cr_assert_neq(memcmp(pub, pub2, 32), 0);
}

Test(sign, load_refuses_open_permissions_and_junk)
{
	char path[256];
	uint8_t pub[32];
	struct tether_sign_key *k = NULL;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/agent.key", dir);
	cr_assert_eq(tether_sign_key_load(path, &k, pub), TETHER_ERR_NOT_FOUND);
	cr_assert_eq(tether_sign_key_generate(path, pub), 0);
	cr_assert_eq(chmod(path, 0644), 0);
	cr_assert_eq(tether_sign_key_load(path, &k, pub), TETHER_ERR_PERM);
	cr_assert_null(k);

	fp = fopen(path, "w");
	cr_assert_not_null(fp);
	fputs("-----BEGIN PRIVATE KEY-----\nnonsense\n", fp);
	fclose(fp);
	cr_assert_eq(chmod(path, 0600), 0);
	cr_assert_eq(tether_sign_key_load(path, &k, pub), TETHER_ERR_FORMAT);
	cr_assert_null(k);
}

/*
 * A console signs under a label of its own, over the challenge and its
 * public key: no signature made for one kind of peer passes for the other.
 */
Test(sign, console_auth_message_is_not_an_agents)
{
	uint8_t ch[TETHER_AGENT_CHALLENGE_LEN], pub[TETHER_SIGN_PUB_LEN];
	uint8_t out[128], agent[128], sig[TETHER_SIGN_SIG_LEN];
	size_t len = 0, alen = 0, ctx = sizeof(TETHER_CONSOLE_AUTH_CONTEXT);
	char path[] = "/tmp/tether-sign-console-XXXXXX", fp[64];
	struct tether_sign_key *k = NULL;
	int fd;

	memset(ch, 0xcd, sizeof(ch));
	fd = mkstemp(path);
	cr_assert(fd >= 0);
	close(fd);
	unlink(path);
	cr_assert_eq(tether_sign_key_generate(path, pub), 0);
	cr_assert_eq(tether_sign_key_load(path, &k, NULL), 0);
	unlink(path);
	cr_assert_eq(
	    tether_sign_console_auth_message(ch, pub, out, sizeof(out), &len),
	    0);
	cr_assert_eq(len, ctx + sizeof(ch) + sizeof(pub));
	cr_assert_eq(memcmp(out, "tether/1 console auth\0", ctx), 0);
	cr_assert_eq(memcmp(out + ctx, ch, sizeof(ch)), 0);
	cr_assert_eq(memcmp(out + ctx + sizeof(ch), pub, sizeof(pub)), 0);
	cr_assert_eq(
	    tether_sign_console_auth_message(ch, pub, out, len - 1, &len),
	    TETHER_ERR_TOO_LARGE);
	cr_assert_eq(
	    tether_sign_console_auth_message(ch, pub, out, sizeof(out), &len),
	    0);
	cr_assert_eq(tether_sign(k, out, len, sig), 0);
	cr_assert_eq(tether_sign_verify(pub, out, len, sig), 0);
	/* The same challenge as an agent's message: the signature fails. */
	cr_assert_eq(
	    tether_sign_auth_message(ch, "web-01", agent, sizeof(agent), &alen),
	    0);
	cr_assert_eq(tether_sign_verify(pub, agent, alen, sig),
		     TETHER_ERR_AUTH);
	/* Its public half and fingerprint, as OpenSSH words them. */
	cr_assert_eq(tether_sign_key_public(k, out), 0);
	cr_assert_arr_eq(out, pub, sizeof(pub));
	cr_assert_eq(tether_sign_key_fingerprint(pub, fp, sizeof(fp)), 0);
	cr_assert_eq(strlen(fp), 7 + 43, "%s", fp);
	cr_assert_eq(strncmp(fp, "SHA256:", 7), 0);
	cr_assert_eq(tether_sign_key_fingerprint(pub, fp, 20),
		     TETHER_ERR_TOO_LARGE);
	tether_sign_key_free(k);
}

Test(sign, auth_message_layout)
{
	uint8_t ch[TETHER_AGENT_CHALLENGE_LEN], out[128];
	size_t len = 0, ctx = sizeof(TETHER_AGENT_AUTH_CONTEXT);

	memset(ch, 0xab, sizeof(ch));
	cr_assert_eq(
	    tether_sign_auth_message(ch, "web-01", out, sizeof(out), &len), 0);
	cr_assert_eq(len, ctx + sizeof(ch) + 6);
	cr_assert_eq(memcmp(out, "tether/1 agent auth\0", ctx), 0);
	cr_assert_eq(memcmp(out + ctx, ch, sizeof(ch)), 0);
	cr_assert_eq(memcmp(out + ctx + sizeof(ch), "web-01", 6), 0);
	cr_assert_eq(tether_sign_auth_message(ch, "web-01", out, len - 1, &len),
		     TETHER_ERR_TOO_LARGE);
}
