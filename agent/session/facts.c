/*
 * Facts about this machine (facts.h) that the agent sends with join and
 * enroll, so the technician sees which computer answered: host name,
 * operating system (PRETTY_NAME from os-release plus the kernel) and the
 * user the commands will run as.  Everything is best effort; nothing here
 * may fail the join.
 */
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "diag/os-release.h"
#include "diag/text.h"
#include "session/facts.h"

#define OS_RELEASE_LINE 512
#define OS_RELEASE_LINES 256

/* Copies s into out, truncating; out is always terminated. */
static void copy_str(char *out, size_t outlen, const char *s)
{
	size_t n = strnlen(s, outlen - 1);

	memcpy(out, s, n);
	out[n] = '\0';
}

/* Appends s to out (outlen bytes, terminated), truncating. */
static void append_str(char *out, size_t outlen, const char *s)
{
	size_t pos = strnlen(out, outlen - 1);

	copy_str(out + pos, outlen - pos, s);
}

/* Strips trailing newline and blanks. */
static void chomp(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' ||
			 s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
}

/*
 * PRETTY_NAME from an os-release file into out; false if not found.
 * Lines longer than the buffer are skipped whole, and only so many lines
 * are looked at: the file is trusted, but not to be small.
 */
static bool read_pretty_name(const char *path, char *out, size_t outlen)
{
	static const char key[] = "PRETTY_NAME=";
	char line[OS_RELEASE_LINE];
	bool found = false, skipping = false;
	unsigned n = 0;
	FILE *fp;

	fp = fopen(path, "re");
	if (fp == NULL)
		return false;
	while (!found && n < OS_RELEASE_LINES &&
	       fgets(line, sizeof(line), fp) != NULL) {
		bool whole = strchr(line, '\n') != NULL;

		if (skipping) {
			/* Rest of an over-long line. */
			skipping = !whole;
			continue;
		}
		n++;
		if (!whole && !feof(fp)) {
			skipping = true;
			continue;
		}
		if (strncmp(line, key, sizeof(key) - 1) != 0)
			continue;
		chomp(line);
		agent_os_release_unquote(line + sizeof(key) - 1);
		if (line[sizeof(key) - 1] == '\0')
			continue;
		agent_text_clean(line + sizeof(key) - 1, out, outlen);
		found = true;
	}
	fclose(fp);
	return found;
}

static void gather_os(char *out, size_t outlen)
{
	char name[AGENT_FACT_OS_MAX];
	struct utsname u;
	bool have_u = uname(&u) == 0;

	if (!read_pretty_name("/etc/os-release", name, sizeof(name)) &&
	    !read_pretty_name("/usr/lib/os-release", name, sizeof(name)))
		copy_str(name, sizeof(name), have_u ? u.sysname : "unknown");
	/* "Debian GNU/Linux 12 (bookworm), Linux 6.1.0-18-amd64 x86_64" */
	copy_str(out, outlen, name);
	if (have_u) {
		append_str(out, outlen, ", ");
		append_str(out, outlen, u.sysname);
		append_str(out, outlen, " ");
		append_str(out, outlen, u.release);
		append_str(out, outlen, " ");
		append_str(out, outlen, u.machine);
	}
	/* The facts travel as JSON strings: keep them valid UTF-8. */
	copy_str(name, sizeof(name), out);
	agent_text_clean(name, out, outlen);
}

void agent_facts_gather(struct agent_facts *f)
{
	struct passwd *pw;
	char host[AGENT_FACT_HOST_MAX + 1];

	memset(f, 0, sizeof(*f));
	/* gethostname() need not terminate a truncated name. */
	memset(host, 0, sizeof(host));
	if (gethostname(host, sizeof(host) - 1) == 0 && host[0] != '\0')
		agent_text_clean(host, f->hostname, sizeof(f->hostname));
	else
		copy_str(f->hostname, sizeof(f->hostname), "unknown");

	gather_os(f->os, sizeof(f->os));

	pw = getpwuid(geteuid());
	if (pw != NULL && pw->pw_name != NULL)
		agent_text_clean(pw->pw_name, f->user, sizeof(f->user));
	else
		snprintf(f->user, sizeof(f->user), "uid %u",
			 (unsigned)geteuid());
}

void agent_facts_ctrl(const struct agent_facts *f,
		      struct tether_ctrl_facts *out)
{
	out->hostname = f->hostname;
	out->os = f->os;
	out->user = f->user;
}
