/*
 * Diagnostics collectors for the network: interfaces (getifaddrs and
 * /sys/class/net), routes and listening sockets (/proc/net), DNS
 * (resolv.conf).  docs/diagnostics.md describes the fields.  The owner of
 * a listening socket is found by matching socket inodes under /proc/PID/fd,
 * which only works for processes we may look into; others get pid null.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <tether/alloc.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/num.h>

#include "diag/input.h"
#include "diag/net.h"

#define IFACES_MAX 64
#define ADDRS_MAX 16
#define ROUTES_MAX 200
#define SOCKETS_MAX 300
#define DNS_MAX 16
#define NET_FILE (4u * 1024 * 1024)
/* Looking for socket owners gives up after this long. */
#define OWNER_SCAN_MS 1000

/* Reads /sys/class/net/IF/what, first line; false if unreadable. */
static bool sys_net(const char *ifname, const char *what, char *out,
		    size_t outlen)
{
	char path[PATH_MAX], *text = NULL, *nl;
	int n;

	n = snprintf(path, sizeof(path), "/sys/class/net/%s/%s", ifname, what);
	if (n < 0 || (size_t)n >= sizeof(path) ||
	    agent_diag_read(path, 256, &text, NULL) != 0)
		return false;
	nl = strchr(text, '\n');
	if (nl != NULL)
		*nl = '\0';
	snprintf(out, outlen, "%s", text);
	tether_free(text);
	return true;
}

static json_t *sys_net_str(const char *ifname, const char *what)
{
	char v[256];

	return sys_net(ifname, what, v, sizeof(v)) ? agent_diag_str(v, 64)
						   : json_null();
}

static json_t *sys_net_int(const char *ifname, const char *what)
{
	char v[256];
	const char *p = v;
	uint64_t n;

	if (!sys_net(ifname, what, v, sizeof(v)) ||
	    tether_num_scan_u64(&p, &n) != 0)
		return json_null();
	return json_integer((json_int_t)n);
}

static int mask_bits(const unsigned char *m, size_t len)
{
	int bits = 0;
	size_t i;

	for (i = 0; i < len; i++)
		bits += __builtin_popcount(m[i]);
	return bits;
}

