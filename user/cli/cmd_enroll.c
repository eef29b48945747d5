/* buildwarden enroll --pid PID [--socket PATH]: asks the running agent to make PID a
 * build root (agent/enroll.h). For a runner's job-started hook, run as root. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "agent/enroll.h"
#include "base/log.h"
#include "cli/commands.h"
#include "cli/exitcodes.h"
#include "cli/help.h"
#include "cli/usage.h"

int cmd_enroll(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sock = ENROLL_DEFAULT_SOCKET;
	struct enroll_reply r;
	long pid = 0;
	char *end;
	int c, e;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "p:s:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			errno = 0;
			pid = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || pid <= 0 || pid > 0x3fffffff)
				return usage__error("buildwarden enroll", help__text("enroll"), "--pid needs a process id, not '%s'", optarg);
			break;
		case 's':
			sock = optarg;
			break;
		case 'h':
			fputs(help__text("enroll"), stdout);
			return 0;
		default:
			return usage__error("buildwarden enroll", help__text("enroll"), "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (!pid)
		return usage__error("buildwarden enroll", help__text("enroll"), "enroll needs --pid PID");
	if (optind < argc)
		return usage__error("buildwarden enroll", help__text("enroll"), "unexpected argument '%s'", argv[optind]);
	e = enroll__request(sock, (pid_t)pid, &r);
	if (e) {
		log__line(stderr, "buildwarden: ", "enroll: %s", r.msg);
		/* no such process, or not allowed near the socket: refused; no agent: unavailable */
		return e == -ESRCH || e == -EACCES || e == -EPERM ? EXIT_REFUSED : EXIT_UNAVAILABLE;
	}
	if (r.err) {
		log__line(stderr, "buildwarden: ", "enroll: %s", r.msg);
		return EXIT_REFUSED;
	}
	log__line(stdout, "", "%s", r.msg);
	return 0;
}
