/*
 * libFuzzer target for what an enrolled agent reads from a monitoring
 * plugin and from its config: plugin output (status line and perfdata),
 * Nagios ranges and command lines.  Plugins are outside code the agent
 * runs, so their output is as untrusted as network input.
 *
 * Input: byte 0 picks nothing (kept for future modes); the rest is fed to
 * each parser.  Invariants: the status line fits and is NUL-terminated,
 * perfdata entries have a label and a unit, a parsed range's
 * text fits, a split command is NULL-terminated.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tether/alloc.h>

#include "fuzz.h"
#include "service/plugin.h"
#include "service/range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_check_result res;
	struct agent_perfdata perf;
	struct agent_range r;
	const char *why = NULL;
	char **argv = NULL, *text;
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
		if (res.perf != NULL &&
		    agent_perfdata_parse(res.perf, &perf) == 0) {
			for (i = 0; i < perf.n; i++) {
				CHECK(perf.v[i].label != NULL &&
				      perf.v[i].label[0] != '\0');
				CHECK(perf.v[i].uom != NULL);
			}
			agent_perfdata_free(&perf);
		}
	}
	tether_free(res.perf);

	CHECK(agent_perfdata_parse(text, &perf) == 0);
	agent_perfdata_free(&perf);

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
