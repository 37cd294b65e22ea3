/*
 * Nagios threshold ranges and performance data, as the plugin guidelines
 * define them (https://nagios-plugins.org/doc/guidelines.html).  Both come
 * from config files and from plugins we did not write: anything malformed
 * is refused (ranges) or skipped (perfdata entries).
 */
#ifndef TETHER_AGENT_SERVICE_RANGE_H
#define TETHER_AGENT_SERVICE_RANGE_H

#include <stdbool.h>
#include <stddef.h>

#include <tether/ctrl.h>

/* Longest range as written ("@10:20"). */
#define AGENT_RANGE_TEXT_MAX 64

/* A Nagios threshold range. */
struct agent_range {
	bool set;
	bool inside; /* '@': alert inside lo..hi, not outside */
	bool lo_inf; /* '~': no lower end */
	bool hi_inf; /* "N:": no upper end */
	double lo;
	double hi;
	char text[AGENT_RANGE_TEXT_MAX]; /* as written */
};

/* Parses s into *r; TETHER_ERR_FORMAT if it is not a range. */
int agent_range_parse(const char *s, struct agent_range *r);
/* Whether v calls for an alert (false for an unset range). */
bool agent_range_alert(const struct agent_range *r, double v);

/*
 * Performance data as the check message carries it: values whose
 * strings the list owns (label, uom, warn, crit).
 */
struct agent_perfdata {
	struct tether_ctrl_perf *v;
	size_t n;
};

/*
 * Perfdata text ("'label'=value[UOM];[warn];[crit];[min];[max] ...")
 * into *out (emptied first): numbers NaN and ranges NULL where not given
 * or malformed; malformed entries are skipped (the check message keeps
 * TETHER_CTRL_PERFDATA_MAX of the rest).  0, or TETHER_ERR_NOMEM (*out
 * empty).
 */
int agent_perfdata_parse(const char *text, struct agent_perfdata *out);
/* Frees what agent_perfdata_parse() gave *p and empties it. */
void agent_perfdata_free(struct agent_perfdata *p);

#endif /* TETHER_AGENT_SERVICE_RANGE_H */
