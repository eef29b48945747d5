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
#include "cli/help.h"
#include "cli/usage.h"
#include "collector/query.h"
#include "collector/store.h"

#define query_usage help__text("query")

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
		{ "runs", no_argument, NULL, 'u' },
		{ "kind", required_argument, NULL, 'k' },
		{ "exe", required_argument, NULL, 'e' },
		{ "path", required_argument, NULL, 'p' },
		{ "outside-writes", no_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'F' },
		{ "repo", required_argument, NULL, 'P' },
		{ "commit", required_argument, NULL, 'C' },
		{ "job", required_argument, NULL, 'J' },
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
		case 'P':
			o.repo = optarg;
			break;
		case 'C':
			o.commit = optarg;
			break;
		case 'J':
			o.job = optarg;
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
		case 'u':
			o.runs = true;
			break;
		case 'k': {
			bool ok = false;

			for (const char *const *k = query_kinds; *k && !ok; k++)
				ok = !strcmp(*k, optarg);
			if (!ok)
				return usage__error("buildwarden query", query_usage, "--kind must be exec, file, connect, run_start, run_end, stats, process_access or none, not '%s'", optarg);
			o.kind = optarg;
			break;
		}
		case 'e':
			o.exe = optarg;
			break;
		case 'p':
			if (!*optarg)
				return usage__error("buildwarden query", query_usage, "--path takes a path prefix");
			o.path = optarg;
			break;
		case 'o':
			o.outside_writes = true;
			break;
		case 'F':
			if (!strcmp(optarg, "text"))
				o.format = QUERY_TEXT;
			else if (strcmp(optarg, "json"))
				return usage__error("buildwarden query", query_usage, "--format must be json or text, not '%s'", optarg);
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
	if (!o.violations && !o.findings && !o.run && !o.runs && !o.kind && !o.exe && !o.path &&
	    !o.outside_writes)
		return usage__error("buildwarden query", query_usage, "say what to list: --violations, --findings, --runs, --run RUN_ID, or events by --kind, --exe, --path or --outside-writes");
	if (o.runs && (o.violations || o.findings))
		return usage__error("buildwarden query", query_usage, "--runs lists runs: not with --violations or --findings");
	if (o.runs && (o.kind || o.exe || o.path) && !o.outside_writes)
		return usage__error("buildwarden query", query_usage, "with --runs, --kind, --exe and --path only narrow --outside-writes");
	if (o.findings && !o.violations && (o.kind || o.exe || o.path || o.outside_writes))
		return usage__error("buildwarden query", query_usage, "--kind, --exe, --path and --outside-writes filter events, not --findings");
	if ((o.repo || o.commit || o.job) && o.findings)
		return usage__error("buildwarden query", query_usage, "--repo, --commit and --job filter runs and events, not --findings");
	if (o.rule && !o.violations)
		return usage__error("buildwarden query", query_usage, "--rule filters --violations");

	rc = store__open(db, STORE_READ, &st, err, sizeof(err));
	if (rc) {
		log__line(stderr, "buildwarden query: ", "%s", err);
		return rc == -EINVAL ? EXIT_DATAERR : EXIT_NOINPUT;
	}
	rc = query__run(st, &o, stdout, err, sizeof(err));
	store__close(st);
	if (rc) {
		log__line(stderr, "buildwarden query: ", "%s", err);
		return rc == -EEXIST ? EXIT_USAGE : EXIT_SOFTWARE;
	}
	if (fflush(stdout) != 0)
		return EXIT_SOFTWARE;
	return 0;
}
