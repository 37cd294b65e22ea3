/*
 * Text for terminals (tether/text.h).
 */
#include <stdbool.h>

#include <tether/text.h>

static bool is_control(unsigned char ch)
{
	return ch < 0x20 || ch == 0x7f;
}

void tether_text_print_clean(FILE *fp, const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		fputc(is_control((unsigned char)*s) ? '?' : *s, fp);
}

size_t tether_text_width(const char *s)
{
	size_t n = 0;

	for (; s != NULL && *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

void tether_text_size(uint64_t n, char *out, size_t len)
{
	static const char *const units[] = {"KiB", "MiB", "GiB",
					    "TiB", "PiB", "EiB"};
	double v = (double)n;
	size_t i = 0;

	if (n < 1024) {
		snprintf(out, len, "%u B", (unsigned int)n);
		return;
	}
	v /= 1024;
	while (v >= 1024 && i + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		i++;
	}
	/* Three digits at most: "9.5 MiB", "123 MiB". */
	snprintf(out, len, v < 10 ? "%.1f %s" : "%.0f %s", v, units[i]);
}
