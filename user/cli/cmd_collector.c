// SPDX-License-Identifier: GPL-2.0
/* `buildwarden collector`: flags → server_cfg, signals → server__stop. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "cli/commands.h"
#include "cli/exitcodes.h"
#include "cli/help.h"
#include "cli/usage.h"
#include "collector/export.h"
#include "collector/redact.h"
#include "collector/query.h"
#include "collector/server.h"
#include "collector/store.h"

#define collector_usage help__text("collector")

static struct server *collector_srv;

static void collector__on_signal(int sig)
{
	if (collector_srv)
		server__stop(collector_srv);
}

/* server__new's failures as exit codes (docs/collector.md lists them). */
static int collector__exit_code(int err)
{
	switch (err) {
	case SERVER_ERR_CONFIG:
		return EXIT_USAGE;
	case SERVER_ERR_TLS_FILE:
		return EXIT_NOINPUT;
	case SERVER_ERR_LISTEN:
		return EXIT_UNAVAILABLE;
	case SERVER_ERR_STORE:
		return EXIT_CANTCREAT;
	default:
		return EXIT_SOFTWARE;
	}
}

/* A decimal in [lo, hi]; false on anything else (trailing text, overflow). */
static bool collector__num(const char *s, unsigned long long lo, unsigned long long hi,
			   unsigned long long *out)
{
	char *end;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return !errno && !*end && *out >= lo && *out <= hi;
}

