// SPDX-License-Identifier: GPL-2.0
/* The HTML report: one self-contained file. The summary, the completeness of each run
 * and the violations are plain HTML (readable with scripts off); the process tree, the
 * outputs and the egress are drawn by the inline script from a JSON block, collapsed,
 * so a page of 100k events opens fast. Every string from the events is escaped for
 * where it lands: esc__html in markup, esc__json (which also escapes < > &) in the
 * data block, and the script only ever sets textContent. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "report/escape.h"
#include "report/html_assets.h"
#include "report/report.h"

/* Violations drawn as rows of the static table; the rest are in the tree. */
#define HTML_MAX_VIOLATION_ROWS 2000

static void html__own(FILE *out, char *s)
{
	esc__html(out, s ? s : "?");
	free(s);
}

static void html__run(FILE *out, const struct rpt_run *r)
{
	bool bad = rpt_run__incomplete(r);

	fputs("<div class=\"run\"><h3>run <code>", out);
	esc__html(out, r->run_id);
	fputs("</code> on ", out);
	esc__html(out, *r->host ? r->host : "?");
	fprintf(out, ": <span class=\"completeness %s\">%s</span></h3><ul>", bad ? "bad" : "ok",
		bad ? "incomplete" : "complete");
	if (r->has_start) {
		if (*r->argv) {
			fputs("<li>command <code>", out);
			esc__html(out, r->argv);
			fputs("</code>, mode ", out);
		} else {
			fputs("<li>mode ", out);
		}
		esc__html(out, r->mode);
		fputs(", policy <code>", out);
		esc__html(out, r->policy_path);
		fputs("</code> (sha256 <code>", out);
		esc__html(out, r->policy_sha256);
		fputs("</code>), agent ", out);
		esc__html(out, r->agent_version);
		fputs("</li>", out);
		if (*r->ci) {
			fputs("<li>CI: ", out);
			esc__html(out, r->ci);
			fputs("</li>", out);
		}
		for (size_t l = 0; l < r->nlayers; l++) {
			fputs("<li>guard: ", out);
			esc__html(out, r->layers[l]);
			fputs("</li>", out);
		}
	} else {
		fputs("<li class=\"bad\">no runStart</li>", out);
	}
	if (r->has_end)
		fprintf(out, "<li>runEnd: exit status %d, %" PRIu64 " events, %" PRIu64
			" violations, %" PRIu64 " drops</li>", r->exit_status, r->end_events,
			r->end_violations, r->end_drops);
	else
		fputs("<li class=\"bad\">no runEnd: the agent did not finish</li>", out);
	for (size_t c = 0; c < r->ncauses; c++)
		fprintf(out, "<li class=\"bad\">lost: %s %" PRIu64 "</li>", r->causes[c].name,
			r->causes[c].count);
	if (r->missing || r->out_of_order) {
		fprintf(out, "<li class=\"bad\">seq chain broken: %" PRIu64 " events missing", r->missing);
		for (size_t g = 0; g < r->ngaps; g++)
			fprintf(out, "%s%" PRIu64 "&ndash;%" PRIu64, g ? ", " : " (seq ", r->gaps[g].from,
				r->gaps[g].to);
		fprintf(out, "%s, %" PRIu64 " out of order</li>", r->ngaps ? ")" : "", r->out_of_order);
	} else {
		fprintf(out, "<li>seq %" PRIu64 "&ndash;%" PRIu64 " without a gap (%" PRIu64
			" events)</li>", r->first_seq, r->last_seq, r->events);
	}
	if (r->has_stats)
		fprintf(out, "<li>last stats: ring-buffer drops %" PRIu64 ", fanotify overflows %" PRIu64
			", unattributed %" PRIu64 "</li>", r->stats_ringbuf_drops,
			r->stats_fanotify_overflows, r->stats_unattributed);
	fputs("</ul></div>\n", out);
}

