/*
 * The store's interface (relay-store.h): each call checks its arguments,
 * clears its out-parameters, dispatches to the backend's ops, and frees
 * what a failed call left half-filled, so that every backend keeps the
 * same contract without repeating it.  The structs' free functions live
 * here too.
 */
#include <string.h>

#include <tether/alloc.h>
#include <tether/code.h>
#include <tether/crypto.h>
#include <tether/err.h>

#include "relay-store.h"

/*
 * The body of a list call: the out-parameters *out and *n cleared, the
 * backend called, and on failure whatever it filled freed.
 */
#define LIST_CALL(free_fn, call)                                               \
	do {                                                                   \
		int r_;                                                        \
                                                                               \
		*out = NULL;                                                   \
		*n = 0;                                                        \
		r_ = (call);                                                   \
		if (r_ != 0) {                                                 \
			free_fn(*out, *n);                                     \
			*out = NULL;                                           \
			*n = 0;                                                \
		}                                                              \
		return r_;                                                     \
	} while (0)

/* ---- Open and close ---- */

void relay_store_close(struct relay_store *st)
{
	if (st != NULL)
		st->ops->close(st);
}

/* ---- Freeing what the store hands out ---- */

void relay_store_techs_free(struct relay_store_tech *v, size_t n)
{
	(void)n;
	tether_free(v);
}

void relay_store_ticket_clear(struct relay_store_ticket *t)
{
	if (t == NULL)
		return;
	tether_free(t->title);
	tether_free(t->customer);
	tether_free(t->resolution);
	tether_free(t->created_by);
	tether_free(t->assignee);
	memset(t, 0, sizeof(*t));
}

void relay_store_tickets_free(struct relay_store_ticket *v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++)
		relay_store_ticket_clear(&v[i]);
	tether_free(v);
}

void relay_store_session_clear(struct relay_store_session *s)
{
	if (s == NULL)
		return;
	tether_free(s->info);
	tether_free(s->agent_facts);
	/* Also wipes the resume hash. */
	tether_wipe(s, sizeof(*s));
}

void relay_store_sessions_free(struct relay_store_session *v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++)
		relay_store_session_clear(&v[i]);
	tether_free(v);
}

void relay_store_audits_free(struct relay_store_audit *v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++) {
		tether_free(v[i].actor);
		tether_free(v[i].event);
		tether_free(v[i].detail);
	}
	tether_free(v);
}

void relay_store_agent_rows_free(struct relay_store_agent_row *v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++) {
		tether_free(v[i].labels);
		tether_free(v[i].facts);
	}
	tether_free(v);
}

static void check_clear(struct relay_store_check *c)
{
	tether_free(c->output);
	tether_free(c->perfdata);
	memset(c, 0, sizeof(*c));
}

void relay_store_check_prev_clear(struct relay_store_check_prev *p)
{
	if (p == NULL)
		return;
	check_clear(&p->check);
	memset(p, 0, sizeof(*p));
}

void relay_store_checks_free(struct relay_store_check *v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++)
		check_clear(&v[i]);
	tether_free(v);
}

void relay_store_attachment_clear(struct relay_store_attachment *a)
{
	if (a == NULL)
		return;
	tether_free(a->kind);
	tether_free(a->source);
	tether_free(a->data);
	memset(a, 0, sizeof(*a));
}

void relay_store_attachments_free(struct relay_store_attachment *v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++)
		relay_store_attachment_clear(&v[i]);
	tether_free(v);
}

/* ---- Technicians ---- */

int relay_store_tech_add(struct relay_store *st, const char *name,
			 enum tether_tech_role role,
			 const uint8_t token_hash[RELAY_STORE_HASH_LEN],
			 int64_t *id)
{
	if (id != NULL)
		*id = 0;
	if (!tether_id_name_valid(name) ||
	    (unsigned)role > TETHER_TECH_AUDITOR || token_hash == NULL)
		return TETHER_ERR_INVALID;
	return st->ops->tech_add(st, name, role, token_hash, id);
}

