/*
 * os-release(5) values: read for the facts an attended agent sends with
 * join and for the diagnostics bundle's os section.
 */
#ifndef TETHER_AGENT_DIAG_OS_RELEASE_H
#define TETHER_AGENT_DIAG_OS_RELEASE_H

/*
 * Unquotes an os-release value in place (shell-like: "..." with backslash
 * escapes, '...' literal, or bare).
 */
void agent_os_release_unquote(char *v);

#endif /* TETHER_AGENT_DIAG_OS_RELEASE_H */
