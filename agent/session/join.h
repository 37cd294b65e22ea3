/*
 * tether-agent join CODE --relay HOST:PORT ... (docs/cli.md): the command
 * a customer runs, and the program's usage and help, which are mostly
 * about it.
 */
#ifndef TETHER_AGENT_SESSION_JOIN_H
#define TETHER_AGENT_SESSION_JOIN_H

#include <stdio.h>

/*
 * tether-agent join ... (argv[1] "join"), or with argv[1] missing,
 * --help or anything unknown the usage or help: the exit status.  Wipes
 * CODE from argv.
 */
int agent_join_main(int argc, char **argv);

#endif /* TETHER_AGENT_SESSION_JOIN_H */