int relay_store_tech_set_role(struct relay_store *st, int64_t id,
			      enum tether_tech_role role)
{
	if (id <= 0 || (unsigned)role > TETHER_TECH_AUDITOR)
		return TETHER_ERR_INVALID;
	return st->ops->tech_set_role(st, id, role);
}

int relay_store_tech_remove(struct relay_store *st, const char *name)
{
	if (name == NULL)
		return TETHER_ERR_INVALID;
	return st->ops->tech_remove(st, name);
}

int relay_store_tech_by_name(struct relay_store *st, const char *name,
			     struct relay_store_tech *out)
{
	int r;

	if (name == NULL || out == NULL)
		return TETHER_ERR_INVALID;
	memset(out, 0, sizeof(*out));
	r = st->ops->tech_by_name(st, name, out);
	if (r != 0)
		tether_wipe(out, sizeof(*out));
	return r;
}

int relay_store_tech_register_key(
    struct relay_store *st, int64_t id,
    const uint8_t token_hash[RELAY_STORE_HASH_LEN],
    const uint8_t pubkey[TETHER_SIGN_PUB_LEN])
{
	if (id < 1 || token_hash == NULL || pubkey == NULL)
		return TETHER_ERR_INVALID;
	return st->ops->tech_register_key(st, id, token_hash, pubkey);
}

int relay_store_tech_set_token(struct relay_store *st, const char *name,
			       const uint8_t token_hash[RELAY_STORE_HASH_LEN],
			       int64_t *id)
{
	if (id != NULL)
		*id = 0;
	if (name == NULL || token_hash == NULL)
		return TETHER_ERR_INVALID;
	return st->ops->tech_set_token(st, name, token_hash, id);
}

int relay_store_tech_token_expires(struct relay_store *st, int64_t id,
				   int64_t expires_at)
{
	if (id <= 0 || expires_at <= 0)
		return TETHER_ERR_INVALID;
	return st->ops->tech_token_expires(st, id, expires_at);
}

int relay_store_changed_elsewhere(struct relay_store *st, bool *changed)
{
	if (changed == NULL)
		return TETHER_ERR_INVALID;
	*changed = false;
	return st->ops->changed_elsewhere(st, changed);
}

int relay_store_tech_get(struct relay_store *st, int64_t id,
			 struct relay_store_tech *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	r = st->ops->tech_get(st, id, out);
	if (r != 0)
		tether_wipe(out, sizeof(*out));
	return r;
}

int relay_store_tech_list(struct relay_store *st, struct relay_store_tech **out,
			  size_t *n)
{
	LIST_CALL(relay_store_techs_free, st->ops->tech_list(st, out, n));
}

/* ---- Tickets ---- */

int relay_store_ticket_new(struct relay_store *st, const char *title,
			   const char *customer,
			   enum tether_ticket_source source, int64_t created_by,
			   int64_t *id)
{
	if (id != NULL)
		*id = 0;
	if (title == NULL || (unsigned)source >= RELAY_STORE_SOURCES)
		return TETHER_ERR_INVALID;
	return st->ops->ticket_new(st, title, customer, source, created_by, id);
}

int relay_store_ticket_get(struct relay_store *st, int64_t id,
			   struct relay_store_ticket *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	r = st->ops->ticket_get(st, id, out);
	if (r != 0)
		relay_store_ticket_clear(out);
	return r;
}

int relay_store_ticket_list(struct relay_store *st,
			    const struct relay_store_ticket_filter *f,
			    struct relay_store_ticket **out, size_t *n,
			    int64_t *more)
{
	static const struct relay_store_ticket_filter all = {0};
	int64_t ignored;

	*out = NULL;
	*n = 0;
	if (more == NULL)
		more = &ignored;
	*more = 0;
	if (f == NULL)
		f = &all;
	if ((f->has_status && (unsigned)f->status >= RELAY_STORE_STATUSES) ||
	    (f->has_source && (unsigned)f->source >= RELAY_STORE_SOURCES) ||
	    f->before < 0 || f->assignee_id < 0 || f->visible_to < 0)
		return TETHER_ERR_INVALID;
	LIST_CALL(relay_store_tickets_free,
		  st->ops->ticket_list(st, f, out, n, more));
}

