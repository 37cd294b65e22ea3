/*
 * tether-agent run (service.c): the enrolled agent as a long-running
 * service, connected to its relay for good.
 */
#ifndef TETHER_AGENT_SERVICE_SERVICE_H
#define TETHER_AGENT_SERVICE_SERVICE_H

/* tether-agent run [--config FILE] [-v] (argv[1] "run"): the status. */
int agent_run_main(int argc, char **argv);

#endif /* TETHER_AGENT_SERVICE_SERVICE_H */
