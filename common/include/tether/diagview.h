/*
 * The diagnostics summary people read: problems first, then the system,
 * memory, disks, network, failed units, listening sockets, the busiest
 * processes, recent log errors, the clock and packages, and the sections
 * that could not be read.  One renderer for `tether diag` (a ticket's
 * bundle) and `tether-agent diag` (this machine's), so that both print the
 * same bundle the same way.
 */
#ifndef TETHER_DIAGVIEW_H
#define TETHER_DIAGVIEW_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

struct tether_diagview_opts {
	const char *subject;  /* "T-5"; NULL: "this machine" */
	const char *saved_at; /* when it was saved on a ticket, or NULL */
	const char *source;   /* who saved it ("agent:web-01"), or NULL */
	bool color;	      /* colour the severities (a terminal) */
};

/*
 * Prints the summary of bundle (a diagnostics bundle, docs/protocol.md
 * "Diagnostics"; any shape is survived) to fp.  Strings from the bundle
 * are printed with control characters replaced.  o may be NULL.
 */
void tether_diagview_print(FILE *fp, const json_t *bundle,
			   const struct tether_diagview_opts *o);

#endif /* TETHER_DIAGVIEW_H */
