/*
 * libFuzzer target for what an enrolled agent reads from a monitoring
 * plugin and from its config: plugin output (status line and perfdata),
 * Nagios ranges and command lines.  Plugins are outside code the agent
 * runs, so their output is as untrusted as network input.
 *
 * Input: byte 0 picks nothing (kept for future modes); the rest is fed to
 * each parser.  Invariants: the status line fits and is NUL-terminated,
 * perfdata is an array of objects with a string label, a parsed range's
 * text fits, a split command is NULL-terminated.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_check_result res;
	struct agent_range r;
	const char *why = NULL;
	char **argv = NULL, *text;
	json_t *perf, *e;
	size_t i;

	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	memset(&res, 0, sizeof(res));
	if (agent_plugin_parse_output(text, size, &res) == 0) {
		CHECK(memchr(res.output, '\0', sizeof(res.output)) != NULL);
		CHECK(strlen(res.output) <= AGENT_CHECK_OUTPUT_MAX);
		if (res.perf != NULL) {
			perf = agent_perfdata_parse(res.perf);
			CHECK(json_is_array(perf));
			json_array_foreach(perf, i, e) {
				CHECK(json_is_object(e));
				CHECK(json_is_string(json_object_get(e, "label")));
			}
			json_decref(perf);
		}
	}
	free(res.perf);

	perf = agent_perfdata_parse(text);
	CHECK(perf != NULL && json_is_array(perf));
	json_decref(perf);

	if (agent_range_parse(text, &r) == 0) {
		CHECK(r.set);
		CHECK(memchr(r.text, '\0', sizeof(r.text)) != NULL);
		(void)agent_range_alert(&r, 0.0);
		(void)agent_range_alert(&r, 1e300);
	}

	if (agent_command_split(text, &argv, &why) == 0) {
		for (i = 0; argv[i] != NULL; i++)
			CHECK(i < size + 1);
		agent_argv_free(argv);
	} else {
		CHECK(why != NULL);
	}
	free(text);
	return 0;
}
