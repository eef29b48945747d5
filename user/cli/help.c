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

#define EVENTS_ROTATION_OPTIONS                                                                    \
	"  --events-max-size BYTES\n"                                                              \
	"                          when the next event would take FILE past BYTES (at least\n"    \
	"                          4096; for .gz, uncompressed bytes), FILE is finished and\n"    \
	"                          renamed FILE.1 (FILE.1 to FILE.2, and so on) and a new FILE\n" \
	"                          begun. Default: no limit\n"                                    \
	"  --events-max-files N    how many renamed files to keep (0..1000, default 5); the\n"    \
	"                          oldest beyond N is deleted\n"

#define DNS_OPTIONS                                                                                \
	"  --dns-upstream ADDR[:PORT]\n"                                                           \
	"                          with name rules in network.allow (docs/policy.md), the\n"      \
	"                          build's DNS goes through the agent, which asks this server\n" \
	"                          (default: the first nameserver of /etc/resolv.conf; PORT 53;\n" \
	"                          an IPv6 address with a port in brackets: [::1]:53)\n"

#define EXIT_STATUS_RUN                                                                            \
	"exit status:\n"                                                                           \
	"  0..255  run: the build's own status when nothing was violated or lost\n"                \
	"  64      bad flags or arguments, an unknown --user or group\n"                          \
	"  71      the sensor cannot start (not root, no BTF, load refused)\n"                     \
	"  73      the events file cannot be created, or is not one the agent trusts\n"          \
	"  77      a violation, or events were lost: the summary on stderr says which\n"           \
	"  78      the policy does not load (each error with its line and column)\n"

static const char run_text[] =
	"usage: buildwarden run [--policy FILE] [--events FILE [--events-max-size BYTES]\n"
	"           [--events-max-files N]] [--mode audit|enforce] [--dns-upstream ADDR[:PORT]]\n"
	"           [--user USER[:GROUP]] [--quiet]\n"
	"           [TRANSPORT] -- CMD [ARGS...]\n"
	"\n"
	"Runs CMD as the build: CMD and everything it starts are recorded (execs, changes to\n"
	"the protected trees, connects) and checked against the policy. The run fails (77)\n"
	"when the policy was violated or anything was lost, even if CMD succeeded. Needs root;\n"
	"the build itself should not have it: see --user.\n"
	"\n"
	"options:\n"
	"  --policy FILE           the policy (YAML, docs/policy.md); none: record only\n"
	"  --events FILE           append the events to FILE (gzip if it ends in .gz); read it\n"
	"                          with buildwarden decode. Not - (stdout): the build shares\n"
	"                          it and could print frames of its own\n"
	EVENTS_ROTATION_OPTIONS
	"  --mode audit|enforce    overrides the policy's mode\n"
	DNS_OPTIONS
	"  --user USER[:GROUP]     run CMD as USER (a name or a number; GROUP: default the\n"
	"                          user's primary group), with the user's supplementary groups,\n"
	"                          no_new_privs, and HOME, USER and LOGNAME set. Under sudo the\n"
	"                          default is the user who called sudo; a build that would run\n"
	"                          as root runs with a warning. The workspace must be writable\n"
	"                          by USER\n"
	"  --quiet                 no summary on stderr unless something is wrong\n"
	"  --help                  this text\n"
	"\n" TRANSPORT_OPTIONS "\n" EXIT_STATUS_RUN;

static const char agent_text[] =
	"usage: buildwarden agent --policy FILE [--events FILE [--events-max-size BYTES]\n"
	"           [--events-max-files N]] [--mode audit|enforce] [--dns-upstream ADDR[:PORT]]\n"
	"           [--enroll-socket PATH] [--quiet] [TRANSPORT]\n"
	"\n"
	"The host-wide sensor of a CI runner (the buildwarden-agent service): the build is\n"
	"every descendant of a process that exec'd an executable of the policy's build_roots\n"
	"inside that entry's cgroup (the runner's service), and of the processes enrolled\n"
	"through --enroll-socket (docs/runners.md).\n"
	"Runs until SIGTERM or SIGINT. SIGHUP reads the policy again (a policy with an error\n"
	"is refused and the old one stays) and reopens the events file, so it may be moved\n"
	"away by logrotate. Needs root.\n"
	"\n"
	"options:\n"
	"  --policy FILE           the policy (YAML, docs/policy.md)\n"
	"  --events FILE           append the events to FILE (gzip if it ends in .gz, - for\n"
	"                          stdout)\n"
	EVENTS_ROTATION_OPTIONS
	"  --mode audit|enforce    overrides the policy's mode\n"
	DNS_OPTIONS
	"  --enroll-socket PATH    serve buildwarden enroll on this socket (0600; its\n"
	"                          directory must be root's with mode 0700)\n"
	"  --quiet                 no summary on stderr unless something is wrong\n"
	"  --help                  this text\n"
	"\n" TRANSPORT_OPTIONS "\n"
	"exit status:\n"
	"  0       stopped, nothing violated or lost\n"
	"  64      bad flags or arguments\n"
	"  71      the sensor cannot start (not root, no BTF, load refused), or the enroll\n"
	"          socket's directory is not root's with mode 0700\n"
	"  73      the events file cannot be created\n"
	"  77      stopped after a violation or a loss: the summary on stderr says which\n"
	"  78      the policy does not load (each error with its line and column)\n"
	"\n"
	"files:\n"
	"  /etc/buildwarden/policy.yaml       the service's policy\n"
	"  /var/lib/buildwarden/events.pb.gz  the service's events file\n";

