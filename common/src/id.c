/*
 * Identifiers: tickets, fingerprints, names and labels (tether/id.h).
 */
#include <string.h>

#include <tether/err.h>
#include <tether/id.h>
#include <tether/num.h>

bool tether_id_name_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

bool tether_id_name_valid(const char *s)
{
	size_t n;

	if (s == NULL)
		return false;
	for (n = 0; s[n] != '\0'; n++)
		if (!tether_id_name_char(s[n]) || n >= TETHER_ID_NAME_MAX)
			return false;
	return n >= 1;
}

bool tether_id_label_value_valid(const char *s)
{
	size_t n;

	if (s == NULL)
		return false;
	for (n = 0; s[n] != '\0'; n++)
		if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f ||
		    n >= TETHER_ID_LABEL_VALUE_MAX)
			return false;
	return true;
}

int tether_id_label_parse(const char *spec, char *key, size_t keylen,
			  const char **value, const char **why)
{
	const char *eq = spec != NULL ? strchr(spec, '=') : NULL;
	size_t kl;

	*value = NULL;
	if (keylen > 0)
		key[0] = '\0';
	*why = "want KEY=VALUE";
	if (eq == NULL)
		return TETHER_ERR_FORMAT;
	kl = (size_t)(eq - spec);
	if (kl == 0 || kl > TETHER_ID_NAME_MAX || kl >= keylen)
		return TETHER_ERR_FORMAT;
	memcpy(key, spec, kl);
	key[kl] = '\0';
	if (!tether_id_name_valid(key)) {
		*why = "a label key may hold only letters, digits and _.-";
		key[0] = '\0';
		return TETHER_ERR_FORMAT;
	}
	if (strlen(eq + 1) > TETHER_ID_LABEL_VALUE_MAX) {
		*why = "value too long";
		key[0] = '\0';
		return TETHER_ERR_FORMAT;
	}
	if (!tether_id_label_value_valid(eq + 1)) {
		*why = "a label value may not hold control characters";
		key[0] = '\0';
		return TETHER_ERR_FORMAT;
	}
	*value = eq + 1;
	return TETHER_OK;
}

int tether_id_ticket_parse(const char *s, int64_t *id)
{
	uint64_t v;

	*id = 0;
	if (s == NULL || (s[0] != 'T' && s[0] != 't') || s[1] != '-')
		return TETHER_ERR_FORMAT;
	if (tether_num_parse_u64(s + 2, 1, INT64_MAX, &v) != 0)
		return TETHER_ERR_FORMAT;
	*id = (int64_t)v;
	return TETHER_OK;
}

int tether_id_ticket_parse_arg(const char *s, int64_t *id)
{
	uint64_t v;

	*id = 0;
	if (s != NULL && s[0] >= '0' && s[0] <= '9') {
		if (tether_num_parse_u64(s, 1, INT64_MAX, &v) != 0)
			return TETHER_ERR_FORMAT;
		*id = (int64_t)v;
		return TETHER_OK;
	}
	return tether_id_ticket_parse(s, id);
}

int tether_id_ticket_format(int64_t id, char *out, size_t outlen)
{
	char digits[24];
	size_t n = 0, i;
	uint64_t v;

	if (outlen > 0)
		out[0] = '\0';
	if (id < 1)
		return TETHER_ERR_INVALID;
	for (v = (uint64_t)id; v > 0; v /= 10)
		digits[n++] = (char)('0' + v % 10);
	if (outlen < n + 3)
		return TETHER_ERR_TOO_LARGE;
	out[0] = 'T';
	out[1] = '-';
	for (i = 0; i < n; i++)
		out[2 + i] = digits[n - 1 - i];
	out[2 + n] = '\0';
	return TETHER_OK;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

bool tether_id_fingerprint_valid(const char *fp)
{
	static const char prefix[] = "SHA256:";
	size_t i;
	int v = 0;

	if (fp == NULL || strncmp(fp, prefix, sizeof(prefix) - 1) != 0)
		return false;
	fp += sizeof(prefix) - 1;
	for (i = 0; fp[i] != '\0'; i++)
		if (i >= 43 || (v = b64_value(fp[i])) < 0)
			return false;
	/* 32 bytes are 256 bits: the 43rd character holds the last 4. */
	return i == 43 && (v & 0x3) == 0;
}
