/*
 * Progress of a file transfer on standard error, for people: one line per
 * file (name, percent, bytes, rate, ETA), redrawn in place with "\r" at
 * most ten times a second and finished with a newline when the file has
 * arrived; "resuming NAME at SIZE" when a file continues a partial copy;
 * a summary at the end.  Shared by `tether put`, `tether get` and later
 * `tether sftp`.  Disabled, it draws nothing but still keeps time, so the
 * caller can ask how long the transfer took.
 */
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <tether/text.h>

#include "console.h"

/* Redraws at most this often, seconds: faster only flickers. */
#define REDRAW_INTERVAL 0.1
/* The rate is smoothed over about this many seconds. */
#define RATE_TAU 1.0
/* Wider terminals get no wider lines. */
#define COLS_MAX 400
#define COLS_DEFAULT 80
/* The name keeps at least this many columns, whatever else is dropped. */
#define NAME_MIN 12
/* A UTF-8 character is at most 4 bytes: room for a COLS_MAX line. */
#define LINE_BYTES (4 * COLS_MAX + 64)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int term_cols(void)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0)
		return COLS_DEFAULT;
	return ws.ws_col > COLS_MAX ? COLS_MAX : ws.ws_col;
}

/* Bytes per second in decimal megabytes per second, "-" if unknown. */
static void format_rate(double bps, char *out, size_t len)
{
	if (bps <= 0)
		snprintf(out, len, "- MB/s");
	else
		snprintf(out, len, "%.1f MB/s", bps / 1e6);
}

/* m:ss, or h:mm:ss from an hour on; "--:--" when unknown or absurd. */
static void format_time(double secs, bool known, char *out, size_t len)
{
	unsigned long s;

	if (!known || secs < 0 || secs >= 100.0 * 3600) {
		snprintf(out, len, "--:--");
		return;
	}
	s = (unsigned long)(secs + 0.5);
	if (s >= 3600)
		snprintf(out, len, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60,
			 s % 60);
	else
		snprintf(out, len, "%lu:%02lu", s / 60, s % 60);
}

/* Bytes of the UTF-8 character that starts at s (1 for a stray byte). */
static size_t char_len(const char *s)
{
	size_t n = 1;

	while (s[n] != '\0' && ((unsigned char)s[n] & 0xc0) == 0x80 && n < 4)
		n++;
	return n;
}

/*
 * name as it fits width columns, padded with spaces: control characters
 * become "?" (a name may come from the other side), and a name too long
 * keeps its end, which says more than its start, behind "...".
 */
static void fit_name(const char *name, size_t width, char *out, size_t len)
{
	size_t cols = tether_text_width(name), used = 0, n;
	const char *s = name;

	if (len == 0)
		return;
	if (cols > width) {
		if (width >= 3 && len > 3) {
			memcpy(out, "...", 3);
			used = 3;
			width -= 3;
		}
		/* Skip characters until the rest fits. */
		for (; *s != '\0' && cols > width; s += char_len(s))
			cols--;
	}
	for (; *s != '\0'; s += n) {
		n = char_len(s);
		if (used + n + 1 > len)
			break;
		if (n == 1 && ((unsigned char)*s < 0x20 || *s == 0x7f))
			out[used] = '?';
		else
			memcpy(out + used, s, n);
		used += n;
	}
	for (; cols < width && used + 1 < len; cols++)
		out[used++] = ' ';
	out[used] = '\0';
}

/* Writes text in one go, after taking down the line under way. */
static void put_line(struct console_progress *p, const char *text)
{
	if (p->drawn)
		fputs("\r\033[K", stderr);
	p->drawn = false;
	fputs(text, stderr);
}

/* "resuming NAME at SIZE" on a line of its own. */
static void announce(struct console_progress *p, const char *name,
		     uint64_t offset)
{
	char size[32];

	tether_text_size(offset, size, sizeof(size));
	put_line(p, "resuming ");
	tether_text_print_clean(stderr, name);
	fprintf(stderr, " at %s\n", size);
}

/*
 * Draws the line of name: done of size bytes at rate, with eta (or, for
 * a finished file, how long it took).  final ends it with a newline.
 */
