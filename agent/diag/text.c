/*
 * Safe text (text.h): one UTF-8 validator for the whole agent, so that what
 * the customer sees, what a bundle holds and what a check reports agree
 * on what a control character is.
 */
#include <stdio.h>
#include <string.h>

#include "diag/text.h"

/*
 * Length of the valid UTF-8 sequence at s, of at most n bytes; 0 if it is
 * invalid or a C1 control (U+0080..U+009F).
 */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned cp, min;
	size_t k, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		k = 2;
		cp = s[0] & 0x1f;
		min = 0xa0;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		k = 3;
		cp = s[0] & 0x0f;
		min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		k = 4;
		cp = s[0] & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (k > n)
		return 0;
	for (i = 1; i < k; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return k;
}

size_t agent_text_clean_n(const char *in, size_t n, unsigned flags, char *out,
			  size_t outlen)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t pos = 0, i = 0, k;

	if (outlen == 0)
		return 0;
	while (i < n && s[i] != '\0') {
		k = utf8_len(s + i, n - i);
		if (k == 1 && (s[i] < 0x20 || s[i] == 0x7f))
			k = 0;
		if (k == 0) {
			if (pos + 1 >= outlen)
				break;
			out[pos++] = s[i] == '\t' && (flags & AGENT_TEXT_TABS)
					 ? ' '
					 : '?';
			i++;
			continue;
		}
		if (pos + k >= outlen)
			break;
		memcpy(out + pos, s + i, k);
		pos += k;
		i += k;
	}
	out[pos] = '\0';
	return pos;
}

void agent_text_clean(const char *in, char *out, size_t outlen)
{
	agent_text_clean_n(in, strlen(in), 0, out, outlen);
}

int agent_text_usage(const char *who, const char *usage, const char *msg,
		     const char *arg)
{
	if (msg != NULL)
		fprintf(stderr, "%s: %s%s%s\n", who, msg,
			arg != NULL ? ": " : "", arg != NULL ? arg : "");
	fputs(usage, stderr);
	return 2;
}
