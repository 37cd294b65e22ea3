/*
 * Technicians and enrolment tokens: the one code path behind
 * `tether-relay technician ...` and `tether-relay enroll-token` on the
 * relay host and the console's `tether technician ...` and `tether
 * enroll-token` over the network.  Each writes the store and its audit
 * row, which says who did it (by) to whom: the trail must be able to tell
 * who was given or lost access.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <tether/crypto.h>
#include <tether/ctrl.h>
#include <tether/err.h>
#include <tether/proto.h>

#include "relay.h"

#define SECRET_LEN 32

/*
 * A login token's secret, as hex into hex, and its SHA-256, which is all
 * the store keeps.
 */
static int new_secret(char hex[2 * SECRET_LEN + 1],
		      uint8_t hash[TETHER_SHA256_LEN])
{
	uint8_t secret[SECRET_LEN];
	int rc;

	if ((rc = tether_random(secret, sizeof(secret))) == 0 &&
	    (rc = tether_hex_encode(secret, sizeof(secret), hex,
				    2 * SECRET_LEN + 1)) == 0)
		rc = tether_sha256(hex, strlen(hex), hash);
	tether_wipe(secret, sizeof(secret));
	return rc;
}

/*
 * The row is added with the hash first, so the id is known only
 * afterwards; the id is not secret.
 */
int relay_admin_tech_add(struct relay_store *st, const char *actor,
			 const char *by, const char *name,
			 enum tether_tech_role role, char *token, size_t toklen,
			 struct relay_store_tech *out)
{
	uint8_t hash[TETHER_SHA256_LEN];
	char hex[2 * SECRET_LEN + 1];
	int64_t id;
	int rc;

	memset(out, 0, sizeof(*out));
	token[0] = '\0';
	if ((rc = new_secret(hex, hash)) != 0 ||
	    (rc = relay_store_tech_add(st, name, role, hash, &id)) != 0 ||
	    (rc = relay_store_tech_token_expires(
		 st, id, (int64_t)time(NULL) + RELAY_LOGIN_TOKEN_TTL_S)) != 0)
		goto out;
	snprintf(token, toklen, "tt_%lld_%s", (long long)id, hex);
	rc = relay_store_tech_get(st, id, out);
	memset(out->token_hash, 0, sizeof(out->token_hash));
	relay_audit_to(st, actor, 0, 0, "technician_added",
		       json_pack("{s:s, s:s, s:I, s:s}", "technician", name,
				 "role", tether_ctrl_name_of(tech_role, role),
				 "id", (json_int_t)id, "by", by));
out:
	tether_wipe(hex, sizeof(hex));
	tether_wipe(hash, sizeof(hash));
	return rc;
}

int relay_admin_tech_token(struct relay_store *st, const char *actor,
			   const char *by, const char *name, char *token,
			   size_t toklen, int64_t *id)
{
	uint8_t hash[TETHER_SHA256_LEN];
	char hex[2 * SECRET_LEN + 1];
	int rc;

	token[0] = '\0';
	if ((rc = new_secret(hex, hash)) != 0 ||
	    (rc = relay_store_tech_set_token(st, name, hash, id)) != 0 ||
	    (rc = relay_store_tech_token_expires(
		 st, *id, (int64_t)time(NULL) + RELAY_LOGIN_TOKEN_TTL_S)) != 0)
		goto out;
	snprintf(token, toklen, "tt_%lld_%s", (long long)*id, hex);
	relay_audit_to(st, actor, 0, 0, "technician_token_issued",
		       json_pack("{s:s, s:I, s:s}", "technician", name, "id",
				 (json_int_t)*id, "by", by));
out:
	tether_wipe(hex, sizeof(hex));
	tether_wipe(hash, sizeof(hash));
	return rc;
}

/*
 * Whether t is the relay's only admin: removing or lowering them would
 * leave nobody to administer it over the network.
 */
static int last_admin(struct relay_store *st, const struct relay_store_tech *t)
{
	struct relay_store_tech *v = NULL;
	size_t n = 0, i, admins = 0;
	int rc;

	if (t->role != TETHER_TECH_ADMIN)
		return 0;
	rc = relay_store_tech_list(st, &v, &n);
	for (i = 0; rc == 0 && i < n; i++)
		admins += v[i].role == TETHER_TECH_ADMIN;
	relay_store_techs_free(v, n);
	if (rc != 0)
		return rc;
	return admins <= 1 ? TETHER_ERR_STATE : 0;
}

int relay_admin_tech_remove(struct relay_store *st, const char *actor,
			    const char *by, const char *name,
			    struct relay_store_tech *out)
{
	int rc;

	/* Names come back; ids never do, so the trail records the id. */
	rc = relay_store_tech_by_name(st, name, out);
	if (rc == 0)
		rc = last_admin(st, out);
	if (rc == 0)
		rc = relay_store_tech_remove(st, name);
	if (rc != 0)
		return rc;
	relay_audit_to(st, actor, 0, 0, "technician_removed",
		       json_pack("{s:s, s:I, s:s}", "technician", name, "id",
				 (json_int_t)out->id, "by", by));
	return 0;
}

int relay_admin_tech_role(struct relay_store *st, const char *actor,
			  const char *by, const char *name,
			  enum tether_tech_role role,
			  struct relay_store_tech *out,
			  enum tether_tech_role *from)
{
	int rc;

	rc = relay_store_tech_by_name(st, name, out);
	if (rc != 0)
		return rc;
	*from = out->role;
	if (out->role == role)
		return 0;
	rc = last_admin(st, out);
	if (rc == 0)
		rc = relay_store_tech_set_role(st, out->id, role);
	if (rc != 0)
		return rc;
	out->role = role;
	relay_audit_to(st, actor, 0, 0, "role_changed",
		       json_pack("{s:s, s:I, s:s, s:s, s:s}", "technician",
				 name, "id", (json_int_t)out->id, "from",
				 tether_ctrl_name_of(tech_role, *from), "to",
				 tether_ctrl_name_of(tech_role, role), "by",
				 by));
	return 0;
}

int relay_admin_enroll_token(struct relay_store *st, const char *actor,
			     const char *by, int64_t ttl_s, char *token,
			     size_t len, int64_t *expires_at)
{
	uint8_t secret[SECRET_LEN], hash[TETHER_SHA256_LEN];
	char b64[64];
	size_t i;
	int rc;

	token[0] = '\0';
	*expires_at = (int64_t)time(NULL) + ttl_s;
	if (len < RELAY_ADMIN_TOKEN_MAX || ttl_s <= 0)
		return TETHER_ERR_INVALID;
	if ((rc = tether_random(secret, sizeof(secret))) != 0 ||
	    (rc = tether_base64_encode(secret, sizeof(secret), b64,
				       sizeof(b64))) != 0)
		goto out;
	for (i = 0; b64[i] != '\0'; i++)
		b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
	snprintf(token, len, "tte_%s", b64);
	if ((rc = tether_sha256(token, strlen(token), hash)) != 0 ||
	    (rc = relay_store_enroll_token_new(st, hash, *expires_at)) != 0)
		goto out;
	relay_audit_to(
	    st, actor, 0, 0, "enroll_token_issued",
	    json_pack("{s:s, s:I}", "by", by, "ttl_s", (json_int_t)ttl_s));
out:
	if (rc != 0)
		tether_wipe(token, len);
	tether_wipe(secret, sizeof(secret));
	tether_wipe(b64, sizeof(b64));
	return rc;
}
