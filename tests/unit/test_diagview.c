/*
 * The diagnostics summary: problems first, every section the collector
 * writes, sections that could not be read named at the end, control
 * characters from the bundle never reaching the terminal, and any shape
 * of bundle survived.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include <tether/diagview.h>

static char *render(const char *json, const struct tether_diagview_opts *o)
{
	json_error_t err;
	json_t *b = json_loads(json, 0, &err);
	char *out = NULL;
	size_t len = 0;
	FILE *fp;

	cr_assert_not_null(b, "%s", err.text);
	fp = open_memstream(&out, &len);
	cr_assert_not_null(fp);
	tether_diagview_print(fp, b, o);
	fclose(fp);
	json_decref(b);
	return out;
}

static const char bundle[] =
    "{\"version\":1,\"collected_at\":\"2026-12-07T10:00:00Z\","
    "\"duration_ms\":210,"
    "\"problems\":[{\"severity\":\"warning\",\"what\":\"load high\"},"
    "{\"severity\":\"critical\",\"what\":\"/var is 97% full\\u001b[2J\"}],"
    "\"sections\":{"
    "\"os\":{\"hostname\":\"web-01\",\"pretty_name\":\"Debian 12\","
    "\"kernel\":\"6.1\",\"arch\":\"x86_64\"},"
    "\"uptime\":{\"seconds\":90061},"
    "\"cpu\":{\"count\":4,\"model\":\"EPYC\",\"load\":[1,2,3],"
    "\"usage_pct\":12},"
    "\"memory\":{\"total\":8589934592,\"available\":4294967296,"
    "\"swap_total\":0},"
    "\"disks\":{\"filesystems\":[{\"mountpoint\":\"/var\",\"size\":"
    "1073741824,\"use_pct\":97,\"inodes_use_pct\":3,\"fstype\":\"ext4\","
    "\"device\":\"/dev/sda2\"}]},"
    "\"network\":{\"interfaces\":[{\"name\":\"eth0\",\"state\":\"up\","
    "\"addresses\":[\"10.0.0.5/24\"]}]},"
    "\"routes\":{\"routes\":[{\"destination\":\"0.0.0.0/0\",\"gateway\":"
    "\"10.0.0.1\",\"iface\":\"eth0\"}]},"
    "\"dns\":{\"nameservers\":[\"10.0.0.2\"]},"
    "\"systemd\":{\"failed\":[\"nginx.service\"]},"
    "\"logs\":{\"error\":\"no journal\"},"
    "\"time\":{\"synchronised\":true}}}";

Test(diagview, problems_first_then_every_section)
{
	struct tether_diagview_opts o = {.subject = "T-5"};
	char *out = render(bundle, &o);

	cr_assert(strncmp(out, "CRITICAL", 8) == 0, "%s", out);
	cr_assert(strstr(out, "\nWARNING   load high\n") != NULL, "%s", out);
	cr_assert(strstr(out, "Diagnostics of T-5, collected "
			      "2026-12-07T10:00:00Z in 0.2 s") != NULL,
		  "%s", out);
	cr_assert(strstr(out, "Host:      web-01") != NULL, "%s", out);
	cr_assert(strstr(out, "Uptime:    1 day, 1:01") != NULL, "%s", out);
	cr_assert(strstr(out, "4.0 GiB of 8.0 GiB used (50%)") != NULL, "%s",
		  out);
	cr_assert(strstr(out, "\nDisks:\n") && strstr(out, "/var"), "%s", out);
	cr_assert(strstr(out, "eth0 up 10.0.0.5/24") != NULL, "%s", out);
	cr_assert(strstr(out, "default via 10.0.0.1 dev eth0") != NULL, "%s",
		  out);
	cr_assert(strstr(out, "  nginx.service\n") != NULL, "%s", out);
	cr_assert(strstr(out, "unavailable: logs: no journal") != NULL, "%s",
		  out);
	cr_assert(strstr(out, "Time:      synchronized") != NULL, "%s", out);
	cr_assert_null(strchr(out, '\033'), "an escape reached the output");
	cr_assert(strstr(out, "97% full?[2J") != NULL, "%s", out);
	free(out);
}

Test(diagview, this_machine_and_saved)
{
	struct tether_diagview_opts o = {.saved_at = "2026-12-07T11:00:00Z",
					 .source = "agent:web-01"};
	char *out = render("{\"problems\":[]}", &o);

	cr_assert(strncmp(out, "no problems found\n", 18) == 0, "%s", out);
	cr_assert(strstr(out, "Diagnostics of this machine") != NULL, "%s",
		  out);
	cr_assert(strstr(out, "; saved 2026-12-07T11:00:00Z by agent:web-01") !=
		      NULL,
		  "%s", out);
	free(out);
	out = render("{}", NULL);
	cr_assert(strstr(out, "this machine") != NULL);
	free(out);
}

Test(diagview, survives_other_shapes)
{
	static const char *const odd[] = {
	    "{\"problems\":7,\"sections\":[]}",
	    "{\"sections\":{\"os\":[],\"cpu\":\"x\",\"memory\":{\"total\":"
	    "\"big\"},\"disks\":[{\"mount\":5}],\"network\":{\"interfaces\":"
	    "[1,null,{\"addresses\":{}}]},\"routes\":[{}],\"dns\":[3],"
	    "\"processes\":{\"top_cpu\":[{}]},\"logs\":[\"x\",{}],"
	    "\"time\":{\"offset_us\":\"no\"}}}",
	    "{\"problems\":[{},{\"severity\":1,\"what\":[]}]}",
	};
	size_t i;

	for (i = 0; i < sizeof(odd) / sizeof(odd[0]); i++)
		free(render(odd[i], NULL));
}