int cmd_collector(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "db", required_argument, NULL, 'd' },
		{ "tls-cert", required_argument, NULL, 'c' },
		{ "tls-key", required_argument, NULL, 'k' },
		{ "tls-client-ca", required_argument, NULL, 'a' },
		{ "insecure", no_argument, NULL, 'i' },
		{ "max-frame", required_argument, NULL, 'f' },
		{ "agent-keys", required_argument, NULL, 'K' },
		{ "require-keys", no_argument, NULL, 'Q' },
		{ "redact", required_argument, NULL, 'r' },
		{ "no-default-redact", no_argument, NULL, 'R' },
		{ "handshake-timeout", required_argument, NULL, 't' },
		{ "idle-timeout", required_argument, NULL, 'I' },
		{ "max-handshakes", required_argument, NULL, 'S' },
		{ "max-per-addr", required_argument, NULL, 'A' },
		{ "max-agent-conns", required_argument, NULL, 'G' },
		{ "max-agent-bytes", required_argument, NULL, 'M' },
		{ "max-agent-runs", required_argument, NULL, 'U' },
		{ "max-conns", required_argument, NULL, 'n' },
		{ "batch", required_argument, NULL, 'b' },
		{ "sync", required_argument, NULL, 's' },
		{ "commit-ms", required_argument, NULL, 'm' },
		{ "export", required_argument, NULL, 'x' },
		{ "retention", required_argument, NULL, 'D' },
		{ "export-rotate", required_argument, NULL, 'X' },
		{ "export-settle", required_argument, NULL, 'T' },
		{ "export-tls-ca", required_argument, NULL, 'C' },
		{ "export-tls-cert", required_argument, NULL, 'E' },
		{ "export-tls-key", required_argument, NULL, 'Y' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct server_cfg cfg = { .export_settle = -1 };
	static const char *exports[EXPORT_MAX];
	static const char *redact[REDACT_MAX_RULES];
	struct sigaction sa = { 0 };
	unsigned long long v;
	char err[512];
	struct stat st;
	char *end;
	int c, rc;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			cfg.listen = optarg;
			break;
		case 'd':
			cfg.db = optarg;
			break;
		case 'c':
			cfg.tls_cert = optarg;
			break;
		case 'k':
			cfg.tls_key = optarg;
			break;
		case 'a':
			cfg.tls_client_ca = optarg;
			break;
		case 'i':
			cfg.insecure = true;
			break;
		case 'f':
			/* below 1 KiB no real event fits; above 64 MiB one agent could pin
			 * that much memory per connection */
			if (!collector__num(optarg, 1024, 64ull << 20, &v))
				return usage__error("buildwarden collector", collector_usage, "--max-frame must be 1024..67108864 bytes, not '%s'", optarg);
			cfg.max_frame = (size_t)v;
			break;
		case 'K':
			cfg.agent_keys = optarg;
			break;
		case 't':
			errno = 0;
			cfg.handshake_timeout = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(cfg.handshake_timeout >= 0.1) ||
			    cfg.handshake_timeout > 3600)
				return usage__error("buildwarden collector", collector_usage, "--handshake-timeout must be 0.1..3600 seconds, not '%s'", optarg);
			break;
		case 'Q':
			cfg.require_keys = true;
			break;
		case 'r':
			if (cfg.n_redact >= REDACT_MAX_RULES)
				return usage__error("buildwarden collector", collector_usage, "at most %d --redact patterns", REDACT_MAX_RULES);
			redact[cfg.n_redact++] = optarg;
			cfg.redact = redact;
			break;
		case 'R':
			cfg.no_default_redact = true;
			break;
		case 'I':
			errno = 0;
			cfg.idle_timeout = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(cfg.idle_timeout >= 0.1) ||
			    cfg.idle_timeout > 86400)
				return usage__error("buildwarden collector", collector_usage, "--idle-timeout must be 0.1..86400 seconds, not '%s'", optarg);
			break;
		case 'S':
			if (!collector__num(optarg, 1, 1000000, &v))
				return usage__error("buildwarden collector", collector_usage, "--max-handshakes must be 1..1000000, not '%s'", optarg);
			cfg.max_handshakes = (unsigned)v;
			break;
		case 'A':
			if (!collector__num(optarg, 1, 1000000, &v))
				return usage__error("buildwarden collector", collector_usage, "--max-per-addr must be 1..1000000, not '%s'", optarg);
			cfg.max_per_addr = (unsigned)v;
			break;
		case 'G':
			if (!collector__num(optarg, 1, 1000000, &v))
				return usage__error("buildwarden collector", collector_usage, "--max-agent-conns must be 1..1000000, not '%s'", optarg);
			cfg.max_agent_conns = (unsigned)v;
			break;
		case 'M':
			/* at least twice --max-frame: checked when the server starts */
			if (!collector__num(optarg, 2048, 1ull << 40, &v))
				return usage__error("buildwarden collector", collector_usage, "--max-agent-bytes must be 2048..1099511627776 bytes, not '%s'", optarg);
			cfg.max_agent_bytes = (size_t)v;
			break;
		case 'U':
			if (!collector__num(optarg, 1, 1000000, &v))
				return usage__error("buildwarden collector", collector_usage, "--max-agent-runs must be 1..1000000 a minute, not '%s'", optarg);
			cfg.max_agent_runs = (unsigned)v;
			break;
		case 'n':
			if (!collector__num(optarg, 1, 1000000, &v))
				return usage__error("buildwarden collector", collector_usage, "--max-conns must be 1..1000000, not '%s'", optarg);
			cfg.max_conns = (unsigned)v;
			break;
		case 'b':
			if (!collector__num(optarg, 1, 1000000, &v))
				return usage__error("buildwarden collector", collector_usage, "--batch must be 1..1000000 frames, not '%s'", optarg);
			cfg.batch = (size_t)v;
			break;
		case 'm':
			/* the oldest frame of a batch waits this long at most: the floor of
			 * the kernel-to-row latency at low rates, against more, smaller
			 * commits (each rewrites a few 64 KiB pages and syncs) */
			if (!collector__num(optarg, 1, 10000, &v))
				return usage__error("buildwarden collector", collector_usage, "--commit-ms must be 1..10000, not '%s'", optarg);
			cfg.commit_ms = (unsigned)v;
			break;
		case 's':
			/* full: an Ack survives a power loss; normal: a collector crash only */
			if (!strcmp(optarg, "normal"))
				cfg.sync_normal = true;
			else if (strcmp(optarg, "full"))
				return usage__error("buildwarden collector", collector_usage, "--sync must be full or normal, not '%s'", optarg);
			break;
		case 'x':
			if (cfg.n_exports >= EXPORT_MAX)
				return usage__error("buildwarden collector", collector_usage, "at most %d --export", EXPORT_MAX);
			if (export__check_spec(optarg, err, sizeof(err)))
				return usage__error("buildwarden collector", collector_usage, "%s", err);
			for (size_t i = 0; i < cfg.n_exports; i++)
				if (!strcmp(exports[i], optarg))
					return usage__error("buildwarden collector", collector_usage, "--export '%s' given twice (one cursor per destination)", optarg);
			exports[cfg.n_exports++] = optarg;
			cfg.exports = exports;
			break;
		case 'X':
			/* a shipper's unit of work: small files cost inodes, large ones delay
			 * deleting what was shipped */
			if (!collector__num(optarg, 4096, 1ull << 40, &v))
				return usage__error("buildwarden collector", collector_usage, "--export-rotate must be 4096..1099511627776 bytes, not '%s'", optarg);
			cfg.export_rotate = v;
			break;
		case 'T':
			errno = 0;
			cfg.export_settle = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(cfg.export_settle >= 0) ||
			    cfg.export_settle > 600)
				return usage__error("buildwarden collector", collector_usage, "--export-settle must be 0..600 seconds, not '%s'", optarg);
			break;
		case 'D':
			if (query__duration(optarg, &cfg.retention_ns) || cfg.retention_ns < 3600LL * 1000000000)
				return usage__error("buildwarden collector", collector_usage, "--retention must be a duration of at least 1h (30d, 36h), not '%s'", optarg);
			break;
		case 'C':
			cfg.export_tls_ca = optarg;
			break;
		case 'E':
			cfg.export_tls_cert = optarg;
			break;
		case 'Y':
			cfg.export_tls_key = optarg;
			break;
		case 'h':
			fputs(collector_usage, stdout);
			return 0;
		default:
			return usage__error("buildwarden collector", collector_usage, "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage__error("buildwarden collector", collector_usage, "unexpected argument '%s'", argv[optind]);
	if (!cfg.listen)
		return usage__error("buildwarden collector", collector_usage, "--listen ADDR:PORT is required");
	if (!cfg.db)
		return usage__error("buildwarden collector", collector_usage, "--db FILE is required");
	if (cfg.insecure && (cfg.tls_cert || cfg.tls_key || cfg.tls_client_ca))
		return usage__error("buildwarden collector", collector_usage, "--insecure and --tls-* exclude each other");
	if (!cfg.insecure && (!cfg.tls_cert || !cfg.tls_key || !cfg.tls_client_ca))
		return usage__error("buildwarden collector", collector_usage, "%s", "refusing to start without TLS: give --tls-cert, --tls-key and "
					      "--tls-client-ca, or --insecure for plaintext testing");
	if (cfg.require_keys && !cfg.agent_keys)
		return usage__error("buildwarden collector", collector_usage, "--require-keys needs --agent-keys DIR");
	if (!cfg.export_tls_cert != !cfg.export_tls_key)
		return usage__error("buildwarden collector", collector_usage, "--export-tls-cert and --export-tls-key go together");
	{
		bool tls = false;

		for (size_t i = 0; i < cfg.n_exports; i++)
			tls |= !strncmp(exports[i], "syslog:tls://", 13);
		if ((cfg.export_tls_ca || cfg.export_tls_cert) && !tls)
			return usage__error("buildwarden collector", collector_usage, "--export-tls-* need a --export syslog:tls://HOST:PORT");
	}
	if (cfg.agent_keys && (stat(cfg.agent_keys, &st) < 0 || !S_ISDIR(st.st_mode))) {
		log__line(stderr, "buildwarden collector: ", "--agent-keys '%s' is not a directory",
			  cfg.agent_keys);
		return EXIT_NOINPUT;
	}

	rc = server__new(&cfg, &collector_srv, err, sizeof(err));
	if (rc) {
		log__line(stderr, "buildwarden collector: ", "%s", err);
		return collector__exit_code(rc);
	}
	sa.sa_handler = collector__on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	store__describe(cfg.db, err, sizeof(err));
	log__line(stderr, "collector: ", "listening on %s (port %d)%s, database %s", cfg.listen,
		  server__port(collector_srv), cfg.insecure ? ", INSECURE plaintext" : ", TLS", err);
	rc = server__run(collector_srv);
	server__free(collector_srv);
	collector_srv = NULL;
	return rc;
}
