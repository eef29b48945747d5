/* The help texts: see help.h. Keep to the format help.h describes. */
#include <stddef.h>
#include <string.h>

#include "cli/help.h"

#define TRANSPORT_OPTIONS                                                                          \
	"TRANSPORT options (events to a collector as well):\n"                                    \
	"  --collector HOST:PORT   send every event to this collector (docs/collector.md)\n"       \
	"  --spool DIR             events wait here until acknowledged\n"                         \
	"                          (default /var/lib/buildwarden/spool)\n"                         \
	"  --tls-cert FILE         this agent's certificate (PEM)\n"                               \
	"  --tls-key FILE          its key\n"                                                      \
	"  --tls-ca FILE           the CA that signed the collector's certificate\n"               \
	"  --insecure              plain TCP instead of the three TLS files\n"                     \
	"  --spool-max BYTES       cap the spool (default 256 MiB); what does not fit is\n"        \
	"                          counted and reported as lost\n"                                 \
	"  --chain-key FILE        key the events' hash chain with HMAC-SHA256\n"                  \
	"  --agent-id ID           the name this agent gives the collector with --insecure\n"      \
	"  --drain-timeout SECONDS\n"                                                              \
	"                          how long to wait for the last acknowledgement at the end\n"    \
	"                          (0..3600, default 10)\n"

#define EXIT_STATUS_RUN                                                                            \
	"exit status:\n"                                                                           \
	"  0..255  run: the build's own status when nothing was violated or lost\n"                \
	"  64      bad flags or arguments\n"                                                       \
	"  71      the sensor cannot start (not root, no BTF, load refused)\n"                     \
	"  73      the events file cannot be created\n"                                            \
	"  77      a violation, or events were lost: the summary on stderr says which\n"           \
	"  78      the policy does not load (each error with its line and column)\n"

static const char run_text[] =
	"usage: buildwarden run [--policy FILE] [--events FILE] [--mode audit|enforce] [--quiet]\n"
	"           [TRANSPORT] -- CMD [ARGS...]\n"
	"\n"
	"Runs CMD as the build: CMD and everything it starts are recorded (execs, changes to\n"
	"the protected trees, connects) and checked against the policy. The run fails (77)\n"
	"when the policy was violated or anything was lost, even if CMD succeeded. Needs root.\n"
	"\n"
	"options:\n"
	"  --policy FILE           the policy (YAML, docs/policy.md); none: record only\n"
	"  --events FILE           append the events to FILE (gzip if it ends in .gz, - for\n"
	"                          stdout); read it with buildwarden decode\n"
	"  --mode audit|enforce    overrides the policy's mode\n"
	"  --quiet                 no summary on stderr unless something is wrong\n"
	"  --help                  this text\n"
	"\n" TRANSPORT_OPTIONS "\n" EXIT_STATUS_RUN;

static const char agent_text[] =
	"usage: buildwarden agent --policy FILE [--events FILE [--events-max-size BYTES]\n"
	"           [--events-max-files N]] [--mode audit|enforce] [--quiet] [TRANSPORT]\n"
	"\n"
	"The host-wide sensor of a CI runner (the buildwarden-agent service): the build is\n"
	"every descendant of a process whose executable matches the policy's build_roots.\n"
	"Runs until SIGTERM or SIGINT. SIGHUP reads the policy again (a policy with an error\n"
	"is refused and the old one stays) and reopens the events file, so it may be moved\n"
	"away by logrotate. Needs root.\n"
	"\n"
	"options:\n"
	"  --policy FILE           the policy (YAML, docs/policy.md)\n"
	"  --events FILE           append the events to FILE (gzip if it ends in .gz)\n"
	"  --events-max-size BYTES\n"
	"                          when the next event would take FILE past BYTES (at least\n"
	"                          4096; for .gz, uncompressed bytes), FILE is finished and\n"
	"                          renamed FILE.1 (FILE.1 to FILE.2, and so on) and a new FILE\n"
	"                          begun. Default: no limit\n"
	"  --events-max-files N    how many renamed files to keep (0..1000, default 5); the\n"
	"                          oldest beyond N is deleted\n"
	"  --mode audit|enforce    overrides the policy's mode\n"
	"  --quiet                 no summary on stderr unless something is wrong\n"
	"  --help                  this text\n"
	"\n" TRANSPORT_OPTIONS "\n"
	"exit status:\n"
	"  0       stopped, nothing violated or lost\n"
	"  64      bad flags or arguments\n"
	"  71      the sensor cannot start (not root, no BTF, load refused)\n"
	"  73      the events file cannot be created\n"
	"  77      stopped after a violation or a loss: the summary on stderr says which\n"
	"  78      the policy does not load (each error with its line and column)\n"
	"\n"
	"files:\n"
	"  /etc/buildwarden/policy.yaml       the service's policy\n"
	"  /var/lib/buildwarden/events.pb.gz  the service's events file\n";