int relay_store_ticket_reopen(struct relay_store *st, int64_t id)
{
	return st->ops->ticket_reopen(st, id);
}

/* ---- Comments ---- */

int relay_store_comment_add(struct relay_store *st, int64_t ticket_id,
			    const char *author, const char *text, int64_t *id)
{
	int64_t ignored;

	if (id == NULL)
		id = &ignored;
	*id = 0;
	if (author == NULL || author[0] == '\0' || text == NULL ||
	    text[0] == '\0')
		return TETHER_ERR_INVALID;
	return st->ops->comment_add(st, ticket_id, author, text, id);
}

int relay_store_ticket_comments(struct relay_store *st, int64_t ticket_id,
				size_t limit, struct relay_store_comment **out,
				size_t *n, int64_t *more)
{
	int64_t ignored;

	if (more == NULL)
		more = &ignored;
	*more = 0;
	LIST_CALL(relay_store_comments_free,
		  st->ops->ticket_comments(st, ticket_id, limit, out, n, more));
}

void relay_store_comments_free(struct relay_store_comment *v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++) {
		tether_free(v[i].author);
		tether_free(v[i].text);
	}
	tether_free(v);
}

int relay_store_ticket_assign(struct relay_store *st, int64_t id,
			      int64_t tech_id)
{
	if (id <= 0 || tech_id < 0)
		return TETHER_ERR_INVALID;
	return st->ops->ticket_assign(st, id, tech_id);
}

int relay_store_ticket_close(struct relay_store *st, int64_t id,
			     const char *resolution)
{
	return st->ops->ticket_close(st, id, resolution);
}

/* ---- Sessions ---- */

int relay_store_session_new(struct relay_store *st, int64_t ticket_id,
			    int64_t technician_id, const char *nameplate,
			    int64_t expires_at, const char *info,
			    const uint8_t *pake_a, int64_t *id)
{
	if (id != NULL)
		*id = 0;
	if (!tether_code_nameplate_valid(nameplate))
		return TETHER_ERR_INVALID;
	return st->ops->session_new(st, ticket_id, technician_id, nameplate,
				    expires_at, info, pake_a, id);
}

/* The end of every session getter: nothing half-filled survives. */
static int session_done(struct relay_store_session *out, int r)
{
	if (r != 0)
		relay_store_session_clear(out);
	return r;
}

int relay_store_session_get(struct relay_store *st, int64_t id,
			    struct relay_store_session *out)
{
	memset(out, 0, sizeof(*out));
	return session_done(out, st->ops->session_get(st, id, out));
}

int relay_store_session_by_nameplate(struct relay_store *st,
				     const char *nameplate,
				     struct relay_store_session *out)
{
	memset(out, 0, sizeof(*out));
	if (nameplate == NULL)
		return TETHER_ERR_INVALID;
	return session_done(out,
			    st->ops->session_by_nameplate(st, nameplate, out));
}

int relay_store_session_live_for_ticket(struct relay_store *st,
					int64_t ticket_id,
					struct relay_store_session *out)
{
	memset(out, 0, sizeof(*out));
	return session_done(
	    out, st->ops->session_for_ticket(st, ticket_id, true, out));
}

int relay_store_session_latest_for_ticket(struct relay_store *st,
					  int64_t ticket_id,
					  struct relay_store_session *out)
{
	memset(out, 0, sizeof(*out));
	return session_done(
	    out, st->ops->session_for_ticket(st, ticket_id, false, out));
}

int relay_store_ticket_sessions(struct relay_store *st, int64_t ticket_id,
				struct relay_store_session **out, size_t *n)
{
	LIST_CALL(relay_store_sessions_free,
		  st->ops->ticket_sessions(st, ticket_id, out, n));
}

