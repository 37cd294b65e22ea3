/*
 * The diagnostics bundle (docs/diagnostics.md) and `tether-agent diag`:
 * what the diag channel and an enrolled agent's diag_request run in a
 * child, as /proc/self/exe diag --json.
 */
#ifndef TETHER_AGENT_DIAG_DIAG_H
#define TETHER_AGENT_DIAG_DIAG_H

#include <jansson.h>

/*
 * Collects the bundle on this thread (it blocks, up to about 5 s).  Never
 * fails but for memory (NULL): unreadable parts become {"error": ...}.
 * Secrets are already redacted.  A new reference.
 */
json_t *agent_diag_collect(void);
/* tether-agent diag [--json] [-o FILE] (argv[1] is "diag"): the status. */
int agent_diag_main(int argc, char **argv);

#endif /* TETHER_AGENT_DIAG_DIAG_H */