static const char collector_text[] =
	"usage: buildwarden collector --listen ADDR:PORT --db FILE|postgresql://...\n"
	"           (--tls-cert FILE --tls-key FILE --tls-client-ca FILE | --insecure)\n"
	"           [--max-frame BYTES] [--agent-keys DIR [--require-keys]]\n"
	"           [--handshake-timeout SECONDS] [--idle-timeout SECONDS] [--max-conns N]\n"
	"           [--max-handshakes N] [--max-per-addr N] [--max-agent-conns N]\n"
	"           [--max-agent-bytes BYTES] [--max-agent-runs N]\n"
	"           [--batch N] [--commit-ms MS] [--sync full|normal]\n"
	"           [--retention DURATION] [--redact REGEX]... [--no-default-redact]\n"
	"           [--export jsonl:DIR | syslog:tcp://HOST:PORT | syslog:tls://HOST:PORT]...\n"
	"           [--export-rotate BYTES] [--export-settle SECONDS]\n"
	"           [--export-tls-ca FILE] [--export-tls-cert FILE --export-tls-key FILE]\n"
	"\n"
	"Receives the events of every runner's agent, binds the host each reports to its\n"
	"certificate, checks each run's sequence and hash chain, redacts secrets in argv, and\n"
	"stores them in one SQLite file (mode 0600) or in PostgreSQL, which any number of\n"
	"collectors can share; buildwarden query reads either. Needs no privilege. Runs\n"
	"until SIGTERM or SIGINT. Details: docs/collector.md.\n"
	"\n"
	"options:\n"
	"  --listen ADDR:PORT      an IPv4 or bracketed IPv6 literal: 127.0.0.1:7400,\n"
	"                          [::1]:7400, 0.0.0.0:7400 (port 0: any free port)\n"
	"  --db FILE               the SQLite database, created if missing; one collector\n"
	"                          per file\n"
	"  --db postgresql://USER@HOST/DB, --db 'host=H dbname=DB ...'\n"
	"                          PostgreSQL (a URI or a libpq conninfo string): any number\n"
	"                          of collectors on one database; the schema is created or\n"
	"                          migrated at start-up, a newer one is refused\n"
	"  --tls-cert FILE         the server's certificate chain (PEM)\n"
	"  --tls-key FILE          its key\n"
	"  --tls-client-ca FILE    the CA that signs agent certificates; each agent must\n"
	"                          present one, its subject CN is the agent's name\n"
	"  --insecure              plain TCP, the agents name themselves\n"
	"  --max-frame BYTES       largest frame (1024..67108864, default 1 MiB)\n"
	"  --agent-keys DIR        DIR/AGENT.key: the key of that agent's keyed chain\n"
	"  --require-keys          with --agent-keys: an agent with no key file is refused\n"
	"                          (removing the file revokes the agent); without it, frames\n"
	"                          of such an agent are stored unverified\n"
	"  --handshake-timeout SECONDS\n"
	"                          TLS handshake and hello within (0.1..3600, default 10)\n"
	"  --idle-timeout SECONDS  a connection past its hello silent this long is closed\n"
	"                          (0.1..86400, default 600)\n"
	"  --max-conns N           connections beyond N are closed at once (default 1024)\n"
	"  --max-handshakes N      connections without a valid hello yet, at most N; a new\n"
	"                          one over it closes the oldest (1..1000000, default 64)\n"
	"  --max-per-addr N        of those, at most N from one source address (1..1000000,\n"
	"                          default 8)\n"
	"  --max-agent-conns N     connections (runs at once) of one agent, at most N; a\n"
	"                          hello over it is refused (1..1000000, default 64)\n"
	"  --max-agent-bytes BYTES memory the collector holds for one agent (its read\n"
	"                          buffers, its frames not yet committed); over it that\n"
	"                          agent is not read until a commit frees some, or refused\n"
	"                          when nothing would (at least 2 x --max-frame; default\n"
	"                          the larger of 16 MiB and 4 x --max-frame)\n"
	"  --max-agent-runs N      new runs (run ids the database does not hold) one agent\n"
	"                          may start a minute; a hello over it is refused\n"
	"                          (1..1000000, default 600)\n"
	"  --batch N               frames per commit at most (default 16384)\n"
	"  --commit-ms MS          the longest a frame waits for its commit (1..10000,\n"
	"                          default 50)\n"
	"  --sync full|normal      how a commit is made durable before its ack (default full)\n"
	"  --retention DURATION    delete what is older (at least 1h: 30d, 36h). SQLite: runs\n"
	"                          last active before it, in small steps; PostgreSQL: the day\n"
	"                          partitions of runs that started before it\n"
	"  --redact REGEX          repeatable (at most 32): matches in argv (POSIX ERE; with a\n"
	"                          group, what the first group matched) are stored as\n"
	"                          [REDACTED], on top of the built-in rules (tokens, NAME=secret,\n"
	"                          Authorization, URL passwords; docs/collector.md)\n"
	"  --no-default-redact     the built-in redaction rules off\n"
	"  --export jsonl:DIR      repeatable (at most 8): every committed event, also as a\n"
	"                          JSON line in DIR/events-N.jsonl (for Filebeat, Vector,\n"
	"                          Fluent Bit); DIR owned by us and writable by us alone\n"
	"  --export syslog:tcp://HOST:PORT, syslog:tls://HOST:PORT\n"
	"                          every committed event as an RFC 5424 message (octet-\n"
	"                          counted, RFC 6587). At least once: a cursor beside the\n"
	"                          database (DB.export-*.cursor) says what was delivered;\n"
	"                          PostgreSQL: a row of the database, shared by the\n"
	"                          collectors exporting to DEST, one of them at a time\n"
	"  --export-rotate BYTES   jsonl: a new file past this size (default 64 MiB)\n"
	"  --export-settle SECONDS syslog: how long the connection must stay up after the\n"
	"                          receiver's TCP acknowledged a batch before it counts as\n"
	"                          delivered (0..600, default 1)\n"
	"  --export-tls-ca FILE    syslog:tls: the CA of the receiver (default: the system's)\n"
	"  --export-tls-cert FILE, --export-tls-key FILE\n"
	"                          syslog:tls: a client certificate, if the receiver asks\n"
	"  --help                  this text\n"
	"\n"
	"exit status:\n"
	"  0       stopped by a signal\n"
	"  64      bad flags, a bad --redact pattern\n"
	"  66      a TLS file cannot be read\n"
	"  69      cannot listen\n"
	"  73      the database cannot be opened or is locked by another collector, a\n"
	"          PostgreSQL server cannot be reached or its schema is newer than this\n"
	"          build, or an export directory or cursor cannot be used\n";

