/*
 * Yes/no questions on the controlling terminal, answered without blocking
 * the event loop: the relay link must keep pinging while the customer
 * reads who wants to connect.  The terminal is opened as /dev/tty so that
 * redirected stdin or stdout cannot answer for the customer.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/err.h>

#include "session/prompt.h"

#define PROMPT_LINE AGENT_PROMPT_LINE_MAX

struct agent_prompt {
	uv_poll_t poll;
	int fd;
	void (*cb)(void *ctx, bool yes, const char *line);
	void *ctx;
	char line[PROMPT_LINE + 1];
	size_t len;
	bool overflow;
};

void agent_prompt_write_all(int fd, const void *data, size_t n)
{
	const char *s = data;
	ssize_t w;

	while (n > 0) {
		w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static void on_closed(uv_handle_t *h)
{
	struct agent_prompt *p = h->data;

	close(p->fd);
	tether_free(p);
}

/* The line without the blanks around it, NUL-terminated in place. */
static const char *trimmed(struct agent_prompt *p)
{
	char *s = p->line;
	size_t n = p->len;

	if (p->overflow)
		n = 0;
	s[n] = '\0';
	while (n > 0 &&
	       (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* "y" or "yes" in any case. */
static bool is_yes(const char *s)
{
	return strcasecmp(s, "y") == 0 || strcasecmp(s, "yes") == 0;
}

static void finish(struct agent_prompt *p, bool answered)
{
	void (*cb)(void *ctx, bool yes, const char *line) = p->cb;
	const char *line = answered ? trimmed(p) : "";

	p->cb = NULL;
	uv_poll_stop(&p->poll);
	uv_close((uv_handle_t *)&p->poll, on_closed);
	/* The handle closes on a later turn: line is still ours. */
	if (cb != NULL)
		cb(p->ctx, is_yes(line), line);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct agent_prompt *p = h->data;
	char buf[PROMPT_LINE];
	char *nl;
	ssize_t n;
	size_t take;

	(void)events;
	if (status < 0) {
		finish(p, false);
		return;
	}
	n = read(p->fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* End of input (Ctrl-D) or a dead terminal: that is a no. */
		agent_prompt_write_all(p->fd, "\n", 1);
		finish(p, false);
		return;
	}
	nl = memchr(buf, '\n', (size_t)n);
	take = nl != NULL ? (size_t)(nl - buf) : (size_t)n;
	/* An answer longer than the buffer is not "yes" anyway. */
	if (take > PROMPT_LINE - p->len) {
		p->overflow = true;
		take = 0;
	}
	memcpy(p->line + p->len, buf, take);
	p->len += take;
	if (nl != NULL)
		finish(p, true);
}

int agent_prompt_start(uv_loop_t *loop, const char *question,
		       void (*cb)(void *ctx, bool yes, const char *line),
		       void *ctx, struct agent_prompt **out)
{
	struct agent_prompt *p = NULL;
	int fd, flags, r = 0;

	*out = NULL;
	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return TETHER_ERR_NOT_FOUND;
	agent_prompt_write_all(fd, question, strlen(question));
	p = tether_calloc(1, sizeof(*p));
	if (p == NULL) {
		r = TETHER_ERR_NOMEM;
		goto fail;
	}
	p->fd = fd;
	p->cb = cb;
	p->ctx = ctx;
	/*
	 * The open file description is ours alone, so making it
	 * non-blocking cannot surprise the shell sharing the terminal.
	 */
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
	    uv_poll_init(loop, &p->poll, fd) != 0) {
		r = TETHER_ERR_SYS;
		goto fail;
	}
	p->poll.data = p;
	if (uv_poll_start(&p->poll, UV_READABLE, on_poll) != 0) {
		r = TETHER_ERR_SYS;
		goto fail_handle;
	}
	*out = p;
	goto out;
fail_handle:
	/* The handle is live: its close callback closes fd and frees p. */
	p->cb = NULL;
	uv_close((uv_handle_t *)&p->poll, on_closed);
	goto out;
fail:
	tether_free(p);
	close(fd);
out:
	return r;
}

void agent_prompt_cancel(struct agent_prompt *p)
{
	if (p == NULL)
		return;
	p->cb = NULL;
	/* Leave the terminal on a fresh line. */
	agent_prompt_write_all(p->fd, "\n", 1);
	uv_poll_stop(&p->poll);
	uv_close((uv_handle_t *)&p->poll, on_closed);
}
