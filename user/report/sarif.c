// SPDX-License-Identifier: GPL-2.0
/* SARIF 2.1.0 for code-scanning dashboards: one SARIF run per buildwarden run, one
 * result per violation, and one per incomplete run (a run that lost events cannot
 * vouch for its build). Checked against the official schema by tests/cli/test_report.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "report/escape.h"
#include "report/report.h"

static const struct sarif_rule {
	const char *id, *name, *text;
} sarif_rules[] = {
	[RPT_EXEC] = { "BW001", "exec-denied",
		       "A process executed a program the policy does not allow (exec.deny)." },
	[RPT_FILE] = { "BW002", "protected-tree-change",
		       "A process outside the build changed a protected tree." },
	[RPT_CONNECT] = { "BW003", "egress-refused",
			  "A build process connected to a destination the policy refuses." },
	[RPT_ACCESS] = { "BW004", "process-access",
			 "An outside process reached into a build process (ptrace, process_vm_writev, /proc/PID/mem)." },
	[RPT_INCOMPLETE] = { "BW005", "run-incomplete",
			     "The guard lost events: the run cannot vouch for the build." },
};

/* "key":"value" with the value escaped; s NULL is "" */
static void js__str(FILE *out, const char *key, const char *s)
{
	fprintf(out, "\"%s\":\"", key);
	esc__json(out, s ? s : "");
	fputc('"', out);
}

/* Writes malloc'd text escaped as a JSON string value and frees it. */
static void js__own(FILE *out, const char *key, char *s)
{
	js__str(out, key, s ? s : "?");
	free(s);
}

/* A path as an artifactLocation: relative to %SRCROOT% when it lies under root. */
static void sarif__location(FILE *out, const char *path, const struct report_opts *o)
{
	const char *root = o && o->source_root && *o->source_root == '/' ? o->source_root : NULL;
	size_t n = root ? strlen(root) : 0;

	while (n > 1 && root[n - 1] == '/')
		n--;
	fputs("{\"physicalLocation\":{\"artifactLocation\":{\"uri\":\"", out);
	if (n && strncmp(path, root, n) == 0 && path[n] == '/') {
		esc__uri_path(out, path + n + 1);
		fputs("\",\"uriBaseId\":\"SRCROOT\"}}}", out);
		return;
	}
	fputs("file://", out);
	esc__uri_path(out, *path == '/' ? path : "/");
	fputs("\"}}}", out);
}

static void sarif__result(FILE *out, const struct rpt_model *m, const struct rpt_violation *v,
			  const struct report_opts *o)
{
	const struct sarif_rule *r = &sarif_rules[v->kind];
	const char *path = NULL;
	char *what = rpt__describe(m, v), *actor = rpt__actor(m, v->proc, 4096);

	fprintf(out, "{\"ruleId\":\"%s\",\"ruleIndex\":%d,\"level\":\"error\",\"message\":{",
		r->id, (int)v->kind);
	{
		char *text = NULL;

		if (asprintf(&text, "%s by %s, against %s (%s)", what ? what : "?",
			     actor ? actor : "?", v->rule, rpt__action(v->action)) < 0)
			text = NULL;
		js__own(out, "text", text);
	}
	fputc('}', out);
	if (v->kind == RPT_FILE)
		path = m->files[v->item].path;
	else if (v->kind == RPT_EXEC)
		path = m->execs[v->item].filename;
	if (path && *path == '/') {
		fputs(",\"locations\":[", out);
		sarif__location(out, path, o);
		fputc(']', out);
	}
	fprintf(out, ",\"properties\":{\"seq\":%" PRIu64 ",", v->seq);
	js__str(out, "policyRule", v->rule);
	fputc(',', out);
	js__str(out, "action", rpt__action(v->action));
	fputc(',', out);
	js__str(out, "what", what);
	fputc(',', out);
	js__str(out, "process", actor);
	fputc(',', out);
	js__own(out, "lineage", rpt__lineage(v));
	fputs("}}", out);
	free(what);
	free(actor);
}

