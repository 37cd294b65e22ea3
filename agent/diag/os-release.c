/*
 * os-release(5) values, read both for the facts sent with join and for
 * the diagnostics report: the file is shell-like, so one unquoting serves
 * both and they cannot come to disagree on a name.
 */
#include <stddef.h>

#include "diag/os-release.h"

void agent_os_release_unquote(char *v)
{
	size_t i, j = 0;
	char q = v[0];

	if (q != '"' && q != '\'')
		return;
	for (i = 1; v[i] != '\0' && v[i] != q; i++) {
		if (q == '"' && v[i] == '\\' && v[i + 1] != '\0')
			i++;
		v[j++] = v[i];
	}
	v[j] = '\0';
}
