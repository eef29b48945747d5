/* `buildwarden policy check`: apart from cmd_policy.c, which dispatches the policy
 * subcommands. */
#ifndef BUILDWARDEN_CLI_POLICY_CHECK_H
#define BUILDWARDEN_CLI_POLICY_CHECK_H

/* argv[0] is "check". Returns the exit code. */
int policy_check__main(int argc, char **argv);

#endif
