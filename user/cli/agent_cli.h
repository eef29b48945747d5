/* What `run` and `agent` share in the CLI: their flags, and the exit code an agent's
 * result maps to. */
#ifndef BUILDWARDEN_CLI_AGENT_CLI_H
#define BUILDWARDEN_CLI_AGENT_CLI_H

#include "agent/agent.h"

/* Flags only `run` has. */
struct run_flags {
	const char *user; /* --user USER[:GROUP]: whom the build runs as */
};

/* Parses the flags run and agent share, and run's own into rf (NULL: agent, which
 * refuses them); returns 0 or EXIT_USAGE, leaving optind at the first operand. */
int agent_cli__parse_flags(int argc, char **argv, struct agent_opts *o, struct run_flags *rf);

/* agent__run's return and result -> the exit code, saying on stderr why it is not
 * the build's own (violations, an incomplete events file). */
int agent_cli__exit_code(const struct agent_opts *o, int err, const struct agent_result *r);

#endif /* BUILDWARDEN_CLI_AGENT_CLI_H */
