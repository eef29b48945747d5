/* run and agent in the CLI: their flags, and the exit code of an agent result. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/resolver.h"
#include "base/log.h"
#include "cli/agent_cli.h"
#include "cli/commands.h"
#include "cli/exitcodes.h"
#include "cli/help.h"
#include "cli/usage.h"
#include "transport/sink_file.h"

int agent_cli__parse_flags(int argc, char **argv, struct agent_opts *o, struct run_flags *rf)
{
	static const struct option longopts[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "events", required_argument, NULL, 'e' },
		{ "mode", required_argument, NULL, 'm' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "collector", required_argument, NULL, 'C' },
		{ "spool", required_argument, NULL, 'S' },
		{ "tls-cert", required_argument, NULL, 'c' },
		{ "tls-key", required_argument, NULL, 'k' },
		{ "tls-ca", required_argument, NULL, 'a' },
		{ "insecure", no_argument, NULL, 'I' },
		{ "spool-max", required_argument, NULL, 'M' },
		{ "chain-key", required_argument, NULL, 'K' },
		{ "agent-id", required_argument, NULL, 'A' },
		{ "drain-timeout", required_argument, NULL, 'D' },
		{ "enroll-socket", required_argument, NULL, 'E' },
		{ "events-max-size", required_argument, NULL, 'Z' },
		{ "events-max-files", required_argument, NULL, 'N' },
		{ "user", required_argument, NULL, 'u' },
		{ "dns-upstream", required_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	if (rf)
		memset(rf, 0, sizeof(*rf));
	o->drain_timeout_ms = 10000;
	o->events_max_files = 5;
	optind = 1;
	opterr = 0;
	/* '+': stop at the first operand, so the build command's own flags are left alone */
	while ((c = getopt_long(argc, argv, "+p:e:m:qhC:S:c:k:a:IM:K:A:D:E:Z:N:u:U:", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			o->policy_path = optarg;
			break;
		case 'e':
			o->events_path = optarg;
			break;
		case 'm':
			if (strcmp(optarg, "audit") == 0)
				o->mode = BW_MODE_AUDIT;
			else if (strcmp(optarg, "enforce") == 0)
				o->mode = BW_MODE_ENFORCE;
			else
				return usage__error("buildwarden", usage_text, "--mode must be audit or enforce, not '%s'", optarg);
			o->mode_given = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'C':
			o->collector = optarg;
			break;
		case 'S':
			o->spool_dir = optarg;
			break;
		case 'c':
			o->tls_cert = optarg;
			break;
		case 'k':
			o->tls_key = optarg;
			break;
		case 'a':
			o->tls_ca = optarg;
			break;
		case 'I':
			o->insecure = true;
			break;
		case 'K':
			o->chain_key = optarg;
			break;
		case 'A':
			o->agent_id = optarg;
			break;
		case 'E':
			o->enroll_socket = optarg;
			break;
		case 'Z':
		case 'N': {
			char *end;
			unsigned long long v;

			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (c == 'Z' && (errno || end == optarg || *end || optarg[0] == '-' || v < SINK_FILE_MIN_ROTATE))
				return usage__error("buildwarden", usage_text, "--events-max-size needs a number of bytes (at least %u), not '%s'",
						    SINK_FILE_MIN_ROTATE, optarg);
			if (c == 'N' && (errno || end == optarg || *end || optarg[0] == '-' || v > SINK_FILE_MAX_FILES))
				return usage__error("buildwarden", usage_text, "--events-max-files needs a count (0..%u), not '%s'",
						    SINK_FILE_MAX_FILES, optarg);
			if (c == 'Z')
				o->events_max_size = v;
			else
				o->events_max_files = (unsigned)v;
			break;
		}
		case 'M':
		case 'D': {
			char *end;
			unsigned long long v;

			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-' ||
			    (c == 'D' && v > 3600))
				return usage__error("buildwarden", usage_text, c == 'M' ? "--spool-max needs a number of bytes, not '%s'"
							    : "--drain-timeout needs seconds (0..3600), not '%s'",
						   optarg);
			if (c == 'M')
				o->spool_max = v;
			else
				o->drain_timeout_ms = (unsigned)v * 1000;
			break;
		}
		case 'U': {
			char err[200];

			if (resolver__parse_upstream(optarg, NULL, err, sizeof(err)))
				return usage__error("buildwarden", usage_text, "--dns-upstream: %s", err);
			o->dns_upstream = optarg;
			break;
		}
		case 'u':
			if (!rf)
				return usage__error("buildwarden", usage_text, "--user is a flag of run: the agent does not start the build");
			rf->user = optarg;
			break;
		case 'h':
			fputs(help__text(argv[0]), stdout); /* "run" or "agent" */
			exit(0);
		default:
			return usage__error("buildwarden", usage_text, "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (o->events_max_size && (!o->events_path || strcmp(o->events_path, "-") == 0))
		return usage__error("buildwarden", usage_text, "--events-max-size needs --events FILE (not '-')");
	if (o->collector && !o->insecure && !(o->tls_cert && o->tls_key && o->tls_ca))
		return usage__error("buildwarden", usage_text, "--collector needs --tls-cert, --tls-key and --tls-ca, or --insecure");
	if (!o->collector && (o->spool_dir || o->tls_cert || o->tls_key || o->tls_ca || o->insecure))
		return usage__error("buildwarden", usage_text, "transport flags need --collector HOST:PORT");
	/* a person waits on the final upload only at a terminal; logs stay free of \r */
	o->progress = !o->quiet && isatty(STDERR_FILENO);
	return 0;
}

int agent_cli__exit_code(const struct agent_opts *o, int err, const struct agent_result *r)
{
	int status;

	switch (r->failure) {
	case AGENT_OK:
		break;
	case AGENT_FAIL_POLICY:
		return EXIT_POLICY;
	case AGENT_FAIL_SENSOR:
		return EXIT_SENSOR;
	case AGENT_FAIL_EVENTS_FILE:
		return EXIT_CANTCREAT;
	case AGENT_FAIL_TRANSPORT:
		/* what the collector flags name cannot be used: a certificate, the spool */
		return EXIT_USAGE;
	case AGENT_FAIL_INTERNAL:
		return EXIT_SOFTWARE;
	}
	if (err)
		return EXIT_SOFTWARE;
	status = r->status;
	if (r->violations) {
		status = EXIT_VIOLATION;
		log__line(stderr, "buildwarden: ", "%llu policy violation(s): exit %d",
			  (unsigned long long)r->violations, status);
	}
	/* A loss may have hidden a violation: the run cannot vouch for the build, in
	 * audit mode as in enforce. The summary's "run incomplete" line names the causes. */
	if (r->incomplete) {
		status = EXIT_VIOLATION;
		log__line(stderr, "buildwarden: ", "run incomplete: exit %d", status);
	}
	if (r->events_incomplete) {
		log__line(stderr, "buildwarden: ", "events file '%s' is incomplete: %llu events not written",
			  o->events_path, (unsigned long long)r->not_written);
		if (status == 0)
			status = EXIT_CANTCREAT;
	}
	return status;
}
