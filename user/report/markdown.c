// SPDX-License-Identifier: GPL-2.0
/* The markdown report: what a CI job summary shows. Short by design (each table is
 * cut after a few rows, GitHub caps a step summary at 1 MiB): violations with the
 * actor's lineage, completeness, egress, execs from unusual places, and the changes
 * to the protected trees. Every string from the events goes through esc__md. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "report/escape.h"
#include "report/htab.h"
#include "report/report.h"

/* Writes malloc'd text s escaped, then frees it ("?" when it could not be made). */
static void md__text(FILE *out, char *s)
{
	esc__md(out, s ? s : "?");
	free(s);
}

static void md__more(FILE *out, size_t shown, size_t total)
{
	if (total > shown)
		fprintf(out, "\n_... and %zu more (the HTML report or `buildwarden decode` has all)_\n",
			total - shown);
}

static void md__runs(FILE *out, const struct rpt_model *m)
{
	fputs("### Completeness\n\n", out);
	if (m->read_error[0]) {
		fputs("- **the events file is corrupt**: ", out);
		esc__md(out, m->read_error);
		fputs("\n", out);
	}
	if (!m->nruns)
		fputs("- **no events**: the file holds no run, so nothing vouches for the build\n", out);
	for (size_t i = 0; i < m->nruns; i++) {
		const struct rpt_run *r = &m->runs[i];

		fputs("- run `", out);
		esc__md(out, r->run_id);
		fputs("` on ", out);
		esc__md(out, *r->host ? r->host : "?");
		if (r->has_start) {
			fputs(", mode ", out);
			esc__md(out, r->mode);
			if (*r->argv) {
				fputs(", command ", out);
				esc__md(out, r->argv);
			}
		}
		if (r->has_end)
			fprintf(out, ", exit status %d", r->exit_status);
		fprintf(out, ", %" PRIu64 " events: %s\n", r->events,
			rpt_run__incomplete(r) ? "**incomplete**" : "complete");
		if (*r->ci) {
			fputs("  - CI: ", out);
			esc__md(out, r->ci);
			fputc('\n', out);
		}
		fprintf(out, "  - %s; %s\n", r->has_start ? "runStart seen" : "**no runStart**",
			r->has_end ? "runEnd seen" : "**no runEnd** (the agent did not finish)");
		if (r->missing || r->out_of_order) {
			fprintf(out, "  - **seq chain broken**: %" PRIu64 " events missing", r->missing);
			for (size_t g = 0; g < r->ngaps; g++)
				fprintf(out, "%s %" PRIu64 "\\-%" PRIu64, g ? "," : " (seq", r->gaps[g].from,
					r->gaps[g].to);
			fprintf(out, "%s, %" PRIu64 " out of order\n", r->ngaps ? ")" : "",
				r->out_of_order);
		} else {
			fprintf(out, "  - seq %" PRIu64 "\\-%" PRIu64 " without a gap\n", r->first_seq,
				r->last_seq);
		}
		if (r->has_end)
			fprintf(out, "  - drops: %" PRIu64 "\n", r->end_drops);
		for (size_t c = 0; c < r->ncauses; c++) {
			fputs("  - **lost**: ", out);
			esc__md(out, r->causes[c].name);
			fprintf(out, " %" PRIu64 "\n", r->causes[c].count);
		}
	}
	fputc('\n', out);
}

static void md__violations(FILE *out, const struct rpt_model *m, size_t rows)
{
	size_t n = m->nviolations < rows ? m->nviolations : rows;

	fprintf(out, "### Violations (%zu)\n\n", m->nviolations);
	if (!m->nviolations) {
		fputs("None.\n\n", out);
		return;
	}
	fputs("| seq | what | rule | action | process | lineage (parent first) |\n"
	      "|---|---|---|---|---|---|\n", out);
	for (size_t i = 0; i < n; i++) {
		const struct rpt_violation *v = &m->violations[i];

		fprintf(out, "| %" PRIu64 " | ", v->seq);
		md__text(out, rpt__describe(m, v));
		fputs(" | ", out);
		esc__md(out, v->rule);
		fprintf(out, " | %s | ", rpt__action(v->action));
		md__text(out, rpt__actor(m, v->proc, 160));
		fputs(" | ", out);
		md__text(out, rpt__lineage(v));
		fputs(" |\n", out);
	}
	md__more(out, n, m->nviolations);
	fputc('\n', out);
}

struct dest_key {
	const struct rpt_model *m;
	const struct rpt_connect *c;
};

static int dest_eq(const void *ctx, int32_t val)
{
	const struct dest_key *k = ctx;
	const struct rpt_connect *d = &k->m->connects[val];

	return d->port == k->c->port && d->protocol == k->c->protocol &&
	       strcmp(d->address, k->c->address) == 0;
}

