/*
 * Whole writes to a descriptor: remote output to fds 1 and 2, files the
 * console saves, prompts on /dev/tty.  A descriptor may be shared with
 * whoever started us and left non-blocking by libuv, so a write that
 * would block waits instead of failing.
 */
#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include "console.h"

int console_fd_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	struct pollfd pfd;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			pfd.revents = 0;
			if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
				return -errno;
			continue;
		}
		return n < 0 ? -errno : -EIO;
	}
	return 0;
}
