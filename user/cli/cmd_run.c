/* buildwarden run [FLAGS] -- CMD [ARGS...]: the agent records while CMD runs. The CLI
 * forks and execs CMD; the agent follows it (agent/agent.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "cli/agent_cli.h"
#include "cli/commands.h"
#include "cli/exitcodes.h"
#include "cli/run_user.h"
#include "cli/usage.h"

extern char **environ;

struct held_build {
	char *const *argv;
	char **envp;           /* the build's environment */
	struct run_user user;  /* whom it runs as */
	int go_fd; /* writing one byte here lets the child exec */
};

/* The environment the build gets: ours, with HOME, USER and LOGNAME of the user it runs
 * as (as su sets them), so that it does not write to root's home. Built before the
 * fork: the child must not allocate. NULL on allocation failure. */
static char **cmd_run__build_env(const struct run_user *u)
{
	static char home[300], user[80], logname[80];
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	env = calloc(n + 4, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (u->drop && u->name[0] && (!strncmp(environ[i], "HOME=", 5) ||
					      !strncmp(environ[i], "USER=", 5) ||
					      !strncmp(environ[i], "LOGNAME=", 8)))
			continue;
		env[k++] = environ[i];
	}
	if (u->drop && u->name[0]) {
		snprintf(user, sizeof(user), "USER=%s", u->name);
		snprintf(logname, sizeof(logname), "LOGNAME=%s", u->name);
		env[k++] = user;
		env[k++] = logname;
		if (u->home[0]) {
			snprintf(home, sizeof(home), "HOME=%s", u->home);
			env[k++] = home;
		}
	}
	env[k] = NULL;
	return env;
}

/* In the forked child of a threaded process: another thread (the collector's sender)
 * may have held stderr's lock at fork time, so no stdio here, one write(2). */
static void __attribute__((noreturn)) cmd_run__exec_failed(const char *cmd, int err)
{
	const char *why = strerrordesc_np(err); /* a constant table: no locale, no lock */
	char msg[512];
	int n;

	n = snprintf(msg, sizeof(msg), "buildwarden: cannot run '%s': %s\n", cmd,
		     why ? why : "unknown error");
	if (n > (int)sizeof(msg) - 1)
		n = (int)sizeof(msg) - 1;
	/* nothing left to tell if stderr itself is gone */
	if (n > 0 && write(STDERR_FILENO, msg, (size_t)n) != n)
		_exit(126);
	_exit(err == ENOENT ? 127 : 126);
}

static pid_t cmd_run__spawn(void *ctx)
{
	struct held_build *b = ctx;
	int sync_pipe[2];
	sigset_t empty;
	pid_t child;
	char go;

	if (pipe2(sync_pipe, O_CLOEXEC)) {
		int err = -errno;

		log__line(stderr, "buildwarden: ", "pipe: %s", strerror(-err));
		return err;
	}
	child = fork();
	if (child < 0) {
		int err = -errno;

		log__line(stderr, "buildwarden: ", "fork: %s", strerror(-err));
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
		/* In the guard's cgroup and the process table already, as root: now the
		 * build's own identity, for good, before its first instruction. */
		if (run_user__enter(&b->user) < 0)
			cmd_run__exec_failed(b->argv[0], errno);
		execvpe(b->argv[0], b->argv, b->envp);
		cmd_run__exec_failed(b->argv[0], errno);
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
		log__line(stderr, "buildwarden: ", "start the build: %s", strerror(-err));
	}
	close(b->go_fd);
	b->go_fd = -1;
	return err;
}

int cmd_run(int argc, char **argv)
{
	struct agent_opts o;
	struct agent_result res;
	struct run_flags rf;
	struct held_build held = { .go_fd = -1 };
	char err[256];
	struct agent_build build = {
		.spawn = cmd_run__spawn,
		.release = cmd_run__release,
		.ctx = &held,
	};
	int rc;

	rc = agent_cli__parse_flags(argc, argv, &o, &rf);
	if (rc)
		return rc;
	if (o.enroll_socket)
		return usage__error("buildwarden", usage_text, "--enroll-socket is for agent: run's build root is its command");
	if (optind >= argc)
		return usage__error("buildwarden", usage_text, "run needs a command: buildwarden run [FLAGS] -- CMD [ARGS...]");
	/* The build inherits stdout: whatever it prints would land between the frames, and
	 * a build could write frames of its own (a fake runEnd) that decode takes as ours. */
	if (o.events_path && strcmp(o.events_path, "-") == 0)
		return usage__error("buildwarden", usage_text,
				    "run cannot write events to stdout ('--events -'): the build shares it; give a file");
	if (run_user__resolve(rf.user, &held.user, err, sizeof(err)))
		return usage__error("buildwarden", usage_text, "%s", err);
	if (run_user__is_root(&held.user))
		log__line(stderr, "buildwarden: ",
			  "WARNING: the build runs as root: it can kill the agent, change the sensor's maps, "
			  "read the chain key and rewrite the spool. Run it as a user: --user USER (under sudo, "
			  "the user who called sudo is the default)");
	else if (held.user.drop && !o.quiet)
		log__line(stderr, "buildwarden: ", "the build runs as uid %u gid %u%s%s (%s)",
			  (unsigned)held.user.uid, (unsigned)held.user.gid,
			  held.user.name[0] ? ", " : "", held.user.name, held.user.source);
	held.envp = cmd_run__build_env(&held.user);
	if (!held.envp) {
		log__line(stderr, "buildwarden: ", "out of memory");
		return EXIT_SOFTWARE;
	}
	held.argv = build.argv = argv + optind;
	o.detach_after_exit = true; /* this process exits after the run */
	rc = agent__run(&o, &build, &res);
	free(held.envp);
	return agent_cli__exit_code(&o, rc, &res);
}