/* Connects grouped by destination, in order of first appearance. */
static void md__egress(FILE *out, const struct rpt_model *m, size_t rows)
{
	size_t *count = calloc(m->nconnects + 1, sizeof(*count));
	size_t *bad = calloc(m->nconnects + 1, sizeof(*bad));
	struct rpt_htab dests = { 0 };
	size_t shown = 0, ndests = 0;

	fprintf(out, "### Egress (%zu connects)\n\n", m->nconnects);
	if (!count || !bad)
		goto oom;
	for (size_t i = 0; i < m->nconnects; i++) {
		const struct rpt_connect *c = &m->connects[i];
		struct dest_key k = { .m = m, .c = c };
		uint64_t key = htab__str_key(c->address) ^ htab__num_key(c->port * 8u + (unsigned)c->protocol);
		int32_t first = htab__get(&dests, key | 1, dest_eq, &k);

		if (first < 0) {
			first = (int32_t)i;
			if (htab__put(&dests, key | 1, first, dest_eq, &k))
				goto oom;
			ndests++;
		}
		count[first]++;
		bad[first] += c->violation;
	}
	if (!m->nconnects)
		fputs("None.\n", out);
	else
		fputs("| destination | connects | refused by policy | first process |\n"
		      "|---|---|---|---|\n", out);
	for (size_t i = 0; i < m->nconnects && shown < rows; i++) {
		const struct rpt_connect *c = &m->connects[i];

		if (!count[i])
			continue;
		shown++;
		fputs("| ", out);
		esc__md(out, c->address);
		fprintf(out, " port %u %s | %zu | %s | ", c->port, rpt__protocol(c->protocol),
			count[i], bad[i] ? "**yes**" : "no");
		md__text(out, rpt__actor(m, c->proc, 0));
		fputs(" |\n", out);
	}
	md__more(out, shown, ndests);
	fputs("\nThe events carry addresses only: no names.\n\n", out);
	goto done;
oom:
	fputs("(out of memory)\n\n", out);
done:
	htab__free(&dests);
	free(count);
	free(bad);
}

static void md__execs(FILE *out, const struct rpt_model *m, size_t rows)
{
	size_t shown = 0, total = 0;

	fputs("### Execs from unusual places\n\n"
	      "Executables outside /usr, /bin, /sbin, /lib, /lib64 and /opt.\n\n", out);
	for (size_t i = 0; i < m->nexecs; i++) {
		const struct rpt_exec *e = &m->execs[i];

		if (!rpt__unusual_exe(e->exe))
			continue;
		if (total++ == 0)
			fputs("| seq | exe | argv | process | violation |\n|---|---|---|---|---|\n", out);
		if (shown >= rows)
			continue;
		shown++;
		fprintf(out, "| %" PRIu64 " | ", e->seq);
		esc__md(out, e->exe);
		fputs(" | ", out);
		esc__md(out, e->argv);
		fputs(" | ", out);
		md__text(out, rpt__actor(m, e->proc, 0));
		fprintf(out, " | %s |\n", e->violation ? "**yes**" : "no");
	}
	if (!total)
		fputs("None.\n", out);
	md__more(out, shown, total);
	fputc('\n', out);
}

static void md__files(FILE *out, const struct rpt_model *m, size_t rows)
{
	size_t n = m->nfiles < rows ? m->nfiles : rows;

	fprintf(out, "### Changes in the protected trees (%zu)\n\n", m->nfiles);
	if (!m->nfiles) {
		fputs("None.\n\n", out);
		return;
	}
	fputs("| seq | op | path | by | violation |\n|---|---|---|---|---|\n", out);
	/* violations first: they are what a reader of a long list must not miss */
	for (int pass = 0, shown = 0; pass < 2; pass++) {
		for (size_t i = 0; i < m->nfiles && (size_t)shown < n; i++) {
			const struct rpt_file *f = &m->files[i];

			if (f->violation != (pass == 0))
				continue;
			shown++;
			fprintf(out, "| %" PRIu64 " | %s | ", f->seq, rpt__file_op(f->op));
			esc__md(out, f->path);
			if (*f->new_path) {
				fputs(" \\-\\> ", out);
				esc__md(out, f->new_path);
			}
			fputs(" | ", out);
			md__text(out, rpt__actor(m, f->proc, 0));
			fprintf(out, " | %s |\n", f->violation ? "**yes**" : "no");
		}
	}
	md__more(out, n, m->nfiles);
	fputc('\n', out);
}

int report__markdown(FILE *out, const struct rpt_model *m, const struct report_opts *o)
{
	size_t rows = o && o->md_rows ? o->md_rows : 50;
	bool incomplete = report__fails(m, REPORT_FAIL_INCOMPLETE);

	fprintf(out, "## buildwarden: %s\n\n",
		m->nviolations && incomplete ? "violations, and the run is incomplete" :
		m->nviolations ? "violations" :
		incomplete ? "run incomplete" : "no violation, run complete");
	fprintf(out, "%" PRIu64 " events: %zu execs, %zu changes in the protected trees, "
		"%zu connects, %zu violations.\n\n",
		m->events, m->nexecs, m->nfiles, m->nconnects, m->nviolations);
	md__violations(out, m, rows);
	md__runs(out, m);
	md__egress(out, m, rows);
	md__execs(out, m, rows);
	md__files(out, m, rows);
	return ferror(out) ? -EIO : 0;
}
