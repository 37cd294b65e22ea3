/*
 * Aligned text tables for people (ticket list and show, agents, health).
 * Cells come from the relay and may have been typed by anyone, so they
 * print through tether_text_print_clean(), and widths count the text
 * alone so that a coloured cell does not push its column out of line.
 */
#include <string.h>

#include <tether/alloc.h>
#include <tether/text.h>

#include "console.h"

/* The cut last column keeps at least this much on a narrow terminal. */
#define CUT_MIN 20

void console_table_init(struct console_table *t, size_t ncol,
			const char *const *heads)
{
	size_t i;

	memset(t, 0, sizeof(*t));
	t->ncol = ncol;
	for (i = 0; heads != NULL && i < ncol; i++)
		console_table_add(t, heads[i]);
}

void console_table_add_color(struct console_table *t, const char *s,
			     const char *color)
{
	const char **colors;
	char **cells, **extra;
	size_t cap;

	if (t->failed)
		return;
	if (t->ncell == t->cap) {
		cap = t->cap * 2 + 32;
		cells = tether_reallocarray(t->cells, cap, sizeof(*cells));
		if (cells != NULL)
			t->cells = cells;
		colors = tether_reallocarray(t->colors, cap, sizeof(*colors));
		if (colors != NULL)
			t->colors = colors;
		extra = tether_reallocarray(t->extra, cap, sizeof(*extra));
		if (extra != NULL)
			t->extra = extra;
		if (cells == NULL || colors == NULL || extra == NULL) {
			t->failed = true;
			return;
		}
		t->cap = cap;
	}
	t->cells[t->ncell] = tether_strdup(s != NULL && s[0] != '\0' ? s : "-");
	if (t->cells[t->ncell] == NULL) {
		t->failed = true;
		return;
	}
	t->colors[t->ncell] = color;
	t->extra[t->ncell] = NULL;
	t->ncell++;
}

void console_table_add(struct console_table *t, const char *s)
{
	console_table_add_color(t, s, NULL);
}

void console_table_add_json(struct console_table *t, const json_t *v)
{
	char *text;

	if (v == NULL || json_is_null(v)) {
		console_table_add(t, NULL);
	} else if (json_is_string(v)) {
		console_table_add(t, json_string_value(v));
	} else {
		text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		if (text == NULL)
			t->failed = true;
		else
			console_table_add(t, text);
		tether_free(text);
	}
}

void console_table_add_time(struct console_table *t, int64_t when)
{
	char text[TETHER_CTRL_TIME_LEN];

	console_table_add(
	    t, when != 0 && tether_ctrl_time_format(when, text) == 0 ? text
								     : NULL);
}

void console_table_extra(struct console_table *t, char *line)
{
	if (t->failed || t->ncell == 0 || line == NULL) {
		tether_free(line);
		return;
	}
	tether_free(t->extra[t->ncell - 1]);
	t->extra[t->ncell - 1] = line;
}

void console_table_limit(struct console_table *t, size_t col, size_t width)
{
	/* Room for one character and the "..." at least. */
	if (col < CONSOLE_TABLE_COLS)
		t->max[col] = width != 0 && width < 4 ? 4 : width;
}

void console_table_free(struct console_table *t)
{
	size_t i;

	for (i = 0; i < t->ncell; i++) {
		tether_free(t->cells[i]);
		tether_free(t->extra[i]);
	}
	tether_free(t->cells);
	tether_free(t->colors);
	tether_free(t->extra);
}

static size_t char_len(const char *s)
{
	size_t n = 1;

	while (s[n] != '\0' && ((unsigned char)s[n] & 0xc0) == 0x80 && n < 4)
		n++;
	return n;
}

/* s cleaned, cut to width columns (ending in "...") when width is not 0. */
static void print_cut(const char *s, size_t width)
{
	size_t cols = 0, n;

	if (width == 0 || tether_text_width(s) <= width) {
		tether_text_print_clean(stdout, s);
		return;
	}
	for (; *s != '\0' && cols + 3 < width; s += n, cols++) {
		n = char_len(s);
		if (n == 1 && ((unsigned char)*s < 0x20 || *s == 0x7f))
			putchar('?');
		else
			fwrite(s, 1, n, stdout);
	}
	fputs("...", stdout);
}

int console_table_print(const struct console_table *t, int indent,
			size_t cut_last)
{
	size_t width[CONSOLE_TABLE_COLS] = {0}, used = (size_t)indent;
	size_t room = 0, i, w, col;

	if (t->failed || t->ncol > CONSOLE_TABLE_COLS) {
		console_error("out of memory");
		return -1;
	}
	for (i = 0; i < t->ncell; i++) {
		col = i % t->ncol;
		w = tether_text_width(t->cells[i]);
		if (t->max[col] != 0 && w > t->max[col])
			w = t->max[col];
		if (w > width[col])
			width[col] = w;
	}
	if (cut_last != 0) {
		for (col = 0; col + 1 < t->ncol; col++)
			used += width[col] + 2;
		/* The last column stays empty: writing there may wrap. */
		room = cut_last > used + CUT_MIN + 1 ? cut_last - used - 1
						     : CUT_MIN;
	}
	for (i = 0; i < t->ncell; i++) {
		col = i % t->ncol;
		if (col == 0)
			printf("%*s", indent, "");
		if (t->colors[i] != NULL)
			fputs(t->colors[i], stdout);
		if (col + 1 == t->ncol)
			print_cut(t->cells[i],
				  t->max[col] != 0 &&
					  (room == 0 || t->max[col] < room)
				      ? t->max[col]
				      : room);
		else
			print_cut(t->cells[i], t->max[col]);
		if (t->colors[i] != NULL)
			fputs("\033[0m", stdout);
		if (col + 1 == t->ncol) {
			putchar('\n');
			if (t->extra[i] != NULL) {
				printf("%*s    ", indent, "");
				tether_text_print_clean(stdout, t->extra[i]);
				putchar('\n');
			}
			continue;
		}
		/* Pad by columns, not bytes: cells may be UTF-8. */
		w = tether_text_width(t->cells[i]);
		if (t->max[col] != 0 && w > t->max[col])
			w = t->max[col];
		for (; w < width[col] + 2; w++)
			putchar(' ');
	}
	return 0;
}