/* "192.0.2.3/24" or "fe80::1/64" for one getifaddrs entry. */
static json_t *addr_str(const struct ifaddrs *ifa)
{
	char ip[INET6_ADDRSTRLEN], out[INET6_ADDRSTRLEN + 16];
	const void *a, *m = NULL;
	size_t mlen;
	int fam = ifa->ifa_addr->sa_family;

	if (fam == AF_INET) {
		a = &((const struct sockaddr_in *)ifa->ifa_addr)->sin_addr;
		if (ifa->ifa_netmask != NULL)
			m = &((const struct sockaddr_in *)ifa->ifa_netmask)
				 ->sin_addr;
		mlen = 4;
	} else {
		a = &((const struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr;
		if (ifa->ifa_netmask != NULL)
			m = &((const struct sockaddr_in6 *)ifa->ifa_netmask)
				 ->sin6_addr;
		mlen = 16;
	}
	if (inet_ntop(fam, a, ip, sizeof(ip)) == NULL)
		return NULL;
	if (m != NULL)
		snprintf(out, sizeof(out), "%s/%d", ip, mask_bits(m, mlen));
	else
		snprintf(out, sizeof(out), "%s", ip);
	return json_string(out);
}

/* The interface's entry in list, made on first sight. */
static json_t *iface(json_t *list, const struct ifaddrs *ifa)
{
	const char *name = ifa->ifa_name;
	json_t *e;
	size_t i;

	json_array_foreach (list, i, e)
		if (strcmp(json_string_value(json_object_get(e, "name")),
			   name) == 0)
			return e;
	if (json_array_size(list) >= IFACES_MAX)
		return NULL;
	e = json_pack("{s:o,s:o,s:b,s:b,s:b,s:o,s:o,s:[],s:o,s:o,s:o,s:o}",
		      "name", agent_diag_str(name, IFNAMSIZ), "state",
		      sys_net_str(name, "operstate"), "up",
		      (ifa->ifa_flags & IFF_UP) != 0, "running",
		      (ifa->ifa_flags & IFF_RUNNING) != 0, "loopback",
		      (ifa->ifa_flags & IFF_LOOPBACK) != 0, "mtu",
		      sys_net_int(name, "mtu"), "mac",
		      sys_net_str(name, "address"), "addresses", "rx_bytes",
		      sys_net_int(name, "statistics/rx_bytes"), "tx_bytes",
		      sys_net_int(name, "statistics/tx_bytes"), "rx_errors",
		      sys_net_int(name, "statistics/rx_errors"), "tx_errors",
		      sys_net_int(name, "statistics/tx_errors"));
	if (e == NULL || json_array_append_new(list, e) != 0)
		return NULL;
	return e;
}

json_t *agent_diag_network(void)
{
	struct ifaddrs *ifs, *ifa;
	json_t *list, *e, *addrs, *a;
	int fam;

	if (getifaddrs(&ifs) != 0)
		return agent_diag_errno(errno, "getifaddrs");
	list = json_array();
	for (ifa = ifs; list != NULL && ifa != NULL; ifa = ifa->ifa_next) {
		if (ifa->ifa_name == NULL)
			continue;
		e = iface(list, ifa);
		if (e == NULL || ifa->ifa_addr == NULL)
			continue;
		fam = ifa->ifa_addr->sa_family;
		addrs = json_object_get(e, "addresses");
		if ((fam != AF_INET && fam != AF_INET6) ||
		    json_array_size(addrs) >= ADDRS_MAX)
			continue;
		a = addr_str(ifa);
		if (a != NULL)
			json_array_append_new(addrs, a);
	}
	freeifaddrs(ifs);
	return list != NULL ? json_pack("{s:o}", "interfaces", list) : NULL;
}

/* Exactly n hex digits as a number. */
static bool hex_u32(const char *s, size_t n, uint32_t *v)
{
	uint32_t x = 0;
	size_t i;
	int d;

	if (strlen(s) < n || n > 8)
		return false;
	for (i = 0; i < n; i++) {
		d = tether_hex_value(s[i]);
		if (d < 0)
			return false;
		x = x << 4 | (uint32_t)d;
	}
	*v = x;
	return true;
}

/*
 * An address as /proc/net prints it: IPv4 as one 32-bit word in host
 * order; IPv6 in route files as 16 bytes in order (words false), in
 * socket files as four 32-bit words in host order (words true).
 */
static bool parse_addr(const char *s, int fam, bool words, char *out,
		       size_t outlen)
{
	unsigned char b[16];
	uint32_t w;
	size_t i;

	if (fam == AF_INET) {
		if (!hex_u32(s, 8, &w))
			return false;
		memcpy(b, &w, 4);
	} else if (words) {
		for (i = 0; i < 4; i++) {
			if (!hex_u32(s + 8 * i, 8, &w))
				return false;
			memcpy(b + 4 * i, &w, 4);
		}
	} else {
		if (tether_hex_decode(s, b, sizeof(b)) != 0)
			return false;
	}
	return inet_ntop(fam, b, out, (socklen_t)outlen) != NULL;
}

static void routes_v4(char *text, json_t *list)
{
	char *line, *next, *f[11], dst[INET6_ADDRSTRLEN], gw[INET6_ADDRSTRLEN];
	char d[INET6_ADDRSTRLEN + 16];
	uint32_t flags, mask;
	const char *p;
	uint64_t metric;
	bool first = true;

	for (line = text; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (first) {
			first = false; /* the header */
			continue;
		}
		if (json_array_size(list) >= ROUTES_MAX)
			return;
		if (agent_diag_fields(line, f, 11) < 8 ||
		    !parse_addr(f[1], AF_INET, false, dst, sizeof(dst)) ||
		    !parse_addr(f[2], AF_INET, false, gw, sizeof(gw)) ||
		    !hex_u32(f[3], strlen(f[3]), &flags) ||
		    !hex_u32(f[7], 8, &mask))
			continue;
		p = f[6];
		if ((flags & 0x1) == 0 || tether_num_scan_u64(&p, &metric) != 0)
			continue; /* not up */
		snprintf(d, sizeof(d), "%s/%d", dst,
			 mask_bits((const unsigned char *)&mask, 4));
		json_array_append_new(
		    list, json_pack("{s:i,s:s,s:o,s:o,s:I}", "family", 4,
				    "destination", d, "gateway",
				    (flags & 0x2) != 0 ? json_string(gw)
						       : json_null(),
				    "iface", agent_diag_str(f[0], IFNAMSIZ),
				    "metric", (json_int_t)metric));
	}
}

static void routes_v6(char *text, json_t *list)
{
	char *line, *next, *f[10], dst[INET6_ADDRSTRLEN], gw[INET6_ADDRSTRLEN];
	char d[INET6_ADDRSTRLEN + 16];
	uint32_t plen, metric, flags;

	for (line = text; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (json_array_size(list) >= ROUTES_MAX)
			return;
		if (agent_diag_fields(line, f, 10) != 10 ||
		    !parse_addr(f[0], AF_INET6, false, dst, sizeof(dst)) ||
		    !hex_u32(f[1], 2, &plen) ||
		    !parse_addr(f[4], AF_INET6, false, gw, sizeof(gw)) ||
		    !hex_u32(f[5], 8, &metric) || !hex_u32(f[8], 8, &flags))
			continue;
		/* Up, and not the host's own addresses on lo. */
		if ((flags & 0x1) == 0 || strcmp(f[9], "lo") == 0)
			continue;
		snprintf(d, sizeof(d), "%s/%u", dst, plen);
		json_array_append_new(
		    list, json_pack("{s:i,s:s,s:o,s:o,s:I}", "family", 6,
				    "destination", d, "gateway",
				    strcmp(gw, "::") != 0 ? json_string(gw)
							  : json_null(),
				    "iface", agent_diag_str(f[9], IFNAMSIZ),
				    "metric", (json_int_t)metric));
	}
}

json_t *agent_diag_routes(void)
{
	char *text = NULL;
	json_t *list = json_array(), *o;
	int r4, r6;

	if (list == NULL)
		return NULL;
	r4 = agent_diag_read("/proc/net/route", NET_FILE, &text, NULL);
	if (r4 == 0)
		routes_v4(text, list);
	tether_free(text);
	text = NULL;
	r6 = agent_diag_read("/proc/net/ipv6_route", NET_FILE, &text, NULL);
	if (r6 == 0)
		routes_v6(text, list);
	tether_free(text);
	if (r4 != 0 && r6 != 0) {
		json_decref(list);
		return agent_diag_errno(-r4, "/proc/net/route");
	}
	o = json_pack("{s:o}", "routes", list);
	/* No IPv6 is normal; say so without failing the section. */
	if (o != NULL && r6 != 0)
		json_object_set_new(
		    o, "errors", json_pack("[s]", "no /proc/net/ipv6_route"));
	return o;
}

json_t *agent_diag_dns(void)
{
	const char *path = "/etc/resolv.conf";
	json_t *ns, *search, *opts, *into;
	char *text = NULL, *line, *next, *f[DNS_MAX + 1];
	size_t n, i;
	int r;

	r = agent_diag_read(path, 65536, &text, NULL);
	if (r != 0)
		return agent_diag_errno(-r, path);
	ns = json_array();
	search = json_array();
	opts = json_array();
	for (line = text; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		n = agent_diag_fields(line, f, DNS_MAX + 1);
		if (n < 2)
			continue;
		if (strcmp(f[0], "nameserver") == 0)
			into = ns;
		else if (strcmp(f[0], "search") == 0 ||
			 strcmp(f[0], "domain") == 0)
			into = search;
		else if (strcmp(f[0], "options") == 0)
			into = opts;
		else
			continue;
		for (i = 1; i < n && json_array_size(into) < DNS_MAX; i++)
			json_array_append_new(into, agent_diag_str(f[i], 256));
	}
	tether_free(text);
	return json_pack("{s:o,s:o,s:o}", "nameservers", ns, "search", search,
			 "options", opts);
}

/* A listening socket and what we learn about its owner. */
struct lsock {
	uint64_t inode;
	json_t *entry;
};

static int cmp_lsock(const void *a, const void *b)
{
	const struct lsock *x = a, *y = b;

	return x->inode < y->inode ? -1 : x->inode > y->inode;
}

/* Listening TCP (state 0A) and bound, unconnected UDP (07) sockets. */
static void parse_sockets(char *text, const char *proto, int fam, bool udp,
			  json_t *list, struct lsock *socks, size_t *nsocks)
{
	char *line, *next, *f[10], addr[INET6_ADDRSTRLEN], *colon;
	uint32_t port, rport, st;
	uint64_t inode, uid;
	const char *p;
	bool first = true;

	for (line = text; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (first) {
			first = false;
			continue;
		}
		if (*nsocks >= SOCKETS_MAX)
			return;
		if (agent_diag_fields(line, f, 10) != 10 ||
		    (colon = strchr(f[1], ':')) == NULL ||
		    !hex_u32(colon + 1, 4, &port) || !hex_u32(f[3], 2, &st))
			continue;
		*colon = '\0';
		if (!parse_addr(f[1], fam, true, addr, sizeof(addr)))
			continue;
		colon = strchr(f[2], ':');
		if (colon == NULL || !hex_u32(colon + 1, 4, &rport))
			continue;
		if (udp ? (st != 0x07 || rport != 0) : st != 0x0A)
			continue;
		p = f[7];
		if (tether_num_scan_u64(&p, &uid) != 0)
			continue;
		p = f[9];
		if (tether_num_scan_u64(&p, &inode) != 0)
			continue;
		socks[*nsocks].inode = inode;
		socks[*nsocks].entry =
		    json_pack("{s:s,s:s,s:i,s:I,s:n,s:n}", "proto", proto,
			      "address", addr, "port", (int)port, "uid",
			      (json_int_t)uid, "pid", "process");
		if (socks[*nsocks].entry == NULL)
			continue;
		json_array_append(list, socks[*nsocks].entry);
		(*nsocks)++;
	}
}

/* The command name of pid, from /proc/PID/comm. */
static json_t *comm_of(const char *pid)
{
	char path[300], *text = NULL, *nl;
	json_t *s;

	snprintf(path, sizeof(path), "/proc/%s/comm", pid);
	if (agent_diag_read(path, 256, &text, NULL) != 0)
		return json_null();
	nl = strchr(text, '\n');
	if (nl != NULL)
		*nl = '\0';
	s = agent_diag_str(text, 64);
	tether_free(text);
	return s;
}

/* Looks at the fds of one process; false if we may not. */
static bool scan_fds(const char *pid, struct lsock *socks, size_t n)
{
	char path[PATH_MAX], pbuf[PATH_MAX], link[64];
	struct lsock key, *hit;
	struct dirent *de;
	uint64_t pid_v;
	const char *p;
	ssize_t len;
	DIR *d;

	/* Not a process: nothing to look into, nothing denied. */
	if (tether_num_parse_u64(pid, 1, INT32_MAX, &pid_v) != 0)
		return true;
	snprintf(path, sizeof(path), "/proc/%s/fd", pid);
	d = opendir(agent_diag_path(path, pbuf, sizeof(pbuf)));
	if (d == NULL)
		return errno != EACCES && errno != EPERM;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		len = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		if (len <= 8)
			continue;
		link[len] = '\0';
		if (strncmp(link, "socket:[", 8) != 0)
			continue;
		p = link + 8;
		if (tether_num_scan_u64(&p, &key.inode) != 0)
			continue;
		hit = bsearch(&key, socks, n, sizeof(*socks), cmp_lsock);
		if (hit == NULL ||
		    !json_is_null(json_object_get(hit->entry, "pid")))
			continue;
		json_object_set_new(hit->entry, "pid",
				    json_integer((json_int_t)pid_v));
		json_object_set_new(hit->entry, "process", comm_of(pid));
	}
	closedir(d);
	return true;
}

/* Fills in pid and process where /proc lets us see the owner. */
static void find_owners(struct lsock *socks, size_t n, json_t *o)
{
	char pbuf[PATH_MAX];
	uint64_t until = agent_diag_now_ms() + OWNER_SCAN_MS;
	size_t denied = 0;
	struct dirent *de;
	DIR *d;

	if (n == 0)
		return;
	qsort(socks, n, sizeof(*socks), cmp_lsock);
	d = opendir(agent_diag_path("/proc", pbuf, sizeof(pbuf)));
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		if (!scan_fds(de->d_name, socks, n))
			denied++;
		if (agent_diag_now_ms() > until) {
			json_object_set_new(
			    o, "errors",
			    json_pack("[s]", "gave up looking for owners"));
			break;
		}
	}
	closedir(d);
	if (denied > 0)
		json_object_set_new(o, "owners_hidden",
				    json_integer((json_int_t)denied));
}

