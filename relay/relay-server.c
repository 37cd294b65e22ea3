/*
 * The relay's event loop: the TLS listener and accept, each link's
 * callbacks (a CTRL frame decoded and handed to the module for the peer's
 * role, a DATA frame to routing), the tick (hello and join timeouts, idle
 * peers and peers that do not read, invite expiry), and the signals that
 * stop it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <tether/err.h>
#include <tether/log.h>
#include <tether/tls.h>

#include "relay.h"

/* What each role may send: until hello either kind of client's. */
static const unsigned role_dirs[RELAY_ROLES] = {
    [RELAY_PEER_NEW] = TETHER_CTRL_C2R | TETHER_CTRL_A2R,
    [RELAY_PEER_CONSOLE] = TETHER_CTRL_C2R,
    [RELAY_PEER_AGENT] = TETHER_CTRL_A2R,
};

static void handle_ctrl(struct relay_peer *p, const struct tether_frame *f)
{
	char why[TETHER_CTRL_WHY_MAX];
	struct tether_ctrl_msg m;
	int r;

	r = tether_ctrl_decode(f->payload, f->len, role_dirs[p->role], &m, why,
			       sizeof(why));
	if (r == TETHER_ERR_NOMEM)
		relay_drop(p, TETHER_ERR_NOMEM, "out of memory");
	else if (r == 0 && m.type == TETHER_CTRL_PING)
		relay_send(p, TETHER_CTRL_PONG, NULL);
	/* A pong only shows the peer is there: last_seen says so already. */
	else if (r == 0 && m.type == TETHER_CTRL_PONG)
		tether_log_debug("pong from %s", p->addr);
	else if (p->role == RELAY_PEER_NEW)
		relay_hello_message(p, r, &m, why);
	else if (p->role == RELAY_PEER_CONSOLE)
		relay_console_message(p, f, r, &m, why);
	else
		relay_agent_message(p, r, &m, why);
	tether_ctrl_msg_free(&m);
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

static void on_link_close(struct tether_link *l, int reason)
{
	struct relay_peer *p = tether_link_data(l);
	struct relay *r;

	if (p == NULL)
		return;
	r = p->relay;
	if (p->role == RELAY_PEER_NEW && reason == TETHER_ERR_TLS)
		r->stats.handshake_failures++;
	tether_log_debug("peer %s closed: %s", p->addr,
			 tether_link_close_reason(l));
	p->link = NULL;
	relay_channels_close_peer(r, p,
				  p->role == RELAY_PEER_AGENT
				      ? "agent disconnected"
				      : "console disconnected");
	if (p->role == RELAY_PEER_AGENT)
		relay_agent_gone(p);
	relay_sessions_forget(r, p);
	/* Whoever waited for this peer to drain must not wait forever. */
	relay_drained(p);
	relay_peer_free(p);
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
	p = relay_peer_new(r);
	if (p == NULL)
		return;
	p->link = tether_link_accept(server, r->lctx, &peer_cbs, p);
	if (p->link == NULL) {
		relay_peer_free(p);
		return;
	}
	snprintf(p->addr, sizeof(p->addr), "%s", tether_link_peer(p->link));
	if (r->npeers > r->max_peers || r->stopping)
		relay_drop(p, TETHER_ERR_LIMIT, "relay is full");
	else if (relay_too_many_from(r, p->addr))
		relay_drop(p, TETHER_ERR_LIMIT,
			   "too many connections from your address");
}

/*
 * Notes when p's output last moved: the socket took some of it, or none
 * was waiting.  Output that waits and never moves is a peer that does
 * not read, whoever filled its queue.
 */
static void watch_output(struct relay_peer *p, uint64_t now)
{
	uint64_t written = tether_link_written(p->link);

	if (tether_link_pending(p->link) == 0 || written != p->written)
		p->output_moved = now;
	p->written = written;
}

static void on_tick(uv_timer_t *t)
{
	struct relay *r = t->data;
	uint64_t now = relay_now_ms();
	struct relay_peer *p;

	for (p = r->peers; p != NULL; p = p->next) {
		if (p->link == NULL)
			continue;
		watch_output(p, now);
		/*
		 * We stopped reading a paused peer: its silence is ours.  A
		 * peer paused on itself (its answers pile up unread) and one
		 * that others wait on are held to their output moving instead,
		 * below, or a peer that never reads would hold its queue, and
		 * whoever waits on it, forever.
		 */
		if (p->blocked_on != NULL)
			p->last_seen = now;
		if (p->role == RELAY_PEER_NEW &&
		    now - p->connected_at > RELAY_HELLO_TIMEOUT_MS)
			relay_drop(p, TETHER_ERR_PROTOCOL, "no hello in time");
		else if (p->role == RELAY_PEER_AGENT && p->session == NULL &&
			 p->agent_id == 0 &&
			 now - p->connected_at > RELAY_JOIN_TIMEOUT_MS)
			relay_drop(p, TETHER_ERR_PROTOCOL, "no join in time");
		else if (now - p->output_moved > r->idle_timeout_ms)
			relay_drop(p, TETHER_ERR_CLOSED, "write timeout");
		else if (now - p->last_seen > r->idle_timeout_ms)
			relay_drop(p, TETHER_ERR_CLOSED, "idle timeout");
	}
	relay_sessions_expire(r);
	relay_policy_tick(r);
}

/* A removed technician is cut off within this timer's period. */
static void on_access(uv_timer_t *t)
{
	relay_access_recheck(t->data);
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
	uv_close((uv_handle_t *)&r->access, NULL);
	uv_close((uv_handle_t *)&r->sigint, NULL);
	uv_close((uv_handle_t *)&r->sigterm, NULL);
	for (p = r->peers; p != NULL; p = p->next)
		relay_drop(p, TETHER_ERR_CLOSED, "relay shutting down");
}

static int start_listener(struct relay *r, const char *listen, const char *fp)
{
	char where[96];
	int rc;

	rc = relay_listen(r, &r->listener, listen, 512, on_connection);
	if (rc == UV_EINVAL) {
		fprintf(stderr,
			"tether-relay: bad --listen address '%s' "
			"(want HOST:PORT)\n",
			listen);
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
	if ((rc = relay_store_open(db, &r.store)) != 0) {
		fprintf(stderr,
			"tether-relay: cannot open %s: %s (did you "
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
	memcpy(r.fingerprint, fp, sizeof(r.fingerprint));
#ifdef TETHER_TEST_HOOKS
	tether_link_ctx_enable_dump(r.lctx, getenv("TETHER_PLAINTEXT_DUMP"));
#endif
	signal(SIGPIPE, SIG_IGN);
	if (start_listener(&r, o->listen, fp) != 0 ||
	    (strcmp(o->metrics_listen, "off") != 0 &&
	     relay_metrics_start(&r, o->metrics_listen, o->metrics_required) !=
		 0)) {
		rc = 1;
		goto out;
	}
	uv_timer_init(r.loop, &r.tick);
	r.tick.data = &r;
	uv_timer_start(&r.tick, on_tick, 1000, 1000);
	uv_timer_init(r.loop, &r.access);
	r.access.data = &r;
	uv_timer_start(&r.access, on_access, RELAY_ACCESS_CHECK_MS,
		       RELAY_ACCESS_CHECK_MS);
	uv_signal_init(r.loop, &r.sigint);
	uv_signal_init(r.loop, &r.sigterm);
	r.sigint.data = r.sigterm.data = &r;
	uv_signal_start(&r.sigint, on_stop_signal, SIGINT);
	uv_signal_start(&r.sigterm, on_stop_signal, SIGTERM);
	tether_log_info("serving with data in %s", data_dir);
	uv_run(r.loop, UV_RUN_DEFAULT);
	rc = 0;
out:
	relay_sessions_free(&r);
	tether_link_ctx_free(r.lctx);
	tether_tls_ctx_free(r.tls);
	relay_store_close(r.store);
	uv_loop_close(r.loop);
	return rc;
}