static void html__violations(FILE *out, const struct rpt_model *m)
{
	size_t n = m->nviolations < HTML_MAX_VIOLATION_ROWS ? m->nviolations : HTML_MAX_VIOLATION_ROWS;

	fprintf(out, "<h2 id=\"violations\">Violations (%zu)</h2>\n", m->nviolations);
	if (!m->nviolations) {
		fputs("<p class=\"ok\">None.</p>\n", out);
		return;
	}
	fputs("<table><thead><tr><th>seq</th><th>what</th><th>rule</th><th>action</th>"
	      "<th>process</th><th>lineage (parent first)</th></tr></thead><tbody>\n", out);
	for (size_t i = 0; i < n; i++) {
		const struct rpt_violation *v = &m->violations[i];

		fprintf(out, "<tr class=\"violation\" id=\"v-%zu\"><td>%" PRIu64 "</td><td class=\"mono\">",
			i, v->seq);
		html__own(out, rpt__describe(m, v));
		fputs("</td><td class=\"mono\">", out);
		esc__html(out, v->rule);
		fprintf(out, "</td><td>%s</td><td class=\"mono\">", rpt__action(v->action));
		if (v->proc >= 0)
			fprintf(out, "<a href=\"#p-%d\">", v->proc);
		/* argv cut here; the tree node (the link) has all of it */
		html__own(out, rpt__actor(m, v->proc, 200));
		if (v->proc >= 0)
			fputs("</a>", out);
		fputs("</td><td class=\"mono\">", out);
		html__own(out, rpt__lineage(v));
		fputs("</td></tr>\n", out);
	}
	fputs("</tbody></table>\n", out);
	if (n < m->nviolations)
		fprintf(out, "<p>%zu more violations: open their processes in the tree, or use "
			"<code>buildwarden decode</code>.</p>\n", m->nviolations - n);
}

/* Execs outside the system directories, as static rows (an attacker's tool dropped in
 * /tmp or a cache shows here first). */
static void html__unusual(FILE *out, const struct rpt_model *m)
{
	size_t shown = 0, total = 0;

	fputs("<h2 id=\"unusual-execs\">Execs from unusual places</h2>\n<p>Executables outside "
	      "/usr, /bin, /sbin, /lib, /lib64 and /opt.</p>\n", out);
	for (size_t i = 0; i < m->nexecs; i++) {
		const struct rpt_exec *e = &m->execs[i];

		if (!rpt__unusual_exe(e->exe))
			continue;
		if (total++ == 0)
			fputs("<table><thead><tr><th>seq</th><th>exe</th><th>argv</th><th>process</th>"
			      "</tr></thead><tbody>\n", out);
		if (shown >= HTML_MAX_VIOLATION_ROWS)
			continue;
		shown++;
		fprintf(out, "<tr%s><td>%" PRIu64 "</td><td class=\"mono\">",
			e->violation ? " class=\"violation\"" : "", e->seq);
		esc__html(out, e->exe);
		fputs("</td><td class=\"mono\">", out);
		esc__html(out, e->argv);
		fputs("</td><td class=\"mono\">", out);
		if (e->proc >= 0)
			fprintf(out, "<a href=\"#p-%d\">", e->proc);
		html__own(out, rpt__actor(m, e->proc, 0));
		if (e->proc >= 0)
			fputs("</a>", out);
		fputs("</td></tr>\n", out);
	}
	if (total)
		fputs("</tbody></table>\n", out);
	else
		fputs("<p class=\"ok\">None.</p>\n", out);
	if (total > shown)
		fprintf(out, "<p>%zu more.</p>\n", total - shown);
}

/* ---- the data block -------------------------------------------------------------- */

static void js__s(FILE *out, const char *s)
{
	fputc('"', out);
	esc__json(out, s);
	fputc('"', out);
}

static void html__data(FILE *out, const struct rpt_model *m)
{
	size_t i, j;

	fputs("<script type=\"application/json\" id=\"bw-data\">{\"procs\":[", out);
	for (i = 0; i < m->nprocs; i++) {
		const struct rpt_proc *p = &m->procs[i];
		unsigned flags = (p->in_build ? 1u : 0) | (p->seen ? 2u : 0);

		fprintf(out, "%s[%u,%d,%u,%u,", i ? ",\n" : "", p->pid, p->parent, p->run, flags);
		js__s(out, p->exe);
		fputc(',', out);
		js__s(out, p->argv);
		fprintf(out, ",%u,%u,%u,%u]", p->nexecs, p->nfiles, p->nconnects, p->nviolations);
	}
	fputs("],\n\"execs\":[", out);
	for (i = 0; i < m->nexecs; i++) {
		fprintf(out, "%s[%d,", i ? ",\n" : "", m->execs[i].proc);
		js__s(out, m->execs[i].filename);
		fprintf(out, ",%d]", m->execs[i].violation);
	}
	fputs("],\n\"files\":[", out);
	for (i = 0; i < m->nfiles; i++) {
		const struct rpt_file *f = &m->files[i];

		fprintf(out, "%s[%d,\"%s\",", i ? ",\n" : "", f->proc, rpt__file_op(f->op));
		js__s(out, f->path);
		fputc(',', out);
		js__s(out, f->new_path);
		fprintf(out, ",%d]", f->violation);
	}
	fputs("],\n\"conns\":[", out);
	for (i = 0; i < m->nconnects; i++) {
		const struct rpt_connect *c = &m->connects[i];

		fprintf(out, "%s[%d,", i ? ",\n" : "", c->proc);
		js__s(out, c->address);
		fprintf(out, ",%u,\"%s\",%d]", c->port, rpt__protocol(c->protocol), c->violation);
	}
	fputs("],\n\"outputs\":[", out);
	for (i = 0; i < m->noutputs; i++) {
		const struct rpt_output *o = &m->outputs[i];

		fputs(i ? ",\n[" : "[", out);
		js__s(out, o->path);
		fprintf(out, ",%d,[", o->from);
		for (j = 0; j < o->nchanges; j++)
			fprintf(out, "%s%d", j ? "," : "", o->changes[j]);
		fprintf(out, "],%d,", o->gone);
		js__s(out, o->across ? o->across : "");
		fputc(']', out);
	}
	fputs("]}</script>\n", out);
}