static void sarif__incomplete(FILE *out, const struct rpt_model *m, const struct rpt_run *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *t = open_memstream(&buf, &len);

	if (t) {
		fprintf(t, "run %s is incomplete:", r->run_id);
		if (m->read_error[0])
			fprintf(t, " the events file is corrupt (%s);", m->read_error);
		if (!r->has_end)
			fputs(" no runEnd (the agent did not finish);", t);
		if (r->missing)
			fprintf(t, " %" PRIu64 " events missing from the seq chain;", r->missing);
		if (r->end_drops)
			fprintf(t, " %" PRIu64 " drops;", r->end_drops);
		for (size_t c = 0; c < r->ncauses; c++)
			fprintf(t, " %s %" PRIu64 ";", r->causes[c].name, r->causes[c].count);
		if (fclose(t) != 0) {
			free(buf);
			buf = NULL;
		}
	}
	fprintf(out, "{\"ruleId\":\"%s\",\"ruleIndex\":%d,\"level\":\"error\",\"message\":{",
		sarif_rules[RPT_INCOMPLETE].id, (int)RPT_INCOMPLETE);
	js__own(out, "text", buf);
	fputs("}}", out);
}

static void sarif__rules(FILE *out)
{
	fputs("\"rules\":[", out);
	for (size_t i = 0; i < sizeof(sarif_rules) / sizeof(sarif_rules[0]); i++) {
		const struct sarif_rule *r = &sarif_rules[i];

		fprintf(out, "%s{\"id\":\"%s\",\"name\":\"%s\",\"shortDescription\":{\"text\":\"%s\"},"
			"\"defaultConfiguration\":{\"level\":\"error\"}}",
			i ? "," : "", r->id, r->name, r->text);
	}
	fputc(']', out);
}

int report__sarif(FILE *out, const struct rpt_model *m, const struct report_opts *o)
{
	fputs("{\"$schema\":\"https://json.schemastore.org/sarif-2.1.0.json\",\"version\":\"2.1.0\","
	      "\"runs\":[", out);
	for (size_t i = 0; i < m->nruns; i++) {
		const struct rpt_run *r = &m->runs[i];
		bool first = true;

		fprintf(out, "%s{\"tool\":{\"driver\":{\"name\":\"buildwarden\",", i ? "," : "");
		js__str(out, "version", *r->agent_version ? r->agent_version : "unknown");
		fputc(',', out);
		sarif__rules(out);
		fputs("}},\"automationDetails\":{", out);
		{
			char *id = NULL;

			if (asprintf(&id, "buildwarden/%s", r->run_id) < 0)
				id = NULL;
			js__own(out, "id", id);
		}
		fputc('}', out);
		if (o && o->source_root && *o->source_root == '/') {
			fputs(",\"originalUriBaseIds\":{\"SRCROOT\":{\"uri\":\"file://", out);
			esc__uri_path(out, o->source_root);
			fputs(o->source_root[strlen(o->source_root) - 1] == '/' ? "\"}}" : "/\"}}", out);
		}
		fprintf(out, ",\"invocations\":[{\"executionSuccessful\":%s",
			rpt_run__incomplete(r) || m->read_error[0] ? "false" : "true");
		if (r->has_end)
			fprintf(out, ",\"exitCode\":%d", r->exit_status);
		if (r->has_start) {
			fputc(',', out);
			js__str(out, "commandLine", r->argv);
		}
		fputs("}],\"results\":[", out);
		for (size_t v = 0; v < m->nviolations; v++) {
			const struct rpt_violation *x = &m->violations[v];

			if (x->run != i)
				continue;
			if (!first)
				fputc(',', out);
			first = false;
			sarif__result(out, m, x, o);
		}
		if (rpt_run__incomplete(r) || (i + 1 == m->nruns && m->read_error[0])) {
			if (!first)
				fputc(',', out);
			sarif__incomplete(out, m, r);
		}
		fputs("]}", out);
	}
	if (!m->nruns) {
		/* nothing vouches for the build: that is a finding too, not an empty log */
		fputs("{\"tool\":{\"driver\":{\"name\":\"buildwarden\",", out);
		sarif__rules(out);
		fputs("}},\"invocations\":[{\"executionSuccessful\":false}],\"results\":[", out);
		fprintf(out, "{\"ruleId\":\"%s\",\"ruleIndex\":%d,\"level\":\"error\",\"message\":{",
			sarif_rules[RPT_INCOMPLETE].id, (int)RPT_INCOMPLETE);
		js__str(out, "text", m->read_error[0] ? m->read_error :
			"the events file holds no run: nothing vouches for the build");
		fputs("}}]}", out);
	}
	fputs("]}\n", out);
	return ferror(out) ? -EIO : 0;
}
