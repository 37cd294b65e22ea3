/*
 * Redaction of secrets in command lines and log lines before they leave
 * the machine in a diagnostics bundle (docs/diagnostics.md, "Redaction").
 */
#ifndef TETHER_AGENT_DIAG_REDACT_H
#define TETHER_AGENT_DIAG_REDACT_H

/*
 * A copy of text (NUL-terminated) with passwords, tokens, keys, private
 * key blocks, Authorization headers, credentials in URLs and the like
 * replaced by "[REDACTED]"; the caller frees it with tether_free().  NULL
 * only without memory.
 */
char *agent_redact(const char *text);

#endif /* TETHER_AGENT_DIAG_REDACT_H */