json_t *agent_diag_listening(void)
{
	static const struct {
		const char *path;
		const char *proto;
		int fam;
		bool udp;
	} files[] = {
	    {"/proc/net/tcp", "tcp", AF_INET, false},
	    {"/proc/net/tcp6", "tcp6", AF_INET6, false},
	    {"/proc/net/udp", "udp", AF_INET, true},
	    {"/proc/net/udp6", "udp6", AF_INET6, true},
	};
	struct lsock *socks;
	size_t nsocks = 0, i, read_ok = 0;
	json_t *list, *o = NULL;
	char *text;
	int r, first_err = 0;

	socks = tether_calloc(SOCKETS_MAX, sizeof(*socks));
	list = json_array();
	if (socks == NULL || list == NULL)
		goto out;
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		text = NULL;
		r = agent_diag_read(files[i].path, NET_FILE, &text, NULL);
		if (r == 0) {
			read_ok++;
			parse_sockets(text, files[i].proto, files[i].fam,
				      files[i].udp, list, socks, &nsocks);
		} else if (first_err == 0) {
			first_err = r;
		}
		tether_free(text);
	}
	if (read_ok == 0) {
		o = agent_diag_errno(-first_err, "/proc/net/tcp");
		goto out;
	}
	o = json_pack("{s:O}", "sockets", list);
	if (o != NULL)
		find_owners(socks, nsocks, o);
out:
	for (i = 0; socks != NULL && i < nsocks; i++)
		json_decref(socks[i].entry);
	tether_free(socks);
	json_decref(list);
	return o;
}