static const char collector_text[] =
	"usage: buildwarden collector --listen ADDR:PORT --db FILE\n"
	"           (--tls-cert FILE --tls-key FILE --tls-client-ca FILE | --insecure)\n"
	"           [--max-frame BYTES] [--agent-keys DIR] [--handshake-timeout SECONDS]\n"
	"           [--max-conns N] [--batch N] [--commit-ms MS] [--sync full|normal]\n"
	"\n"
	"Receives the events of every runner's agent, checks each run's sequence and hash\n"
	"chain, and stores them in one SQLite file; buildwarden query reads it. Needs no\n"
	"privilege. Runs until SIGTERM or SIGINT. Details: docs/collector.md.\n"
	"\n"
	"options:\n"
	"  --listen ADDR:PORT      an IPv4 or bracketed IPv6 literal: 127.0.0.1:7400,\n"
	"                          [::1]:7400, 0.0.0.0:7400 (port 0: any free port)\n"
	"  --db FILE               the SQLite database, created if missing; one collector\n"
	"                          per file\n"
	"  --tls-cert FILE         the server's certificate chain (PEM)\n"
	"  --tls-key FILE          its key\n"
	"  --tls-client-ca FILE    the CA that signs agent certificates; each agent must\n"
	"                          present one, its subject CN is the agent's name\n"
	"  --insecure              plain TCP, the agents name themselves\n"
	"  --max-frame BYTES       largest frame (1024..67108864, default 1 MiB)\n"
	"  --agent-keys DIR        DIR/AGENT.key: the key of that agent's keyed chain\n"
	"  --handshake-timeout SECONDS\n"
	"                          TLS handshake and hello within (0.1..3600, default 10)\n"
	"  --max-conns N           connections beyond N are closed at once (default 1024)\n"
	"  --batch N               frames per commit at most (default 16384)\n"
	"  --commit-ms MS          the longest a frame waits for its commit (1..10000,\n"
	"                          default 50)\n"
	"  --sync full|normal      how a commit is made durable before its ack (default full)\n"
	"  --help                  this text\n"
	"\n"
	"exit status:\n"
	"  0       stopped by a signal\n"
	"  64      bad flags\n"
	"  66      a TLS file cannot be read\n"
	"  69      cannot listen\n"
	"  73      the database cannot be opened or is locked by another collector\n";

static const char query_text[] =
	"usage: buildwarden query --db FILE [--violations] [--findings] [--run RUN_ID]\n"
	"           [--host HOST] [--rule RULE] [--since DURATION] [--limit N]\n"
	"\n"
	"Prints what a collector stored, as JSON lines. Say what to list: --violations,\n"
	"--findings or --run RUN_ID.\n"
	"\n"
	"options:\n"
	"  --db FILE               the collector's database\n"
	"  --violations            violation events (the most recent N with --limit)\n"
	"  --findings              integrity findings and runs that are not complete\n"
	"  --run RUN_ID            alone: the run's full history in seq order; else a filter\n"
	"  --host HOST             only events from this host\n"
	"  --rule RULE             only violations of this rule (with --violations)\n"
	"  --since DURATION        only the last 30s, 15m, 1h, 2d\n"
	"  --limit N               at most N rows\n"
	"  --help                  this text\n";

static const char policy_text[] =
	"usage: buildwarden policy check FILE\n"
	"\n"
	"Loads FILE as the agent would and says what it holds, or lists every error with its\n"
	"line and column. The format is in docs/policy.md.\n"
	"\n"
	"exit status:\n"
	"  0       the policy loads\n"
	"  64      bad arguments\n"
	"  78      the policy does not load\n";

static const char decode_text[] =
	"usage: buildwarden decode [FILE|-]\n"
	"\n"
	"Prints an events file (plain or gzip, however it is named; - or nothing: standard\n"
	"input) as JSON lines, one event per line. A damaged file: every good event before\n"
	"the damage is printed, then where the damage is.\n"
	"\n"
	"exit status:\n"
	"  0       the whole file decoded\n"
	"  65      the file is damaged\n"
	"  66      it cannot be opened\n"
	"  74      a read failed\n";

static const char version_text[] =
	"usage: buildwarden version\n"
	"\n"
	"Prints the version.\n";

/* the top level: every subcommand on one screen */
const char usage_text[] =
	"usage: buildwarden run [--policy FILE] [--events FILE] [--mode audit|enforce] [TRANSPORT] -- CMD [ARGS...]\n"
	"       buildwarden agent --policy FILE [--events FILE [--events-max-size BYTES] [--events-max-files N]]\n"
	"                         [--mode audit|enforce] [TRANSPORT]\n"
	"       buildwarden collector --listen ADDR:PORT --db FILE (--tls-cert F --tls-key F --tls-client-ca F | --insecure)\n"
	"       buildwarden query --db FILE [--violations | --findings | --run ID] [--since 1h]\n"
	"       buildwarden policy check FILE\n"
	"       buildwarden decode [FILE|-]\n"
	"       buildwarden version\n"
	"TRANSPORT: --collector HOST:PORT [--spool DIR] (--tls-cert F --tls-key F --tls-ca F | --insecure)\n"
	"           [--spool-max BYTES] [--chain-key FILE] [--agent-id ID] [--drain-timeout SECONDS]\n"
	"\n"
	"buildwarden SUBCOMMAND --help says more about each.\n";

const struct help_page help_pages[] = {
	{ "", "guards build servers: exec, file and network events of a build, checked against a policy",
	  usage_text },
	{ "run", "run one build under the sensor", run_text },
	{ "agent", "the host-wide sensor of a CI runner", agent_text },
	{ "collector", "receive and store the fleet's events", collector_text },
	{ "query", "read what a collector stored", query_text },
	{ "policy", "check a policy file", policy_text },
	{ "decode", "print an events file as JSON lines", decode_text },
	{ "version", "print the version", version_text },
};
const unsigned help_n_pages = sizeof(help_pages) / sizeof(help_pages[0]);

const struct help_page *help__page(const char *name)
{
	for (unsigned i = 0; i < help_n_pages; i++)
		if (strcmp(help_pages[i].name, name) == 0)
			return &help_pages[i];
	return NULL;
}

const char *help__text(const char *name)
{
	const struct help_page *p = help__page(name);

	return p ? p->text : usage_text;
}
