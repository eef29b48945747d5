// SPDX-License-Identifier: GPL-2.0
/* `buildwarden query`: flags → query_opts over a read-only store. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "cli/commands.h"
#include "cli/exitcodes.h"
#include "cli/usage.h"
#include "collector/query.h"
#include "collector/store.h"

static const char query_usage[] =
	"usage: buildwarden query --db FILE [--violations] [--findings] [--run RUN_ID]\n"
	"           [--agent AGENT] [--host HOST] [--rule RULE] [--since DURATION] [--limit N]\n"
	"  --violations  violation events (the most recent N with --limit)\n"
	"  --findings    integrity findings and runs that are not complete\n"
	"  --run RUN_ID  alone: the run's full history in seq order; else a filter\n"
	"  --agent AGENT the agent identity (certificate CN); needed with --run alone when\n"
	"                more than one agent sent that run id\n"
	"  --since, --limit: by the time the collector received the event\n"
	"  DURATION      30s, 15m, 1h, 2d\n";

int cmd_query(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "violations", no_argument, NULL, 'v' },
		{ "findings", no_argument, NULL, 'f' },
		{ "run", required_argument, NULL, 'r' },
		{ "host", required_argument, NULL, 'H' },
		{ "agent", required_argument, NULL, 'a' },
		{ "rule", required_argument, NULL, 'R' },
		{ "since", required_argument, NULL, 's' },
		{ "limit", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct query_opts o = { 0 };
	const char *db = NULL;
	struct store *st;
	char err[512], *end;
	int64_t d;
	int c, rc;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			db = optarg;
			break;
		case 'v':
			o.violations = true;
			break;
		case 'f':
			o.findings = true;
			break;
		case 'r':
			o.run = optarg;
			break;
		case 'H':
			o.host = optarg;
			break;
		case 'a':
			o.agent = optarg;
			break;
		case 'R':
			o.rule = optarg;
			break;
		case 's':
			if (query__duration(optarg, &d))
				return usage__error("buildwarden query", query_usage, "--since takes a duration like 30s, 15m, 1h or 2d, not '%s'", optarg);
			o.since_ns = clock__real_ns() - d;
			break;
		case 'n':
			errno = 0;
			o.limit = strtoll(optarg, &end, 10);
			if (errno || end == optarg || *end || o.limit < 1)
				return usage__error("buildwarden query", query_usage, "--limit must be a positive number, not '%s'", optarg);
			break;
		case 'h':
			fputs(query_usage, stdout);
			return 0;
		default:
			return usage__error("buildwarden query", query_usage, "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage__error("buildwarden query", query_usage, "unexpected argument '%s'", argv[optind]);
	if (!db)
		return usage__error("buildwarden query", query_usage, "--db FILE is required");
	if (!o.violations && !o.findings && !o.run)
		return usage__error("buildwarden query", query_usage, "say what to list: --violations, --findings or --run RUN_ID");
	if (o.rule && !o.violations)
		return usage__error("buildwarden query", query_usage, "--rule filters --violations");

	rc = store__open(db, STORE_READ, &st, err, sizeof(err));
	if (rc) {
		log__line(stderr, "buildwarden query: ", "%s", err);
		return rc == -EINVAL ? EXIT_DATAERR : EXIT_NOINPUT;
	}
	rc = query__run(store__db(st), &o, stdout, err, sizeof(err));
	store__close(st);
	if (rc) {
		log__line(stderr, "buildwarden query: ", "%s", err);
		return rc == -EEXIST ? EXIT_USAGE : EXIT_SOFTWARE;
	}
	if (fflush(stdout) != 0)
		return EXIT_SOFTWARE;
	return 0;
}
