/*
 * The relay's event loop: the TLS listener, each peer's life from hello to
 * close, keepalive and expiry, signals, and the reply/audit helpers the
 * message handlers share.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <tether/alloc.h>
#include <tether/crypto.h>
#include <tether/err.h>
#include <tether/log.h>
#include <tether/proto.h>
#include <tether/tls.h>

#include "relay.h"

uint64_t relay_now_ms(void)
{
	return uv_hrtime() / 1000000;
}

void relay_send(struct relay_peer *p, json_t *msg)
{
	if (p->link != NULL && tether_link_is_open(p->link))
		tether_link_send_json(p->link, msg);
	json_decref(msg);
}

void relay_reply_ok(struct relay_peer *p, int64_t id, json_t *fields)
{
	json_t *m = fields != NULL ? fields : json_object();
	int rc = TETHER_ERR_CLOSED;

	json_object_set_new(m, "t", json_string("ok"));
	json_object_set_new(m, "id", json_integer(id));
	if (p->link != NULL && tether_link_is_open(p->link))
		rc = tether_link_send_json(p->link, m);
	json_decref(m);
	/* Never leave a request unanswered, even when the answer is huge. */
	if (rc == TETHER_ERR_TOO_LARGE)
		relay_reply_err(p, id, "limit",
				"the answer is over 256 KiB; narrow the request");
}

void relay_reply_err(struct relay_peer *p, int64_t id, const char *code,
		     const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	relay_send(p, json_pack("{s:s, s:I, s:s, s:s}", "t", "err", "id",
				(json_int_t)id, "code", code, "message", text));
}

void relay_drop(struct relay_peer *p, int err, const char *reason)
{
	if (p->link == NULL)
		return;
	if (err == TETHER_ERR_PROTOCOL)
		p->relay->stats.protocol_errors++;
	tether_log_info("closing %s: %s", p->addr, reason);
	tether_link_close_error(p->link, err, reason);
}

bool relay_name_valid(const char *s, size_t max)
{
	size_t n;

	if (s == NULL)
		return false;
	for (n = 0; s[n] != '\0'; n++)
		if (!(s[n] >= 'a' && s[n] <= 'z') &&
		    !(s[n] >= 'A' && s[n] <= 'Z') &&
		    !(s[n] >= '0' && s[n] <= '9') && !strchr("_.-", s[n]))
			return false;
	return n >= 1 && n <= max;
}

bool relay_one_of(const char *s, const char *const *words)
{
	for (; s != NULL && *words != NULL; words++)
		if (strcmp(s, *words) == 0)
			return true;
	return false;
}

const char *relay_actor(const struct relay_peer *p, char *buf, size_t len)
{
	if (p == NULL)
		return "relay";
	if (p->role == RELAY_PEER_CONSOLE) {
		snprintf(buf, len, "tech:%s", p->tech.name);
		return buf;
	}
	if (p->role == RELAY_PEER_AGENT && p->agent_id != 0) {
		snprintf(buf, len, "agent:%s", p->agent_name);
		return buf;
	}
	if (p->role == RELAY_PEER_AGENT)
		return "agent";
	snprintf(buf, len, "peer:%s", p->addr);
	return buf;
}

void relay_audit(struct relay *r, const char *actor, int64_t ticket_id,
		 int64_t session_id, const char *event, json_t *detail)
{
	char *text = NULL;
	int rc;

	if (detail != NULL)
		text = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);
	rc = tether_store_audit(r->store, actor, ticket_id, session_id, event,
				text);
	if (rc != 0)
		tether_log_err(rc, "audit %s", event);
	free(text);
	json_decref(detail);
}

static void peer_unlink(struct relay *r, struct relay_peer *p)
{
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		r->peers = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	r->npeers--;
}

static void on_link_close(struct tether_link *l, int reason)
{
	struct relay_peer *p = tether_link_data(l), *q;
	struct relay *r;

	if (p == NULL)
		return;
	r = p->relay;
	if (p->role == RELAY_PEER_NEW && reason == TETHER_ERR_TLS)
		r->stats.handshake_failures++;
	tether_log_debug("peer %s closed: %s", p->addr,
			 tether_link_close_reason(l));
	p->link = NULL;
	relay_channels_close_peer(r, p, p->role == RELAY_PEER_AGENT
						? "agent disconnected"
						: "console disconnected");
	if (p->role == RELAY_PEER_AGENT)
		relay_agent_gone(p);
	for (struct relay_session *s = r->sessions; s != NULL; s = s->next)
		if (s->confirmer == p)
			s->confirmer = NULL;
	/* Whoever waited for this peer to drain must not wait forever. */
	for (q = r->peers; q != NULL; q = q->next) {
		if (q->blocked_on == p) {
			q->blocked_on = NULL;
			if (q->link != NULL)
				tether_link_resume(q->link);
		}
	}
	peer_unlink(r, p);
	(void)reason;
	tether_free(p);
}

