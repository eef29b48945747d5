/* buildwarden report [--format html|markdown|sarif] [-o FILE] [--fail-on WHAT]
 * [--source-root DIR] EVENTS: a report people read, from an events file. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "cli/commands.h"
#include "cli/decode_exit.h"
#include "cli/exitcodes.h"
#include "cli/help.h"
#include "cli/usage.h"
#include "report/report.h"
#include "transport/decode.h"

#define report_usage help__text("report")

/* Progress on a terminal only: a person waits on a large file; a CI log does not
 * want a line per update. */
struct report_progress {
	bool on;
	uint64_t total;   /* input size, 0 if unknown (stdin, a pipe) */
	int64_t last_ns;
};

static void report__show(void *ctx, uint64_t in_bytes)
{
	struct report_progress *p = ctx;
	int64_t now = clock__mono_ns();

	if (!p->on || now - p->last_ns < 200 * 1000 * 1000LL)
		return;
	p->last_ns = now;
	if (p->total)
		fprintf(stderr, "\rreport: reading %.1f of %.1f MiB (%u%%) ",
			(double)in_bytes / 1048576.0, (double)p->total / 1048576.0,
			(unsigned)(in_bytes * 100 / p->total));
	else
		fprintf(stderr, "\rreport: reading %.1f MiB ", (double)in_bytes / 1048576.0);
}

/* out to path through a temporary file renamed over it once complete: a failed
 * report leaves no half-written file. Mode 0640: argv in events may hold secrets. */
static FILE *report__create(const char *path, char *tmp, size_t len)
{
	int fd;
	FILE *f;

	if (snprintf(tmp, len, "%s.tmp.XXXXXX", path) >= (int)len) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fchmod(fd, 0640) != 0 || !(f = fdopen(fd, "w"))) {
		int e = errno;

		close(fd);
		unlink(tmp);
		errno = e;
		return NULL;
	}
	return f;
}

int cmd_report(int argc, char **argv)
{
	int (*emit)(FILE *, const struct rpt_model *, const struct report_opts *) = report__html;
	enum report_fail_on fail_on = REPORT_FAIL_NEVER;
	struct report_opts opts = { 0 };
	struct report_progress prog = { 0 };
	const char *events = NULL, *outpath = NULL;
	char tmp[PATH_MAX], *errbuf = NULL;
	size_t errlen = 0;
	struct rpt_model *m;
	FILE *out = stdout, *errs;
	struct stat st;
	int rc, ret;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--help") == 0) {
			fputs(report_usage, stdout);
			return 0;
		}
		if (strcmp(a, "--format") == 0 && v) {
			if (strcmp(v, "html") == 0)
				emit = report__html;
			else if (strcmp(v, "markdown") == 0 || strcmp(v, "md") == 0)
				emit = report__markdown;
			else if (strcmp(v, "sarif") == 0)
				emit = report__sarif;
			else
				return usage__error("buildwarden report", report_usage,
						    "--format: unknown format '%s' (html, markdown, sarif)", v);
			i++;
		} else if ((strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) && v) {
			outpath = v;
			i++;
		} else if (strcmp(a, "--fail-on") == 0 && v) {
			if (strcmp(v, "violations") == 0)
				fail_on = REPORT_FAIL_VIOLATIONS;
			else if (strcmp(v, "incomplete") == 0)
				fail_on = REPORT_FAIL_INCOMPLETE;
			else if (strcmp(v, "never") == 0)
				fail_on = REPORT_FAIL_NEVER;
			else
				return usage__error("buildwarden report", report_usage,
						    "--fail-on: '%s' is not violations, incomplete or never", v);
			i++;
		} else if (strcmp(a, "--source-root") == 0 && v) {
			if (v[0] != '/')
				return usage__error("buildwarden report", report_usage,
						    "--source-root: '%s' is not an absolute path", v);
			opts.source_root = v;
			i++;
		} else if (a[0] == '-' && a[1] != '\0') {
			return usage__error("buildwarden report", report_usage,
					    v || strncmp(a, "--", 2) != 0 ? "unknown flag '%s'" :
					    "flag '%s' needs a value", a);
		} else if (!events) {
			events = a;
		} else {
			return usage__error("buildwarden report", report_usage,
					    "one events file only ('%s' is extra)", a);
		}
	}
	if (!events)
		return usage__error("buildwarden report", report_usage, "missing EVENTS file");

	m = rpt_model__new();
	/* the reader's message goes to stderr and into the report */
	errs = open_memstream(&errbuf, &errlen);
	if (!m || !errs) {
		fprintf(stderr, "buildwarden report: out of memory\n");
		rpt_model__free(m);
		if (errs)
			fclose(errs);
		free(errbuf);
		return EXIT_SOFTWARE;
	}
	prog.on = isatty(STDERR_FILENO);
	if (strcmp(events, "-") != 0 && stat(events, &st) == 0 && S_ISREG(st.st_mode))
		prog.total = (uint64_t)st.st_size;
	rc = report__read(events, m, report__show, &prog, errs);
	if (prog.on && prog.last_ns)
		fputs("\r\033[K", stderr);
	fclose(errs);
	if (errbuf && *errbuf)
		fputs(errbuf, stderr);
	if (rc != DECODE_OK && rc != DECODE_BAD_DATA) {
		ret = decode_exit__code(rc);
		goto done;
	}
	if (rc == DECODE_BAD_DATA) {
		size_t n = strcspn(errbuf ? errbuf : "", "\n");

		snprintf(m->read_error, sizeof(m->read_error), "%.*s", (int)n, errbuf ? errbuf : "?");
	}
	rpt_model__finish(m);

	if (outpath) {
		out = report__create(outpath, tmp, sizeof(tmp));
		if (!out) {
			fprintf(stderr, "buildwarden report: cannot create '%s': %s\n", outpath,
				strerror(errno));
			ret = EXIT_CANTCREAT;
			goto done;
		}
	}
	if (prog.on)
		fprintf(stderr, "report: writing %zu processes, %" PRIu64 " events\r", m->nprocs,
			m->events);
	ret = emit(out, m, &opts);
	if (prog.on)
		fputs("\r\033[K", stderr);
	if (outpath) {
		if (fclose(out) != 0 && !ret)
			ret = -errno;
		if (!ret && rename(tmp, outpath) != 0)
			ret = -errno;
		if (ret)
			unlink(tmp);
	} else if (fflush(out) != 0 && !ret) {
		ret = -EIO;
	}
	if (ret) {
		fprintf(stderr, "buildwarden report: cannot write '%s': %s\n",
			outpath ? outpath : "<stdout>", strerror(-ret));
		ret = EXIT_IOERR;
		goto done;
	}
	/* the report is out; a corrupt file says so in it and in the exit status */
	ret = rc == DECODE_BAD_DATA ? EXIT_DATAERR :
	      report__fails(m, fail_on) ? EXIT_VIOLATION : 0;
done:
	rpt_model__free(m);
	free(errbuf);
	return ret;
}
