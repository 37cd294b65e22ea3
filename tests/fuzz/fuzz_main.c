/*
 * Corpus replayer for builds without libFuzzer (systemd's fuzz-main idea):
 * each argument is a file or a directory of files, and every regular file
 * is passed once to LLVMFuzzerTestOneInput.  `meson test --suite fuzz` runs
 * the seed corpora and every saved crash reproducer this way under any
 * compiler, so a fixed bug stays fixed.  A crash aborts the process; an
 * unreadable path or an empty corpus fails the run so that a missing
 * directory is not mistaken for success.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads a whole file into a fresh buffer; *lenp gets its size. */
static uint8_t *read_file(const char *path, size_t *lenp)
{
	uint8_t *buf = NULL, *nbuf;
	size_t len = 0, cap = 0, got;
	FILE *fp;

	fp = fopen(path, "rb");
	if (fp == NULL)
		return NULL;
	for (;;) {
		if (len == cap) {
			cap = cap == 0 ? 4096 : cap * 2;
			nbuf = realloc(buf, cap);
			if (nbuf == NULL) {
				free(buf);
				fclose(fp);
				return NULL;
			}
			buf = nbuf;
		}
		got = fread(buf + len, 1, cap - len, fp);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(fp)) {
		free(buf);
		fclose(fp);
		return NULL;
	}
	fclose(fp);
	*lenp = len;
	return buf;
}

static int run_file(const char *path)
{
	uint8_t *data, *exact;
	size_t len;

	data = read_file(path, &len);
	if (data == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	/* Exactly len bytes, like libFuzzer, so ASan catches overreads. */
	exact = malloc(len > 0 ? len : 1);
	if (exact == NULL) {
		free(data);
		fprintf(stderr, "%s: out of memory\n", path);
		return -1;
	}
	if (len > 0)
		memcpy(exact, data, len);
	free(data);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	return 0;
}

/* Runs every regular file in dir, in name order; returns files run or -1. */
static long run_dir(const char *dir)
{
	struct dirent **names;
	char path[4096];
	struct stat st;
	long count = 0;
	int i, n, len;

	n = scandir(dir, &names, NULL, alphasort);
	if (n < 0) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		len = snprintf(path, sizeof(path), "%s/%s", dir,
			       names[i]->d_name);
		if (len < 0 || (size_t)len >= sizeof(path) ||
		    stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (run_file(path) != 0) {
			count = -1;
			break;
		}
		count++;
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return count;
}

int main(int argc, char **argv)
{
	struct stat st;
	long total = 0, n;
	int i;

	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		if (S_ISDIR(st.st_mode))
			n = run_dir(argv[i]);
		else
			n = run_file(argv[i]) == 0 ? 1 : -1;
		if (n < 0)
			return 1;
		total += n;
	}
	if (total == 0) {
		fprintf(stderr, "no inputs\n");
		return 1;
	}
	printf("%s: %ld inputs ran\n", argv[0], total);
	return 0;
}
