/*
 * The enrolled agent's config file (docs/agent-config.md): the identity
 * enroll writes at the top, [check NAME] sections after it.  Sections are
 * only split into their lines here; check.c gives them meaning, so that
 * enroll can rewrite the identity and keep checks it does not know.
 */
#ifndef TETHER_AGENT_SERVICE_CONFIG_H
#define TETHER_AGENT_SERVICE_CONFIG_H

#include <stddef.h>

#include <tether/ctrl.h>

#include "session/cli.h"

/* One "key = value" line of a section, as written. */
struct agent_kv {
	char *key;
	char *value;
	int line;
};

/* A [check NAME] section: check.c interprets its keys. */
struct agent_check_conf {
	char *name;
	int line;
	struct agent_kv *kv;
	size_t n;
};

/* Labels (KEY=VALUE) in the order given; keys unique, strings owned. */
struct agent_labels {
	struct tether_ctrl_label *v;
	size_t n;
};

struct agent_config {
	char *path;	   /* the file read */
	char *relay;	   /* HOST:PORT */
	char *fingerprint; /* SHA256:..., NULL if unset */
	char *name;	   /* the agent's enrolled name */
	char *key; /* identity key file (default: agent.key beside path) */
	struct agent_labels labels;
	struct agent_check_conf *checks;
	size_t nchecks;
	struct agent_targets forward_targets; /* "allow_forward" lines */
};

/*
 * Where the config lives when --config is not given: /etc/tether/agent.conf
 * for root, else $XDG_CONFIG_HOME/tether/agent.conf (~/.config/...).
 */
void agent_config_default_path(char *out, size_t outlen);
/*
 * Reads and checks path into *c (zeroed first; free with
 * agent_config_free()).  On error returns TETHER_ERR_* with "FILE:LINE:
 * what" in err.
 */
int agent_config_load(const char *path, struct agent_config *c, char *err,
		      size_t errlen);
/*
 * Writes the identity part (relay, fingerprint, name, labels, key) of c
 * to c->path, mode 0600, keeping any [check] sections already in the file
 * (enroll run twice re-enrolls).  err as above.
 */
int agent_config_save_identity(const struct agent_config *c, char *err,
			       size_t errlen);
void agent_config_free(struct agent_config *c);

/* The value of label key, or NULL. */
const char *agent_labels_get(const struct agent_labels *l, const char *key);
/* Sets key to a copy of value (replacing it); 0 or TETHER_ERR_NOMEM. */
int agent_labels_set(struct agent_labels *l, const char *key,
		     const char *value);
/* Copies from into an empty to; 0 or TETHER_ERR_NOMEM (to empty). */
int agent_labels_copy(struct agent_labels *to, const struct agent_labels *from);
/* Frees the labels and empties them. */
void agent_labels_free(struct agent_labels *l);

#endif /* TETHER_AGENT_SERVICE_CONFIG_H */