static int handle_hello(struct relay_peer *p, json_t *msg)
{
	struct relay *r = p->relay;
	const char *role = NULL, *token = NULL;
	uint8_t hash[TETHER_SHA256_LEN];
	char actor[96];
	json_int_t version = 0;
	const char *sep;
	int64_t id;
	char *end;

	if (json_unpack(msg, "{s:s, s?I, s?s}", "role", &role, "version",
			&version, "token", &token) != 0 ||
	    version != TETHER_PROTOCOL_VERSION)
		return TETHER_ERR_PROTOCOL;
	if (strcmp(role, "agent") == 0) {
		p->role = RELAY_PEER_AGENT;
		goto welcome;
	}
	if (strcmp(role, "console") != 0 || token == NULL)
		return TETHER_ERR_PROTOCOL;
	/* Token guessing costs a slot in the same limiter as code guessing,
	 * and a throttled source writes no audit rows. */
	if (relay_rate_limited(r, p->addr)) {
		r->stats.auth_failures++;
		relay_drop(p, TETHER_ERR_LIMIT,
			   "too many attempts, wait a minute");
		return TETHER_ERR_LIMIT;
	}
	/* tt_<id>_<secret>: look the id up, compare the secret's hash. */
	if (strncmp(token, "tt_", 3) != 0)
		goto bad_token;
	id = strtoll(token + 3, &end, 10);
	if (end == token + 3 || *end != '_' || id <= 0)
		goto bad_token;
	sep = end + 1;
	if (tether_store_tech_get(r->store, id, &p->tech) != 0 ||
	    tether_sha256(sep, strlen(sep), hash) != 0 ||
	    !tether_ct_equal(hash, p->tech.token_hash, sizeof(hash)))
		goto bad_token;
	p->role = RELAY_PEER_CONSOLE;
welcome:
	tether_link_set_max_payload(p->link, TETHER_FRAME_MAX);
	msg = json_pack("{s:s, s:i}", "t", "welcome", "version",
			TETHER_PROTOCOL_VERSION);
	if (p->role == RELAY_PEER_AGENT) {
		char hex[2 * sizeof(p->challenge) + 1];

		/* Fresh per connection: a signature cannot be replayed. */
		if (tether_random(p->challenge, sizeof(p->challenge)) != 0 ||
		    tether_hex_encode(p->challenge, sizeof(p->challenge), hex,
				      sizeof(hex)) != 0) {
			json_decref(msg);
			relay_drop(p, TETHER_ERR_INTERNAL, "internal error");
			return TETHER_ERR_INTERNAL;
		}
		json_object_set_new(msg, "challenge", json_string(hex));
	}
	if (p->role == RELAY_PEER_CONSOLE) {
		json_object_set_new(msg, "technician",
				    json_string(p->tech.name));
		json_object_set_new(msg, "role", json_string(p->tech.role));
	}
	relay_send(p, msg);
	return TETHER_OK;
bad_token:
	memset(&p->tech, 0, sizeof(p->tech));
	r->stats.auth_failures++;
	relay_rate_fail(r, p->addr);
	relay_audit(r, relay_actor(p, actor, sizeof(actor)), 0, 0,
		    "auth_failed", json_pack("{s:s}", "addr", p->addr));
	relay_drop(p, TETHER_ERR_AUTH, "invalid token");
	return TETHER_ERR_AUTH;
}

static void handle_ctrl(struct relay_peer *p, const struct tether_frame *f)
{
	json_error_t jerr;
	const char *type;
	json_t *msg;

	msg = json_loadb((const char *)f->payload, f->len,
			 JSON_REJECT_DUPLICATES,
			 &jerr);
	if (msg == NULL || !json_is_object(msg) ||
	    (type = json_string_value(json_object_get(msg, "t"))) == NULL) {
		relay_drop(p, TETHER_ERR_PROTOCOL, "malformed control message");
		goto out;
	}
	if (strcmp(type, "ping") == 0) {
		relay_send(p, json_pack("{s:s}", "t", "pong"));
	} else if (strcmp(type, "pong") == 0) {
		/* last_seen already updated */
	} else if (p->role == RELAY_PEER_NEW) {
		if (strcmp(type, "hello") != 0 ||
		    handle_hello(p, msg) == TETHER_ERR_PROTOCOL)
			relay_drop(p, TETHER_ERR_PROTOCOL,
				   "expected hello with protocol version 1");
	} else if (p->role == RELAY_PEER_CONSOLE) {
		relay_console_message(p, type, msg);
	} else {
		relay_agent_message(p, type, msg);
	}
out:
	json_decref(msg);
}