bool relay_store_nameplate_in_use(struct relay_store *st, const char *nameplate)
{
	return nameplate == NULL || st->ops->nameplate_in_use(st, nameplate);
}

int relay_store_nameplates_held(struct relay_store *st, int64_t burned_since,
				int64_t *n)
{
	if (n == NULL)
		return TETHER_ERR_INVALID;
	*n = 0;
	return st->ops->nameplates_held(st, burned_since, n);
}

int relay_store_session_join(struct relay_store *st, int64_t id,
			     const char *agent_facts,
			     const uint8_t pake_b[TETHER_SPAKE2_ELEM_LEN],
			     const uint8_t conf_b[TETHER_SPAKE2_CONF_LEN],
			     const uint8_t *resume_hash)
{
	if (pake_b == NULL || conf_b == NULL)
		return TETHER_ERR_INVALID;
	return st->ops->session_join(st, id, agent_facts, pake_b, conf_b,
				     resume_hash);
}

int relay_store_session_set_state(struct relay_store *st, int64_t id,
				  enum tether_session_state state)
{
	if ((unsigned)state >= RELAY_STORE_SESSION_STATES)
		return TETHER_ERR_INVALID;
	return st->ops->session_set_state(st, id, state);
}

int relay_store_session_expire(struct relay_store *st, int64_t now,
			       struct relay_store_session **out, size_t *n)
{
	if (out == NULL || n == NULL)
		return TETHER_ERR_INVALID;
	LIST_CALL(relay_store_sessions_free,
		  st->ops->session_expire(st, now, out, n));
}

/* ---- Audit ---- */

int relay_store_audit(struct relay_store *st, const char *actor,
		      int64_t ticket_id, int64_t session_id, const char *event,
		      const char *detail)
{
	if (actor == NULL || event == NULL)
		return TETHER_ERR_INVALID;
	return st->ops->audit(st, actor, ticket_id, session_id, event, detail);
}

int relay_store_audit_verify(struct relay_store *st)
{
	return st->ops->audit_verify(st);
}

int relay_store_ticket_audit(struct relay_store *st, int64_t ticket_id,
			     struct relay_store_audit **out, size_t *n)
{
	LIST_CALL(relay_store_audits_free,
		  st->ops->ticket_audit(st, ticket_id, out, n));
}

int relay_store_ticket_audit_page(struct relay_store *st, int64_t ticket_id,
				  const struct relay_store_audit_page *pg,
				  struct relay_store_audit **out, size_t *n,
				  int64_t *more)
{
	int64_t ignored;

	*out = NULL;
	*n = 0;
	if (more == NULL)
		more = &ignored;
	*more = 0;
	if (pg == NULL || pg->limit == 0 || pg->before < 0 || pg->after < 0 ||
	    (pg->before != 0 && pg->after != 0))
		return TETHER_ERR_INVALID;
	LIST_CALL(relay_store_audits_free,
		  st->ops->ticket_audit_page(st, ticket_id, pg, out, n, more));
}

int relay_store_counts(struct relay_store *st, struct relay_store_counts *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	r = st->ops->counts(st, out);
	if (r != 0)
		memset(out, 0, sizeof(*out));
	return r;
}

/* ---- Enrolled agents ---- */

int relay_store_enroll_token_new(struct relay_store *st,
				 const uint8_t token_hash[RELAY_STORE_HASH_LEN],
				 int64_t expires_at)
{
	if (token_hash == NULL)
		return TETHER_ERR_INVALID;
	return st->ops->enroll_token_new(st, token_hash, expires_at);
}

