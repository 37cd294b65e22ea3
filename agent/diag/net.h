/*
 * The network sections (net.c): network, routes, dns and listening; as
 * in sys.h, each a new reference, NULL only without memory.
 */
#ifndef TETHER_AGENT_DIAG_NET_H
#define TETHER_AGENT_DIAG_NET_H

#include <jansson.h>

json_t *agent_diag_network(void);
json_t *agent_diag_routes(void);
json_t *agent_diag_dns(void);
json_t *agent_diag_listening(void);

#endif /* TETHER_AGENT_DIAG_NET_H */
