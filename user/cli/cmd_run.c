/* buildwarden run [FLAGS] -- CMD [ARGS...]: the agent records while CMD runs. The CLI
 * forks and execs CMD; the agent follows it (agent/agent.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/agent_cli.h"
#include "cli/commands.h"
#include "cli/usage.h"

struct held_build {
	char *const *argv;
	int go_fd; /* writing one byte here lets the child exec */
};

static pid_t cmd_run__spawn(void *ctx)
{
	struct held_build *b = ctx;
	int sync_pipe[2];
	sigset_t empty;
	pid_t child;
	char go;

	if (pipe2(sync_pipe, O_CLOEXEC)) {
		perror("buildwarden: pipe");
		return -errno;
	}
	child = fork();
	if (child < 0) {
		int err = -errno;

		perror("buildwarden: fork");
		close(sync_pipe[0]);
		close(sync_pipe[1]);
		return err;
	}
	if (child == 0) {
		/* the agent reads its signals from a signalfd: the build gets them back */
		sigemptyset(&empty);
		sigprocmask(SIG_SETMASK, &empty, NULL);
		close(sync_pipe[1]);
		/* Wait until the kernel knows this process is the build's root. */
		if (read(sync_pipe[0], &go, 1) != 1)
			_exit(127);
		execvp(b->argv[0], b->argv);
		fprintf(stderr, "buildwarden: cannot run '%s': %s\n", b->argv[0], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	close(sync_pipe[0]);
	b->go_fd = sync_pipe[1];
	return child;
}

static int cmd_run__release(void *ctx)
{
	struct held_build *b = ctx;
	char go = 1;
	int err = 0;

	if (write(b->go_fd, &go, 1) != 1) {
		err = errno ? -errno : -EIO;
		perror("buildwarden: start the build");
	}
	close(b->go_fd);
	b->go_fd = -1;
	return err;
}

int cmd_run(int argc, char **argv)
{
	struct agent_opts o;
	struct agent_result res;
	struct held_build held = { .go_fd = -1 };
	struct agent_build build = {
		.spawn = cmd_run__spawn,
		.release = cmd_run__release,
		.ctx = &held,
	};
	int rc;

	rc = agent_cli__parse_flags(argc, argv, &o);
	if (rc)
		return rc;
	if (optind >= argc)
		return usage__error("buildwarden", usage_text, "run needs a command: buildwarden run [FLAGS] -- CMD [ARGS...]");
	held.argv = build.argv = argv + optind;
	rc = agent__run(&o, &build, &res);
	return agent_cli__exit_code(&o, rc, &res);
}
