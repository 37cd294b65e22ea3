/*
 * `tether`, the technician's console: entry point, top-level help and
 * dispatch to the commands (login, ticket, invite, exec, shell, put, get,
 * forward, ssh, sftp, diag, agents, health, technician, enroll-token).
 * Each command parses its own options (console-opts.c) and returns the
 * exit status: 0, the remote status for exec, shell and ssh, 1 for put,
 * get and sftp when some entries failed, 2 for bad usage, 255 for our own
 * failures.
 */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <tether/log.h>

#include "console.h"

#ifndef TETHER_VERSION
#define TETHER_VERSION "0.1.0"
#endif

static const char usage[] =
    "Usage: tether COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  login HOST:PORT --token TOKEN [--fingerprint SHA256:...]\n"
    "      Check the token with the relay and pin its certificate.\n"
    "  logout [--json]\n"
    "      Forget the token and every session key (pins are kept).\n"
    "  ticket new TITLE [--customer NAME] [--json]\n"
    "  ticket list [--status open|closed] [--json]\n"
    "  ticket show T-N [--json]\n"
    "  ticket close T-N --resolution TEXT\n"
    "  ticket assign T-N NAME|me|none [--json]\n"
    "      Manage tickets.\n"
    "  invite T-N [--expires 10m] [--json]\n"
    "      Make a one-time code the customer gives to tether-agent.\n"
    "  exec T-N -- CMD [ARGS...]\n"
    "      Run CMD on the customer's machine and exit with its status.\n"
    "  shell T-N [-- COMMAND [ARGS...]]\n"
    "      Open the customer's login shell (or COMMAND) interactively;\n"
    "      on a terminal, ~. disconnects and ~? lists the escapes.\n"
    "  put T-N [-r] [-q] [--no-compress] [--json] LOCAL... REMOTE\n"
    "  get T-N [-r] [-q] [--no-compress] [--json] REMOTE... LOCAL\n"
    "      Copy files to or from the customer's machine, verified and\n"
    "      resumable; -r for directories.\n"
    "  forward T-N [LOCALPORT:]HOST:PORT\n"
    "      Listen on 127.0.0.1:LOCALPORT and carry each connection to\n"
    "      HOST:PORT as the customer's machine sees it (like ssh -L).\n"
    "  ssh T-N [USER@][HOST][:PORT] [-i KEY] [--accept-new] [-- COMMAND...]\n"
    "      Log in to the customer's sshd (127.0.0.1:22 by default) over\n"
    "      the session, end to end.\n"
    "  sftp T-N [USER@][HOST][:PORT] [-i KEY] [--accept-new] [-q] [--json]\n"
    "       get REMOTE... LOCAL | put LOCAL... REMOTE | ls [-l] [REMOTE]\n"
    "      Copy files to or from the customer's sshd over SFTP, or list\n"
    "      a remote directory, through the session as ssh does.\n"
    "  diag T-N [-o FILE] [--json] [--saved]\n"
    "      Collect diagnostics on the customer's machine, show a summary\n"
    "      (problems first) and save them on the ticket.\n"
    "  agents [--json]\n"
    "  health [AGENT] [-v] [--json]\n"
    "      List the enrolled agents, and their health checks.\n"
    "  sessions [--json]\n"
    "      List the live sessions: technician, ticket, machine, channels.\n"
    "  technician add NAME [--role admin|technician|auditor] [--json]\n"
    "  technician remove NAME | list | role NAME ROLE [--json]\n"
    "  enroll-token [--ttl 1h] [--json]\n"
    "      Manage technicians and enrolment tokens (admins).\n"
    "\n"
    "Options:\n"
    "  -h, --help      show this help (or: tether COMMAND --help)\n"
    "  -V, --version   show the version\n";

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
};

static const struct command commands[] = {
    {"login", console_login},
    {"logout", console_logout},
    {"ticket", console_ticket},
    {"invite", console_invite},
    {"exec", console_exec},
    {"shell", console_shell},
    {"put", console_put},
    {"get", console_get},
    {"forward", console_forward},
    {"ssh", console_ssh},
    {"sftp", console_sftp},
    {"diag", console_diag},
    {"agents", console_agents},
    {"health", console_health},
    {"sessions", console_sessions},
    {"technician", console_technician},
    {"enroll-token", console_enroll_token},
};

/*
 * A closed fd 0, 1 or 2 would be reused by the first socket we open, and
 * then get command output written into it (and libuv refuses to close
 * it): park /dev/null there first.
 */
static void open_std_fds(void)
{
	int fd;

	for (fd = 0; fd <= STDERR_FILENO; fd++)
		if (fcntl(fd, F_GETFD) < 0 &&
		    open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) < 0)
			_exit(CONSOLE_EXIT_FAIL);
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : NULL;
	int status = -1;
	size_t i;

	open_std_fds();
	/* A reader that went away is reported by write(), not a signal. */
	signal(SIGPIPE, SIG_IGN);
	/* A file over the size limit is one failed entry (EFBIG), not death. */
	signal(SIGXFSZ, SIG_IGN);
	tether_log_set_ident("tether");
	/*
	 * Errors only: what the relay client warns about (a malformed
	 * message) ends a connection, and we say so in our own words.
	 */
	tether_log_set_level(TETHER_LOG_ERR);

	if (name == NULL) {
		fputs(usage, stderr);
		return CONSOLE_EXIT_USAGE;
	}
	if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 ||
	    strcmp(name, "help") == 0) {
		fputs(usage, stdout);
		status = 0;
	} else if (strcmp(name, "-V") == 0 || strcmp(name, "--version") == 0) {
		printf("tether %s\n", TETHER_VERSION);
		status = 0;
	}
	for (i = 0; status < 0 && i < sizeof(commands) / sizeof(commands[0]);
	     i++)
		if (strcmp(name, commands[i].name) == 0)
			status = commands[i].run(argc - 1, argv + 1);
	if (status < 0 && name[0] == '-')
		status = console_usage_error(NULL, "unknown option %s", name);
	else if (status < 0)
		status = console_usage_error(NULL, "unknown command %s", name);
	if (fflush(stdout) != 0 && status == 0) {
		console_error("cannot write output");
		status = CONSOLE_EXIT_FAIL;
	}
	return status;
}