int report__html(FILE *out, const struct rpt_model *m, const struct report_opts *o)
{
	bool incomplete = report__fails(m, REPORT_FAIL_INCOMPLETE);

	(void)o;
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	      /* nothing from the network, no plugins, no forms: only what is inline */
	      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
	      "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; "
	      "base-uri 'none'; form-action 'none'\">\n"
	      "<meta name=\"viewport\" content=\"width=device-width\">\n"
	      "<title>buildwarden report</title>\n<style>", out);
	fputs(html_css, out);
	fputs("</style></head><body>\n<h1>buildwarden report</h1>\n<div id=\"summary\">", out);
	fprintf(out, "<div class=\"%s\" id=\"verdict\">%s</div>",
		m->nviolations || incomplete ? "bad" : "ok",
		m->nviolations && incomplete ? "violations, and the run is incomplete" :
		m->nviolations ? "violations" :
		incomplete ? "run incomplete" : "no violation, run complete");
	fprintf(out, "<div>%" PRIu64 " events: %zu processes, %zu execs, %zu changes in the "
		"protected trees, %zu connects, %zu violations</div></div>\n",
		m->events, m->nprocs, m->nexecs, m->nfiles, m->nconnects, m->nviolations);
	html__violations(out, m);
	fputs("<h2 id=\"runs\">Completeness</h2>\n", out);
	if (m->read_error[0]) {
		fputs("<p class=\"bad\">The events file is corrupt: ", out);
		esc__html(out, m->read_error);
		fputs("</p>\n", out);
	}
	if (!m->nruns)
		fputs("<p class=\"bad\">No run in this file: nothing vouches for the build.</p>\n", out);
	for (size_t i = 0; i < m->nruns; i++)
		html__run(out, &m->runs[i]);
	fputs("<h2 id=\"process-tree\">Processes</h2>\n<p>Collapsed: open a node to see its "
	      "children, execs, file changes and connects. A link <code>#pid-PID</code> opens "
	      "that process.</p>\n<ul class=\"tree\" id=\"tree\"></ul>\n"
	      "<h2 id=\"outputs\">Outputs: who wrote each file</h2>\n"
	      "<p>Every file changed in the protected trees under its final name, with each "
	      "change and the names it had before a rename within the trees.</p>\n"
	      "<input class=\"filter\" id=\"outputs-filter\" placeholder=\"filter paths\">\n"
	      "<table><thead><tr><th>path</th><th>changes (and rename chain)</th></tr></thead>"
	      "<tbody id=\"outputs-body\"></tbody></table>\n"
	      "<h2 id=\"egress\">Egress</h2>\n<p>Connects by destination. The events carry "
	      "addresses only, no names.</p>\n"
	      "<table><thead><tr><th>destination</th><th>connects</th><th>refused by policy</th>"
	      "<th>first process</th></tr></thead><tbody id=\"egress-body\"></tbody></table>\n"
	      , out);
	html__unusual(out, m);
	fputs("<p><small>ready <span id=\"ready-ms\">?</span> ms after the page was opened "
	      "(the script drew in <span id=\"render-ms\">?</span> ms)</small></p>\n"
	      "<noscript><p>The tree, outputs and egress need scripts; the violations and "
	      "completeness above do not.</p></noscript>\n", out);
	html__data(out, m);
	fputs("<script>", out);
	fputs(html_js, out);
	fputs("</script>\n</body></html>\n", out);
	return ferror(out) ? -EIO : 0;
}