static void draw(struct console_progress *p, const char *name, uint64_t done,
		 uint64_t size, double rate, double secs, bool secs_known,
		 bool final)
{
	char right[160], total[64], shown[LINE_BYTES], line[LINE_BYTES + 256];
	char done_s[32], size_s[32], rate_s[32], time_s[32], all_s[32];
	unsigned int pct = 100;
	size_t cols = (size_t)term_cols(), rlen, tlen = 0;

	if (size > 0 && done < size)
		pct = (unsigned int)((double)done * 100 / (double)size);
	tether_text_size(done, done_s, sizeof(done_s));
	tether_text_size(size, size_s, sizeof(size_s));
	format_rate(rate, rate_s, sizeof(rate_s));
	format_time(secs, secs_known, time_s, sizeof(time_s));
	snprintf(right, sizeof(right), " %3u%% %8s / %-8s %11s %8s", pct,
		 done_s, size_s, rate_s, time_s);
	total[0] = '\0';
	if (p->total) {
		tether_text_size(p->total_done, all_s, sizeof(all_s));
		snprintf(total, sizeof(total), "  [%llu file%s, %s]",
			 (unsigned long long)p->files, p->files == 1 ? "" : "s",
			 all_s);
		tlen = strlen(total);
	}
	rlen = strlen(right);
	/*
	 * The last column stays empty: writing there wraps on some.  A line
	 * that wrapped could not be redrawn in place, so a narrow terminal
	 * loses the total, then rate and ETA, then the bytes.
	 */
	if (cols < NAME_MIN + rlen + tlen + 1) {
		total[0] = '\0';
		tlen = 0;
	}
	if (cols < NAME_MIN + rlen + 1) {
		snprintf(right, sizeof(right), " %3u%% %8s", pct, done_s);
		rlen = strlen(right);
	}
	if (cols < NAME_MIN + rlen + 1) {
		snprintf(right, sizeof(right), " %3u%%", pct);
		rlen = strlen(right);
	}
	cols = cols > NAME_MIN + rlen + tlen + 1 ? cols - rlen - tlen - 1
						 : NAME_MIN;
	fit_name(name, cols, shown, sizeof(shown));
	snprintf(line, sizeof(line), "\r%s%s%s\033[K%s", shown, right, total,
		 final ? "\n" : "");
	fputs(line, stderr);
	p->drawn = !final;
}

void console_progress_init(struct console_progress *p, bool enabled, bool total)
{
	memset(p, 0, sizeof(*p));
	p->enabled = enabled;
	p->total = total;
	p->start = now_s();
}

/* Folds the bytes moved since the last sample into the smoothed rate. */
static void sample_rate(struct console_progress *p, double now)
{
	double dt = now - p->rate_at, inst;

	/*
	 * The first sample only sets the baseline: the time before it went
	 * on connecting and hashing a resumed prefix, not on moving bytes.
	 */
	if (p->rate_at == 0 || p->total_done < p->rate_bytes) {
		p->rate_at = now;
		p->rate_bytes = p->total_done;
		return;
	}
	if (dt < REDRAW_INTERVAL)
		return;
	inst = (double)(p->total_done - p->rate_bytes) / dt;
	if (p->rate_known)
		p->rate += (inst - p->rate) * (dt / (dt + RATE_TAU));
	else
		p->rate = inst;
	p->rate_known = true;
	p->rate_at = now;
	p->rate_bytes = p->total_done;
}

void console_progress_update(struct console_progress *p, const char *name,
			     uint64_t file_done, uint64_t file_size,
			     uint64_t total_done)
{
	uint64_t across, offset;
	double now, eta = 0;
	bool eta_known;

	if (name == NULL) {
		p->total_done = total_done;
		return;
	}
	if (!p->in_file || strcmp(name, p->name) != 0) {
		/*
		 * A new file: what is done of it beyond what crossed since
		 * the last call was there before, a partial copy resumed.
		 */
		across =
		    total_done > p->total_done ? total_done - p->total_done : 0;
		offset = file_done > across ? file_done - across : 0;
		snprintf(p->name, sizeof(p->name), "%s", name);
		p->in_file = true;
		p->announced = offset > 0;
		if (p->enabled && offset > 0)
			announce(p, name, offset);
	}
	p->file_done = file_done;
	p->file_size = file_size;
	p->total_done = total_done;
	if (!p->enabled)
		return;
	now = now_s();
	if (p->drawn && now - p->drawn_at < REDRAW_INTERVAL)
		return;
	p->drawn_at = now;
	sample_rate(p, now);
	eta_known = (p->rate_known && p->rate > 0) || file_done >= file_size;
	if (file_done < file_size && eta_known)
		eta = (double)(file_size - file_done) / p->rate;
	draw(p, name, file_done, file_size, p->rate, eta, eta_known, false);
}

void console_progress_file_done(struct console_progress *p, const char *name,
				uint64_t size, uint64_t offset, uint64_t sent,
				uint64_t ms)
{
	double secs = (double)ms / 1000;
	bool current = p->in_file && strcmp(name, p->name) == 0;

	/* Another file may be under way already: leave its state alone. */
	if (current)
		p->in_file = false;
	p->files++;
	p->sent += sent;
	if (!p->enabled)
		return;
	/* Said late if no update came before the end (a short rest). */
	if (offset > 0 && !(current && p->announced))
		announce(p, name, offset);
	draw(p, name, size, size, secs > 0 ? (double)sent / secs : 0, secs,
	     true, true);
}

void console_progress_clear(struct console_progress *p)
{
	if (p->enabled && p->drawn)
		fputs("\r\033[K", stderr);
	p->drawn = false;
	p->drawn_at = 0;
}

double console_progress_seconds(const struct console_progress *p)
{
	return now_s() - p->start;
}

void console_progress_finish(struct console_progress *p, bool summary)
{
	char size[32], rate[32];
	double secs = console_progress_seconds(p);

	if (!p->enabled)
		return;
	/* A file cut short stays on screen: it shows where it stopped. */
	if (p->drawn)
		fputc('\n', stderr);
	p->drawn = false;
	if (!summary)
		return;
	tether_text_size(p->sent, size, sizeof(size));
	format_rate(secs > 0 ? (double)p->sent / secs : 0, rate, sizeof(rate));
	fprintf(stderr, "%llu file%s, %s in %.1f s (%s)\n",
		(unsigned long long)p->files, p->files == 1 ? "" : "s", size,
		secs, rate);
}