static void on_link_frame(struct tether_link *l, const struct tether_frame *f)
{
	struct relay_peer *p = tether_link_data(l);

	p->last_seen = relay_now_ms();
	if (f->type == TETHER_FRAME_CTRL)
		handle_ctrl(p, f);
	else if (p->role == RELAY_PEER_NEW)
		relay_drop(p, TETHER_ERR_PROTOCOL, "data before hello");
	else
		relay_forward(p, f);
	/*
	 * A peer that asks without reading the answers fills its own queue:
	 * stop taking its requests until it drains, as for forwarding.
	 */
	if (p->link != NULL && tether_link_over_high_water(p->link)) {
		p->blocked_on = p;
		tether_link_pause(p->link);
	}
}

static void on_link_open(struct tether_link *l)
{
	struct relay_peer *p = tether_link_data(l);

	p->relay->stats.handshakes++;
}

static void on_link_drain(struct tether_link *l)
{
	relay_drained(tether_link_data(l));
}

static const struct tether_link_cbs peer_cbs = {
	.on_open = on_link_open,
	.on_frame = on_link_frame,
	.on_drain = on_link_drain,
	.on_close = on_link_close,
};

static void on_connection(uv_stream_t *server, int status)
{
	struct relay *r = server->data;
	struct relay_peer *p;

	if (status < 0) {
		tether_log_warn("accept: %s", uv_strerror(status));
		return;
	}
	p = tether_calloc(1, sizeof(*p));
	if (p == NULL)
		return;
	p->relay = r;
	p->connected_at = p->last_seen = relay_now_ms();
	p->link = tether_link_accept(server, r->lctx, &peer_cbs, p);
	if (p->link == NULL) {
		tether_free(p);
		return;
	}
	snprintf(p->addr, sizeof(p->addr), "%s", tether_link_peer(p->link));
	p->next = r->peers;
	if (r->peers != NULL)
		r->peers->prev = p;
	r->peers = p;
	r->npeers++;
	if (r->npeers > r->max_peers || r->stopping)
		relay_drop(p, TETHER_ERR_LIMIT, "relay is full");
	else if (relay_too_many_from(r, p->addr))
		relay_drop(p, TETHER_ERR_LIMIT,
			   "too many connections from your address");
}

static void on_tick(uv_timer_t *t)
{
	struct relay *r = t->data;
	uint64_t now = relay_now_ms();
	struct relay_peer *p;

	for (p = r->peers; p != NULL; p = p->next) {
		if (p->link == NULL)
			continue;
		/* We stopped reading a paused peer: its silence is ours. */
		if (p->blocked_on != NULL)
			p->last_seen = now;
		if (p->role == RELAY_PEER_NEW &&
		    now - p->connected_at > RELAY_HELLO_TIMEOUT_MS)
			relay_drop(p, TETHER_ERR_PROTOCOL, "no hello in time");
		else if (p->role == RELAY_PEER_AGENT && p->session == NULL &&
			 p->agent_id == 0 &&
			 now - p->connected_at > RELAY_JOIN_TIMEOUT_MS)
			relay_drop(p, TETHER_ERR_PROTOCOL, "no join in time");
		else if (now - p->last_seen > r->idle_timeout_ms)
			relay_drop(p, TETHER_ERR_CLOSED, "idle timeout");
	}
	tether_store_session_expire(r->store, time(NULL), NULL);
}

static void on_stop_signal(uv_signal_t *s, int signum)
{
	struct relay *r = s->data;
	struct relay_peer *p;

	if (r->stopping)
		return;
	tether_log_info("signal %d: shutting down", signum);
	r->stopping = true;
	uv_close((uv_handle_t *)&r->listener, NULL);
	if (r->metrics_on)
		uv_close((uv_handle_t *)&r->metrics, NULL);
	uv_close((uv_handle_t *)&r->tick, NULL);
	uv_close((uv_handle_t *)&r->sigint, NULL);
	uv_close((uv_handle_t *)&r->sigterm, NULL);
	for (p = r->peers; p != NULL; p = p->next)
		relay_drop(p, TETHER_ERR_CLOSED, "relay shutting down");
}

int relay_parse_listen(const char *listen, struct sockaddr_storage *ss)
{
	char host[256];
	const char *colon = strrchr(listen, ':');
	long port;
	char *end;
	size_t n;

	if (colon == NULL || colon == listen)
		return TETHER_ERR_INVALID;
	n = (size_t)(colon - listen);
	if (listen[0] == '[' && n >= 2 && listen[n - 1] == ']') {
		listen++;
		n -= 2;
	}
	if (n >= sizeof(host))
		return TETHER_ERR_INVALID;
	memcpy(host, listen, n);
	host[n] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || end == colon + 1 || port < 0 || port > 65535)
		return TETHER_ERR_INVALID;
	if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0 ||
	    uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0)
		return TETHER_OK;
	return TETHER_ERR_INVALID;
}