static const char query_text[] =
	"usage: buildwarden query --db FILE [--violations] [--findings] [--runs] [--run RUN_ID]\n"
	"           [--agent AGENT] [--host HOST] [--rule RULE] [--since DURATION] [--limit N]\n"
	"           [--kind KIND] [--exe PATH] [--path PREFIX] [--outside-writes]\n"
	"           [--repo REPO] [--commit SHA] [--job JOB] [--format json|text]\n"
	"\n"
	"Prints what a collector stored, as JSON lines (or one readable line each with\n"
	"--format text). Say what to list: --violations, --findings, --runs, --run RUN_ID,\n"
	"or the events that pass --kind, --exe, --path or --outside-writes.\n"
	"Which runs produced an artifact written by a process outside the build?\n"
	"  buildwarden query --db FILE --runs --outside-writes [--path OUTPUT_DIR]\n"
	"\n"
	"options:\n"
	"  --db FILE               the collector's database: a SQLite file, or PostgreSQL as\n"
	"                          a postgresql:// URI or a libpq conninfo string\n"
	"  --violations            violation events (the most recent N with --limit)\n"
	"  --findings              integrity findings and runs that are not complete\n"
	"  --runs                  runs: agent, host, runStart (argv, policy, mode), whether\n"
	"                          complete, violations, findings (the most recently active N)\n"
	"  --run RUN_ID            alone: the run's full history in seq order; else a filter\n"
	"  --kind KIND             only events of this kind: exec, file, connect, run_start,\n"
	"                          run_end, stats, process_access, none\n"
	"  --exe PATH              only events whose process's executable is PATH\n"
	"  --path PREFIX           only file events on PREFIX or below it (path, new or old\n"
	"                          path) and execs of a file there\n"
	"  --outside-writes        only changes to protected files by a process outside the\n"
	"                          build (or one the sensor could not attribute); with --runs,\n"
	"                          only the runs that have one, with how many and by whom\n"
	"  --format json|text      JSON lines (default) or one readable line per row\n"
	"  --agent AGENT           only events of this agent (its certificate CN); needed\n"
	"                          with --run alone when more than one agent sent that run id\n"
	"  --host HOST             only events from this host\n"
	"  --rule RULE             only violations of rules whose name: or text starts with\n"
	"                          RULE (gh, network.deny, protect[1]; with --violations)\n"
	"  --repo REPO             only runs (and their events) whose runStart CI context\n"
	"                          names this repository (GITHUB_REPOSITORY,\n"
	"                          CI_PROJECT_PATH); not with --findings\n"
	"  --commit SHA            ... this commit (GITHUB_SHA, CI_COMMIT_SHA)\n"
	"  --job JOB               ... this job (GITHUB_JOB, CI_JOB_NAME)\n"
	"  --since DURATION        only the last 30s, 15m, 1h, 2d, by when the collector\n"
	"                          received the event\n"
	"  --limit N               at most N rows (the most recently received)\n"
	"  --help                  this text\n"
	"\n"
	"exit status:\n"
	"  0       listed\n"
	"  64      bad flags, or --run alone of a run id two agents used, without --agent\n"
	"  66      no database\n";

