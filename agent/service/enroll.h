/*
 * tether-agent enroll (enroll.c): a lasting identity for this machine on
 * a relay, and the config that holds it.
 */
#ifndef TETHER_AGENT_SERVICE_ENROLL_H
#define TETHER_AGENT_SERVICE_ENROLL_H

/*
 * tether-agent enroll --relay HOST:PORT --token TOKEN ... (argv[1]
 * "enroll"): the exit status.  Wipes TOKEN from argv.
 */
int agent_enroll_main(int argc, char **argv);

#endif /* TETHER_AGENT_SERVICE_ENROLL_H */
