/*
 * Listening sockets, for the relay's TLS port and its metrics: HOST:PORT
 * (IPv6 in brackets) parsed, bound and listened on, and the address a
 * socket ended up bound to (port 0 picks one).
 */
#include <stdio.h>
#include <string.h>

#include <tether/err.h>
#include <tether/num.h>

#include "relay.h"

int relay_parse_listen(const char *listen, struct sockaddr_storage *ss)
{
	const char *colon = strrchr(listen, ':');
	char host[256];
	uint64_t port;
	size_t n;

	memset(ss, 0, sizeof(*ss));
	if (colon == NULL || colon == listen)
		return TETHER_ERR_INVALID;
	n = (size_t)(colon - listen);
	if (listen[0] == '[' && n >= 2 && listen[n - 1] == ']') {
		listen++;
		n -= 2;
	}
	if (n >= sizeof(host) ||
	    tether_num_parse_u64(colon + 1, 0, 65535, &port) != 0)
		return TETHER_ERR_INVALID;
	memcpy(host, listen, n);
	host[n] = '\0';
	if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0 ||
	    uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0)
		return TETHER_OK;
	return TETHER_ERR_INVALID;
}

void relay_sockname(uv_tcp_t *tcp, char *out, size_t len)
{
	struct sockaddr_storage ss;
	int n = sizeof(ss), port = 0;
	char ip[64] = "?";

	memset(&ss, 0, sizeof(ss));
	uv_tcp_getsockname(tcp, (struct sockaddr *)&ss, &n);
	if (ss.ss_family == AF_INET) {
		uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		snprintf(out, len, "%s:%d", ip, port);
	} else {
		uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		snprintf(out, len, "[%s]:%d", ip, port);
	}
}

int relay_listen(struct relay *r, uv_tcp_t *tcp, const char *listen,
		 int backlog, uv_connection_cb cb)
{
	struct sockaddr_storage ss;
	int rc;

	uv_tcp_init(r->loop, tcp);
	tcp->data = r;
	if (relay_parse_listen(listen, &ss) != 0)
		return UV_EINVAL;
	if ((rc = uv_tcp_bind(tcp, (struct sockaddr *)&ss, 0)) != 0)
		return rc;
	return uv_listen((uv_stream_t *)tcp, backlog, cb);
}
