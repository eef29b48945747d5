/* The subcommands, one file each (cmd_<name>.c): each takes the arguments after its
 * name and returns the exit code (exitcodes.h). A new subcommand is a new file, a
 * line here and a line in main.c's table. */
#ifndef BUILDWARDEN_COMMANDS_H
#define BUILDWARDEN_COMMANDS_H

/* buildwarden's usage text, all subcommands (main.c) */
extern const char usage_text[];

int cmd_run(int argc, char **argv);
int cmd_agent(int argc, char **argv);
int cmd_policy(int argc, char **argv);
/* policy learn / policy test (cmd_policy_draft.c); -1 when argv[1] is neither */
int cmd_policy_draft(int argc, char **argv);
int cmd_decode(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_collector(int argc, char **argv);
int cmd_query(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_enroll(int argc, char **argv);

#endif