/* "ip:port" a TCP handle is bound to. */
void relay_sockname(uv_tcp_t *tcp, char *out, size_t len)
{
	struct sockaddr_storage ss;
	int n = sizeof(ss), port = 0;
	char ip[64] = "?";

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

static int start_listener(struct relay *r, const char *listen,
			  const char *fp)
{
	char where[96];
	int rc;

	rc = relay_listen(r, &r->listener, listen, 512, on_connection);
	if (rc == UV_EINVAL) {
		fprintf(stderr, "tether-relay: bad --listen address '%s' "
				"(want HOST:PORT)\n", listen);
		return TETHER_ERR_INVALID;
	}
	if (rc != 0) {
		fprintf(stderr, "tether-relay: cannot listen on %s: %s\n",
			listen, uv_strerror(rc));
		return TETHER_ERR_SYS;
	}
	relay_sockname(&r->listener, where, sizeof(where));
	printf("tether-relay listening on %s fingerprint %s\n", where, fp);
	fflush(stdout);
	return TETHER_OK;
}

/*
 * Raises the descriptor limit as far as allowed and keeps the peer cap
 * below it, so that "relay is full" is said before accept() starts failing.
 */
static unsigned peer_capacity(void)
{
	struct rlimit rl;
	rlim_t room;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 512;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	room = rl.rlim_cur > 128 ? rl.rlim_cur - 64 : 64;
	return room < RELAY_MAX_PEERS ? (unsigned)room : RELAY_MAX_PEERS;
}

int relay_run(const struct relay_opts *o)
{
	const char *data_dir = o->data_dir;
	char db[4096], cert[4096], key[4096], fp[TETHER_TLS_FP_LEN];
	struct relay r;
	int rc;

	memset(&r, 0, sizeof(r));
	r.loop = uv_default_loop();
	r.max_peers = peer_capacity();
	r.idle_timeout_ms = (uint64_t)o->idle_s * 1000;
	r.next_channel = 1;
	snprintf(db, sizeof(db), "%s/tether.db", data_dir);
	snprintf(cert, sizeof(cert), "%s/cert.pem", data_dir);
	snprintf(key, sizeof(key), "%s/key.pem", data_dir);
	if ((rc = tether_store_open(db, &r.store)) != 0) {
		fprintf(stderr, "tether-relay: cannot open %s: %s (did you "
				"run tether-relay init --data %s?)\n",
			db, tether_strerror(rc), data_dir);
		return 1;
	}
	r.tls = tether_tls_ctx_new_server(cert, key);
	r.lctx = r.tls != NULL ? tether_link_ctx_new(r.tls) : NULL;
	if (r.lctx == NULL || tether_tls_cert_fingerprint(cert, fp) != 0) {
		fprintf(stderr, "tether-relay: cannot load %s and %s\n", cert,
			key);
		rc = 1;
		goto out;
	}
#ifdef TETHER_TEST_HOOKS
	tether_link_ctx_enable_dump(r.lctx, getenv("TETHER_PLAINTEXT_DUMP"));
#endif
	signal(SIGPIPE, SIG_IGN);
	if (start_listener(&r, o->listen, fp) != 0 ||
	    (strcmp(o->metrics_listen, "off") != 0 &&
	     relay_metrics_start(&r, o->metrics_listen,
				 o->metrics_required) != 0)) {
		rc = 1;
		goto out;
	}
	uv_timer_init(r.loop, &r.tick);
	r.tick.data = &r;
	uv_timer_start(&r.tick, on_tick, 1000, 1000);
	uv_signal_init(r.loop, &r.sigint);
	uv_signal_init(r.loop, &r.sigterm);
	r.sigint.data = r.sigterm.data = &r;
	uv_signal_start(&r.sigint, on_stop_signal, SIGINT);
	uv_signal_start(&r.sigterm, on_stop_signal, SIGTERM);
	tether_log_info("serving with data in %s", data_dir);
	uv_run(r.loop, UV_RUN_DEFAULT);
	rc = 0;
out:
	while (r.sessions != NULL) {
		struct relay_session *s = r.sessions;

		r.sessions = s->next;
		tether_free(s->facts);
		tether_free(s);
	}
	tether_link_ctx_free(r.lctx);
	tether_tls_ctx_free(r.tls);
	tether_store_close(r.store);
	uv_loop_close(r.loop);
	return rc;
}
