/* buildwarden: subcommand table and the flags of each subcommand. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/agent.h"
#include "cli/commands.h"
#include "cli/exitcodes.h"
#include "cli/usage.h"
#include "transport/decode.h"

static const char usage_text[] =
	"usage: buildwarden run [--policy FILE] [--events FILE] [--mode audit|enforce] [TRANSPORT] -- CMD [ARGS...]\n"
	"       buildwarden agent --policy FILE [--events FILE] [--mode audit|enforce] [TRANSPORT]\n"
	"       buildwarden collector --listen ADDR:PORT --db FILE (--tls-cert F --tls-key F --tls-client-ca F | --insecure)\n"
	"       buildwarden query --db FILE [--violations | --findings | --run ID] [--since 1h]\n"
	"       buildwarden policy check FILE\n"
	"       buildwarden decode [FILE|-]\n"
	"       buildwarden version\n"
	"TRANSPORT: --collector HOST:PORT [--spool DIR] (--tls-cert F --tls-key F --tls-ca F | --insecure)\n"
	"           [--spool-max BYTES] [--chain-key FILE] [--agent-id ID] [--drain-timeout SECONDS]\n";

/* Parses the flags run and agent share; returns 0 or EXIT_USAGE, leaving optind at the
 * first operand. */
static int parse_agent_flags(int argc, char **argv, struct agent_opts *o)
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
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->mode = -1;
	o->drain_timeout_ms = 10000;
	optind = 1;
	opterr = 0;
	/* '+': stop at the first operand, so the build command's own flags are left alone */
	while ((c = getopt_long(argc, argv, "+p:e:m:qhC:S:c:k:a:IM:K:A:D:", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			o->policy_path = optarg;
			break;
		case 'e':
			o->events_path = optarg;
			break;
		case 'm':
			if (strcmp(optarg, "audit") == 0)
				o->mode = 0;
			else if (strcmp(optarg, "enforce") == 0)
				o->mode = 1;
			else
				return usage__error("buildwarden", usage_text, "--mode must be audit or enforce, not '%s'", optarg);
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
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		default:
			return usage__error("buildwarden", usage_text, "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (o->collector && !o->insecure && !(o->tls_cert && o->tls_key && o->tls_ca))
		return usage__error("buildwarden", usage_text, "--collector needs --tls-cert, --tls-key and --tls-ca, or --insecure");
	if (!o->collector && (o->spool_dir || o->tls_cert || o->tls_key || o->tls_ca || o->insecure))
		return usage__error("buildwarden", usage_text, "transport flags need --collector HOST:PORT");
	return 0;
}

static int cmd_run(int argc, char **argv)
{
	struct agent_opts o;
	struct agent *a;
	int rc;

	rc = parse_agent_flags(argc, argv, &o);
	if (rc)
		return rc;
	if (optind >= argc)
		return usage__error("buildwarden", usage_text, "run needs a command: buildwarden run [FLAGS] -- CMD [ARGS...]");
	rc = agent__start(&o, &a);
	if (rc)
		return rc;
	rc = agent__run_command(a, argv + optind);
	agent__free(a);
	return rc;
}

static int cmd_agent(int argc, char **argv)
{
	struct agent_opts o;
	struct agent *a;
	int rc;

	rc = parse_agent_flags(argc, argv, &o);
	if (rc)
		return rc;
	if (!o.policy_path)
		return usage__error("buildwarden", usage_text, "agent needs --policy FILE");
	if (optind < argc)
		return usage__error("buildwarden", usage_text, "unexpected argument '%s'", argv[optind]);
	rc = agent__start(&o, &a);
	if (rc)
		return rc;
	rc = agent__serve(a);
	agent__free(a);
	return rc;
}

static int cmd_policy(int argc, char **argv)
{
	struct bw_policy *p = NULL;
	int rc;

	if (argc != 3 || strcmp(argv[1], "check") != 0)
		return usage__error("buildwarden", usage_text, "usage: buildwarden policy check FILE");
	rc = agent__load_policy(argv[2], &p);
	if (rc)
		return rc;
	printf("%s: ok (%zu protected trees, %zu exec deny trees, %zu allow and %zu deny "
	       "network rules, mode %s)\n",
	       argv[2], p->n_protect, p->n_exec_deny, p->n_net_allow, p->n_net_deny,
	       p->mode == BW_MODE_ENFORCE ? "enforce" : "audit");
	policy__free(p);
	return 0;
}

static int cmd_decode(int argc, char **argv)
{
	if (argc > 2)
		return usage__error("buildwarden", usage_text, "usage: buildwarden decode [FILE|-]");
	switch (decode__stream(argc == 2 ? argv[1] : "-", stdout, stderr)) {
	case DECODE_OK:
		return 0;
	case DECODE_BAD_DATA:
		return EXIT_DATAERR;
	case DECODE_NO_INPUT:
		return EXIT_NOINPUT;
	case DECODE_IO_ERROR:
		return EXIT_IOERR;
	default: /* DECODE_NO_MEMORY: out of memory is internal, as in the collector */
		return EXIT_SOFTWARE;
	}
}

static int cmd_version(int argc, char **argv)
{
	printf("buildwarden %s\n", BW_VERSION);
	return 0;
}

static const struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
} cmds[] = {
	{ "run", cmd_run },
	{ "agent", cmd_agent },
	{ "policy", cmd_policy },
	{ "decode", cmd_decode },
	{ "collector", cmd_collector },
	{ "query", cmd_query },
	{ "version", cmd_version },
};

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage__error("buildwarden", usage_text, "missing subcommand");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(argc - 1, argv + 1);
	return usage__error("buildwarden", usage_text, "unknown subcommand '%s'", argv[1]);
}
