/*
 * Unit tests for agent/diag/redact.c: a corpus of realistic lines that
 * carry secrets (each must lose the secret and keep its context), lines
 * that only look suspicious (each must come out unchanged), and large
 * hostile inputs that must still be redacted in linear time.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <tether/alloc.h>

#include "diag/redact.h"

struct secret_case {
	const char *in;
	const char *secret; /* must be gone */
	const char *kept;   /* must still be there */
};

static const struct secret_case secrets[] = {
    /* key=value, key: value, "key": "value" */
    {"Jan 12 10:00:01 web1 app[311]: login password=hunter2xyz user=bob",
     "hunter2xyz", "user=bob"},
    {"Jan 12 10:00:01 web1 app[311]: db_password=S3cr3t! host=db1", "S3cr3t!",
     "host=db1"},
    {"passwd: hunter2xyz", "hunter2xyz", "passwd: "},
    {"connect pwd=Tr0ub4dor&user=bob", "Tr0ub4dor", "&user=bob"},
    {"worker started secret=abcdef0123456789 queue=mail", "abcdef0123456789",
     "queue=mail"},
    {"auth ok token=5f2b1c9e8d7a6b5c retry=0", "5f2b1c9e8d7a6b5c", "retry=0"},
    {"api_key=AbCdEf123456 region=eu-west-1", "AbCdEf123456",
     "region=eu-west-1"},
    {"apikey: q1w2e3r4t5y6u7i8", "q1w2e3r4t5y6u7i8", "apikey: "},
    {"X-Api-Key: 9f8e7d6c5b4a39281706 from 10.1.2.3", "9f8e7d6c5b4a39281706",
     "from 10.1.2.3"},
    {"access_key = AKIDEXAMPLE0987654321", "AKIDEXAMPLE0987654321",
     "access_key = "},
    {"oauth client_secret=Zx9Yw8Vu7Ts6 client_id=myapp", "Zx9Yw8Vu7Ts6",
     "client_id=myapp"},
    {"{\"user\": \"bob\", \"password\": \"pa ss\\\"word1\", \"port\": 5432}",
     "ss\\\"word1", "\"port\": 5432"},
    {"{\"access_token\":\"ya29.a0AfH6SMBx\",\"token_type\":\"Bearer\"}",
     "ya29.a0AfH6SMBx", "\"token_type\":\"Bearer\""},
    {"$config['db_password'] = 'm3tall1ca';", "m3tall1ca", "$config['db_"},
    {"  'password' => 'l4ravel-pw',", "l4ravel-pw", "'password' => '"},
    {"spring.datasource.password=Spr1ngS3cret", "Spr1ngS3cret",
     "spring.datasource.password="},
    {"<password>xmlS3cret</password><user>bob</user>", "xmlS3cret",
     "<user>bob</user>"},
    /* ps command lines */
    {"/usr/bin/mysql -uroot -pS3cret! -h db1 shop", "S3cret!", "-h db1 shop"},
    {"mysqldump --user=root --password=Dump3r! shop", "Dump3r!", "--user=root"},
    {"/opt/app/bin/server --password hunter2xyz --port 8080", "hunter2xyz",
     "--port 8080"},
    {"sshpass -p 'Ssh!pass99' ssh admin@10.0.0.9", "Ssh!pass99",
     "ssh admin@10.0.0.9"},
    {"redis-cli -h cache1 -a R3disPw0rd ping", "R3disPw0rd", "ping"},
    {"curl -u bob:CurlPw123 https://intranet/api", "CurlPw123",
     "https://intranet/api"},
    {"java -Djavax.net.ssl.keyStorePassword=ch4ngeit -jar app.jar", "ch4ngeit",
     "-jar app.jar"},
    /* HTTP headers */
    {"curl -H 'Authorization: Bearer abc.DEF-123_xyz' https://api.example.com",
     "abc.DEF-123_xyz", "https://api.example.com"},
    {"GET /v1/me Authorization: Basic dXNlcjpwYXNzd29yZA== 200",
     "dXNlcjpwYXNzd29yZA==", "Authorization: Basic "},
    {"Proxy-Authorization: Digest username=\"bob\", response=\"6629fae4\"",
     "6629fae4", "Proxy-Authorization: Digest "},
    {"curl -H \"Cookie: session=0a1b2c3d4e; theme=dark\" https://shop",
     "0a1b2c3d4e", "https://shop"},
    {"Set-Cookie: sid=77aa88bb99cc; Path=/; HttpOnly", "77aa88bb99cc",
     "Set-Cookie: "},
    /* URLs */
    {"git clone https://bob:gitPassw0rd@git.example.com/repo.git",
     "gitPassw0rd", "https://bob:"},
    {"DATABASE_URL=postgres://app:pgS3cret@db1:5432/app", "pgS3cret",
     "@db1:5432/app"},
    {"error connecting to amqp://guest:Rabb1tPw@mq.internal:5672/", "Rabb1tPw",
     "error connecting to amqp://guest:"},
    /* docker and environment */
    {"docker run -e MYSQL_ROOT_PASSWORD=d0ckerPw -d mysql:8", "d0ckerPw",
     "-d mysql:8"},
    {"env: GITHUB_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789 CI=true",
     "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "CI=true"},
    {"PGPASSWORD=pgEnvPw psql -h db1", "pgEnvPw", "psql -h db1"},
    /* well-known token shapes, wherever they appear */
    {"using key AKIAIOSFODNN7EXAMPLE for s3", "AKIAIOSFODNN7EXAMPLE", "for s3"},
    {"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     "wJalrXUtnFEMI", "aws_secret_access_key = "},
    {"pushed with gho_16C7e42F292c6912E7710c838347Ae178B4a ok",
     "gho_16C7e42F292c6912E7710c838347Ae178B4a", " ok"},
    {"cfg github_pat_11ABCDEFG0123456789_abcdefghijklmnop end",
     "github_pat_11ABCDEFG0123456789_abcdefghijklmnop", " end"},
    {"slack hook xoxb-123456789012-abcdefABCDEF failed",
     "xoxb-123456789012-abcdefABCDEF", " failed"},
    {"charge via sk_live_4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWDarjtT1zdp7dc",
     "charge via "},
    {"maps key AIzaSyA-1234567890abcdefghijklmnopqrstu", "AIzaSyA-12345",
     "maps key "},
    {"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.dBjftJeZ4CVPmB92K27uhbUJU1"
     " accepted",
     "dBjftJeZ4CVPmB92K27uhbUJU1", " accepted"},
    {"id_token=eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl&state=1",
     "eyJpc3MiOiJ4In0", "&state=1"},
    /* tether's own tokens, bare (not after a key) */
    {"Enrollment token (one use): "
     "tte_Q2hhbmdlTWVQbGVhc2UtMDEyMzQ1Njc4OWFiY2RlZg="
     " valid until noon",
     "Q2hhbmdlTWVQbGVhc2UtMDEy", " valid until noon"},
    {"echo tt_12_0123456789abcdef0123456789abcdef0123456789abcdef01234567"
     "89abcdef > ~/.tether",
     "0123456789abcdef0123", "> ~/.tether"},
    /* private keys */
    {"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7sZ\nq0bXr9Q=\n"
     "-----END RSA PRIVATE KEY-----\nafter",
     "MIIEowIBAAKCAQEA7sZ", "-----END RSA PRIVATE KEY-----\nafter"},
    {"{\"key\":\"-----BEGIN PRIVATE KEY-----\\nMIGHAgEAMBMG\\n-----END "
     "PRIVATE KEY-----\\n\"}",
     "MIGHAgEAMBMG", "-----END PRIVATE KEY-----"},
    {"log: -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk truncated",
     "b3BlbnNzaC1rZXk", "log: -----BEGIN OPENSSH PRIVATE KEY-----"},
};

static const char *const innocent[] = {
    "password policy updated",
    "token bucket refilled",
    "Failed password for invalid user bob from 10.0.0.5 port 22 ssh2",
    "Accepted password for bob from 10.0.0.5 port 22 ssh2",
    "pam_unix(passwd:chauthtok): password changed for bob",
    "passwd: all authentication tokens updated successfully.",
    "sudo: pam_unix(sudo:auth): authentication failure; logname=bob uid=1000",
    "GET /api/v1/tokens?page=2 HTTP/1.1 200",
    "PWD=/home/bob OLDPWD=/tmp SHELL=/bin/bash",
    "kernel: [    1.234567] random: crng init done",
    "Started Session 42 of User bob.",
    "https://example.com/login?next=/home",
    "ssh bob@example.com -p 2222",
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END "
    "CERTIFICATE-----",
    "the secret is to keep the token count low",
    "\"token_type\": \"bearer\", \"expires_in\": 3600",
    "tt_1 and tte_ are token prefixes",
    "",
};

static char *redact(const char *in)
{
	char *out = agent_redact(in);

	cr_assert_not_null(out, "no output for: %s", in);
	return out;
}

Test(redact, secrets_are_gone_context_stays)
{
	size_t i;

	cr_assert_geq(sizeof(secrets) / sizeof(secrets[0]), 40);
	for (i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
		char *out = redact(secrets[i].in);

		cr_expect_null(strstr(out, secrets[i].secret),
			       "secret left in: %s -> %s", secrets[i].in, out);
		cr_expect_not_null(strstr(out, secrets[i].kept),
				   "context lost: %s -> %s", secrets[i].in,
				   out);
		cr_expect_not_null(strstr(out, "[REDACTED]"), "no mark: %s",
				   out);
		tether_free(out);
	}
}

Test(redact, innocent_lines_unchanged)
{
	size_t i;

	cr_assert_geq(sizeof(innocent) / sizeof(innocent[0]), 10);
	for (i = 0; i < sizeof(innocent) / sizeof(innocent[0]); i++) {
		char *out = redact(innocent[i]);

		cr_expect_str_eq(out, innocent[i]);
		tether_free(out);
	}
}

Test(redact, exact_forms)
{
	static const struct {
		const char *in;
		const char *out;
	} cases[] = {
	    {"password=hunter2 user=bob", "password=[REDACTED] user=bob"},
	    {"mysql -uroot -pS3cret! db", "mysql -uroot -p[REDACTED] db"},
	    {"mysql -uroot -p db", "mysql -uroot -p db"},
	    {"https://bob:pw@host/x", "https://bob:[REDACTED]@host/x"},
	    {"Authorization: Bearer abc", "Authorization: Bearer [REDACTED]"},
	    {"{\"password\":\"x\"}", "{\"password\":\"[REDACTED]\"}"},
	    {"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE "
	     "KEY-----",
	     "-----BEGIN EC PRIVATE KEY-----\n[REDACTED]\n-----END EC PRIVATE "
	     "KEY-----"},
	    {"-----BEGIN PRIVATE KEY-----\nAAAA\nBBBB",
	     "-----BEGIN PRIVATE KEY-----\n[REDACTED]"},
	    {"token=", "token="},
	    {"password=[REDACTED] again", "password=[REDACTED] again"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = redact(cases[i].in);

		cr_expect_str_eq(out, cases[i].out, "for %s", cases[i].in);
		tether_free(out);
	}
}

/* A multi-line text: each line is redacted on its own terms. */
Test(redact, multiline_commands_do_not_leak_into_next_line)
{
	char *out = redact("mysql -uroot -pS3cret!\nls -pdir\n");

	cr_expect_str_eq(out, "mysql -uroot -p[REDACTED]\nls -pdir\n");
	tether_free(out);
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) +
	       (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Fills 1 MiB with unit repeated and redacts it within a second. */
static void redact_big(const char *unit, const char *secret)
{
	size_t size = 1024 * 1024, ul = strlen(unit), pos;
	struct timespec t0;
	char *in, *out;
	double dt;

	in = tether_malloc(size + 1);
	cr_assert_not_null(in);
	for (pos = 0; pos + ul <= size; pos += ul)
		memcpy(in + pos, unit, ul);
	in[pos] = '\0';
	clock_gettime(CLOCK_MONOTONIC, &t0);
	out = agent_redact(in);
	dt = seconds_since(&t0);
	cr_assert_not_null(out);
	cr_expect_lt(dt, 1.0, "%s x %zu took %.3f s", unit, size / ul, dt);
	if (secret != NULL)
		cr_expect_null(strstr(out, secret), "%s left in", secret);
	tether_free(out);
	tether_free(in);
}

Test(redact, megabyte_inputs_are_linear)
{
	redact_big("Jan 12 web1 app: login password=hunter2xyz user=bob\n",
		   "hunter2xyz");
	redact_big("eyJa-", NULL);
	redact_big("eyJa.", NULL);
	redact_big("pwd=/", NULL);
	redact_big("password: ", NULL);
	redact_big("--password ", NULL);
	redact_big("-----BEGIN ", NULL);
	redact_big("-----BEGIN RSA PRIVATE KEY-----", NULL);
	redact_big("a://b:", NULL);
	redact_big("x://", NULL);
	redact_big("\"password\": \"", NULL);
	redact_big("mysql -p", NULL);
	redact_big("Authorization: x ", NULL);
	redact_big("a", NULL);
}
