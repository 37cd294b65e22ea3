/*
 * `tether logout [--json]`: forgets this user's login (the relay, the
 * technician's key) and every session file (pairing state and session
 * keys), so that nothing left on a shared or handed-over machine can act
 * as the technician.  The pinned relay fingerprints (known_relays) stay:
 * they are public, and keeping them keeps the next login safe from a
 * swapped relay.  The relay is not told: the key stays registered there
 * (useless without the private half) until a new login token replaces it
 * or an admin removes the technician.
 */
#include <stdio.h>

#include "console.h"

static const char logout_usage[] =
    "Usage: tether logout [--json]\n"
    "\n"
    "Forgets the relay and the technician key that tether login stored\n"
    "and every session file (pairing state and session keys) under\n"
    "$XDG_CONFIG_HOME/tether; the pinned relay fingerprints (known_relays)\n"
    "are kept.  Logging in again takes a new login token from an admin.\n"
    "Not logged in is no error.  --json prints\n"
    "{\"relay\",\"logged_out\",\"key_forgotten\",\"sessions_forgotten\"}.\n";

static const struct console_opts logout_opts = {
    .name = "logout",
    .usage = logout_usage,
    .flags = CONSOLE_OPTS_JSON,
    .min = 0,
    .max = 0,
    .need = "takes no operands",
};

int console_logout(int argc, char **argv)
{
	char relay[CONSOLE_HOSTPORT_MAX];
	struct console_args args;
	unsigned sessions = 0;
	bool had = false, had_key = false;
	json_t *out;
	int ret;

	ret = console_opts_parse(&logout_opts, argc, argv, NULL, &args);
	if (ret >= 0)
		return ret;
	ret = console_config_forget(relay, sizeof(relay), &had, &had_key,
				    &sessions);
	if (args.json) {
		out = json_pack("{s:s?, s:b, s:b, s:i}", "relay",
				relay[0] != '\0' ? relay : NULL, "logged_out",
				had, "key_forgotten", had_key,
				"sessions_forgotten", (int)sessions);
		if (out == NULL || console_json_print(out) != 0)
			ret = -1;
		json_decref(out);
	} else if (had) {
		printf("Logged out of %s; forgot %s%u session file%s\n",
		       relay[0] != '\0' ? relay : "the relay",
		       had_key ? "the technician key and " : "", sessions,
		       sessions == 1 ? "" : "s");
	} else {
		printf("Not logged in; forgot %u session file%s\n", sessions,
		       sessions == 1 ? "" : "s");
	}
	return ret == 0 ? 0 : 255;
}