static const char policy_text[] =
	"usage: buildwarden policy check [--offline] [--strict] [--set VAR=VALUE]... FILE\n"
	"       buildwarden policy learn EVENTS...\n"
	"       buildwarden policy test --policy FILE EVENTS...\n"
	"\n"
	"check loads FILE as the agent would and says what it holds, or lists every problem\n"
	"as FILE:LINE:COL: error: ... or FILE:LINE:COL: warning: ... A warning is a rule that\n"
	"loads but is dangerous or dead (IPv6 left open by a deny of 0.0.0.0/0, a shell as a\n"
	"writer, the same destination allowed and denied, duplicates, nested trees). The\n"
	"format is in docs/policy.md.\n"
	"\n"
	"learn reads the events files of one or more audit runs and prints a proposed policy:\n"
	"the destinations the build connected to (by name and port when it looked the name up\n"
	"through the agent, else by address), the protected trees it wrote and the writers\n"
	"outside it, the trees it executed from; each line with its evidence (runs, counts,\n"
	"an example process). Progress on a terminal only.\n"
	"\n"
	"test replays the events files against the draft policy FILE with the decisions the\n"
	"sensor would make (connects by the kernel's own match code, names by the name each\n"
	"connect recorded) and prints what would change: newly flagged, no longer flagged.\n"
	"\n"
	"options:\n"
	"  --offline               check: no file-system lookups: syntax, types and semantics\n"
	"                          only (paths need not exist; a variable that is not set\n"
	"                          stands for itself), so a policy can be checked in a pull\n"
	"                          request\n"
	"  --strict                check: warnings are errors (exit 78)\n"
	"  --set VAR=VALUE         check: the value of ${VAR} (and $VAR; HOME for ~) in the\n"
	"                          policy's paths, before the environment; may be repeated\n"
	"  --policy FILE           test: the draft policy\n"
	"  --help                  this text\n"
	"\n"
	"exit status:\n"
	"  0       check: the policy loads; learn: proposed; test: nothing would be flagged\n"
	"  64      bad arguments\n"
	"  65      an events file is damaged\n"
	"  66      an events file cannot be opened\n"
	"  74      a read or write failed\n"
	"  77      test: the draft would flag an event\n"
	"  78      the policy does not load (or has warnings, with check --strict)\n";

static const char decode_text[] =
	"usage: buildwarden decode [--emit-defaults] [--format json|text] [FILE|-]\n"
	"\n"
	"Prints an events file (plain or gzip, however it is named; - or nothing: standard\n"
	"input) as JSON lines, one event per line, each starting with \"kind\" (exec, file,\n"
	"connect, run_start, run_end, stats, process_access, enroll) for filters such as\n"
	"jq 'select(.kind == \"connect\")'. A damaged file: every good event before the\n"
	"damage is printed, then where the damage is.\n"
	"\n"
	"options:\n"
	"  --emit-defaults         print fields that hold their default value too (proto3\n"
	"                          JSON leaves them out), so .verdict.violation == false and\n"
	"                          .runEnd.drops == 0 can be tested\n"
	"  --format json|text      json (default), or one readable line per event: time,\n"
	"                          run, what, who, and the verdict with its rule\n"
	"  --help                  this text\n"
	"\n"
	"exit status:\n"
	"  0       the whole file decoded\n"
	"  64      bad arguments\n"
	"  65      the file is damaged\n"
	"  66      it cannot be opened\n"
	"  74      a read failed\n";

