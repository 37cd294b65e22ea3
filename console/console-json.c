/*
 * What --json prints on standard output: one document, indented, and the
 * file names in it made valid JSON strings.  The documents themselves come
 * from tether_ctrl_*_to_json() (what the relay said, as the protocol says
 * it) or from the command (transfer summaries, listings).
 */
#include <tether/alloc.h>

#include "console.h"

int console_json_print(const json_t *v)
{
	/* 12 digits: seconds and rates without float noise. */
	if (v == NULL) {
		console_error("out of memory");
		return -1;
	}
	if (json_dumpf(v, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(12)) !=
		0 ||
	    fputc('\n', stdout) == EOF) {
		console_error("cannot write output");
		return -1;
	}
	return 0;
}

json_t *console_json_path(const char *s)
{
	json_t *v;
	char *copy;
	size_t i;

	if (s == NULL)
		s = "";
	v = json_string(s);
	if (v != NULL)
		return v;
	copy = tether_strdup(s);
	if (copy == NULL)
		return NULL;
	for (i = 0; copy[i] != '\0'; i++)
		if ((unsigned char)copy[i] >= 0x80)
			copy[i] = '?';
	v = json_string(copy);
	tether_free(copy);
	return v;
}

int console_json_print_rows(enum tether_ctrl_part part, const void *rows,
			    size_t n, size_t size)
{
	json_t *arr = json_array();
	size_t i;
	int r;

	for (i = 0; arr != NULL && i < n; i++)
		if (json_array_append_new(
			arr, tether_ctrl_part_to_json(
				 part, (const char *)rows + i * size)) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	r = console_json_print(arr);
	json_decref(arr);
	return r;
}
