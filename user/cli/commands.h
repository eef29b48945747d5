/* Subcommands implemented outside main.c: each takes the arguments after its name. */
#ifndef BUILDWARDEN_COMMANDS_H
#define BUILDWARDEN_COMMANDS_H

int cmd_collector(int argc, char **argv);
int cmd_query(int argc, char **argv);

#endif