static const char report_text[] =
	"usage: buildwarden report [--format html|markdown|sarif] [-o FILE]\n"
	"           [--fail-on violations|incomplete|never] [--source-root DIR] EVENTS\n"
	"\n"
	"A report people read of an events file (plain or gzip; - : standard input): the\n"
	"process tree, outputs and their renames, connects, violations with the processes\n"
	"that led to them, and whether the run is complete.\n"
	"\n"
	"options:\n"
	"  --format html|markdown|sarif\n"
	"                          html (default): one self-contained page; markdown: a CI job\n"
	"                          summary; sarif: SARIF 2.1.0 for code scanning\n"
	"  -o, --output FILE       write to FILE (whole, then renamed into place; mode 0640,\n"
	"                          as argv may hold secrets) instead of standard output\n"
	"  --fail-on violations|incomplete|never\n"
	"                          exit 77 after writing the report: violations, when it shows\n"
	"                          a violation or an incomplete run; incomplete, only for an\n"
	"                          incomplete run (a loss, no run end); default never\n"
	"  --source-root DIR       absolute; paths under DIR are given relative to it (SARIF)\n"
	"  --help                  this text\n"
	"\n"
	"exit status:\n"
	"  0       written\n"
	"  64      bad flags or arguments\n"
	"  65      the file is damaged (the report of the good events is written, and says so)\n"
	"  66      it cannot be opened\n"
	"  73      FILE cannot be created\n"
	"  74      a read or write failed\n"
	"  77      --fail-on says so\n";

static const char enroll_text[] =
	"usage: buildwarden enroll --pid PID [--socket PATH]\n"
	"\n"
	"Asks the running agent (started with --enroll-socket) to make PID a build root: it\n"
	"and its future descendants are the build; what it already forked is not. For a\n"
	"runner's job-started hook (docs/runners.md). Needs root: the agent checks the\n"
	"caller's uid, and receives a pidfd, so the process cannot be swapped for another.\n"
	"\n"
	"options:\n"
	"  --pid PID               the process to enroll\n"
	"  --socket PATH           the agent's socket (default /run/buildwarden/enroll.sock)\n"
	"  --help                  this text\n"
	"\n"
	"exit status:\n"
	"  0       enrolled\n"
	"  64      bad flags or arguments\n"
	"  69      no agent listens on the socket\n"
	"  76      refused: not root, or no such process\n";

static const char version_text[] =
	"usage: buildwarden version\n"
	"\n"
	"Prints the version.\n";

/* the top level: every subcommand on one screen */
const char usage_text[] =
	"usage: buildwarden run [--policy FILE] [--events FILE [--events-max-size BYTES] [--events-max-files N]]\n"
	"                       [--mode audit|enforce] [--user USER[:GROUP]] [TRANSPORT] -- CMD [ARGS...]\n"
	"       buildwarden agent --policy FILE [--events FILE [--events-max-size BYTES] [--events-max-files N]]\n"
	"                         [--mode audit|enforce] [--enroll-socket PATH] [TRANSPORT]\n"
	"       buildwarden enroll --pid PID [--socket PATH]\n"
	"       buildwarden collector --listen ADDR:PORT --db FILE (--tls-cert F --tls-key F --tls-client-ca F | --insecure)\n"
	"       buildwarden query --db FILE [--violations | --findings | --run ID] [--agent A] [--since 1h]\n"
	"       buildwarden policy check FILE\n"
	"       buildwarden policy learn EVENTS...\n"
	"       buildwarden policy test --policy FILE EVENTS...\n"
	"       buildwarden decode [FILE|-]\n"
	"       buildwarden report [--format html|markdown|sarif] [-o FILE]\n"
	"                          [--fail-on violations|incomplete|never] [--source-root DIR] EVENTS\n"
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
	{ "policy", "check, learn and test a policy", policy_text },
	{ "decode", "print an events file as JSON lines", decode_text },
	{ "report", "an HTML, markdown or SARIF report of an events file", report_text },
	{ "enroll", "make a running process a build root of the agent", enroll_text },
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