int relay_store_agent_enroll(struct relay_store *st,
			     const uint8_t token_hash[RELAY_STORE_HASH_LEN],
			     const char *name,
			     const uint8_t pubkey[TETHER_SIGN_PUB_LEN],
			     const char *labels, const char *facts, int64_t *id,
			     bool *replaced)
{
	int64_t agent_id = 0;
	bool rep = false;
	int r;

	if (id != NULL)
		*id = 0;
	if (replaced != NULL)
		*replaced = false;
	if (token_hash == NULL || !tether_id_name_valid(name) || pubkey == NULL)
		return TETHER_ERR_INVALID;
	r = st->ops->agent_enroll(st, token_hash, name, pubkey, labels, facts,
				  &agent_id, &rep);
	if (r == 0 && id != NULL)
		*id = agent_id;
	if (r == 0 && replaced != NULL)
		*replaced = rep;
	return r;
}

int relay_store_agent_get(struct relay_store *st, const char *name,
			  struct relay_store_agent *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	if (name == NULL)
		return TETHER_ERR_INVALID;
	r = st->ops->agent_get(st, name, out);
	if (r != 0)
		memset(out, 0, sizeof(*out));
	return r;
}

int relay_store_agent_seen(struct relay_store *st, int64_t id)
{
	return st->ops->agent_seen(st, id);
}

int relay_store_agent_set_seq(struct relay_store *st, int64_t id, int64_t seq)
{
	return st->ops->agent_set_seq(st, id, seq);
}

int relay_store_agent_list(struct relay_store *st,
			   struct relay_store_agent_row **out, size_t *n)
{
	LIST_CALL(relay_store_agent_rows_free, st->ops->agent_list(st, out, n));
}

/* ---- Checks ---- */

int relay_store_health_get(struct relay_store *st, int64_t agent_id,
			   const char *check, int64_t since,
			   struct relay_store_check_prev *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	if (check == NULL)
		return TETHER_ERR_INVALID;
	r = st->ops->health_get(st, agent_id, check, since, out);
	if (r != 0)
		relay_store_check_prev_clear(out);
	return r;
}

int relay_store_health_record(struct relay_store *st, int64_t agent_id,
			      const struct relay_store_result *res)
{
	if (res == NULL || res->check == NULL ||
	    (unsigned)res->state >= RELAY_STORE_CHECK_STATES ||
	    (unsigned)res->hard_state >= RELAY_STORE_CHECK_STATES ||
	    (unsigned)res->type > TETHER_CHECK_HARD)
		return TETHER_ERR_INVALID;
	return st->ops->health_record(st, agent_id, res);
}

int relay_store_health_set_ticket(struct relay_store *st, int64_t agent_id,
				  const char *check, int64_t ticket_id)
{
	if (check == NULL)
		return TETHER_ERR_INVALID;
	return st->ops->health_set_ticket(st, agent_id, check, ticket_id);
}

int relay_store_health_holds_ticket(struct relay_store *st, int64_t agent_id,
				    int64_t ticket_id, bool *holds)
{
	*holds = false;
	return st->ops->health_holds_ticket(st, agent_id, ticket_id, holds);
}

int relay_store_health_list(struct relay_store *st, const char *agent,
			    struct relay_store_check **out, size_t *n)
{
	LIST_CALL(relay_store_checks_free,
		  st->ops->health_list(st, agent, out, n));
}

/* ---- Attachments ---- */

int relay_store_attach(struct relay_store *st, int64_t ticket_id,
		       const char *kind, const char *source, const char *data,
		       int64_t *id)
{
	if (id != NULL)
		*id = 0;
	if (kind == NULL || source == NULL || data == NULL)
		return TETHER_ERR_INVALID;
	return st->ops->attach(st, ticket_id, kind, source, data, id);
}

int relay_store_attachment_latest(struct relay_store *st, int64_t ticket_id,
				  const char *kind,
				  struct relay_store_attachment *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	if (kind == NULL)
		return TETHER_ERR_INVALID;
	r = st->ops->attachment_latest(st, ticket_id, kind, out);
	if (r != 0)
		relay_store_attachment_clear(out);
	return r;
}

int relay_store_ticket_attachments(struct relay_store *st, int64_t ticket_id,
				   struct relay_store_attachment **out,
				   size_t *n)
{
	LIST_CALL(relay_store_attachments_free,
		  st->ops->ticket_attachments(st, ticket_id, out, n));
}
