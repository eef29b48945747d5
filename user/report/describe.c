// SPDX-License-Identifier: GPL-2.0
/* One-line texts about violations and processes, shared by every report format. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/model.h"

char *rpt__describe(const struct rpt_model *m, const struct rpt_violation *v)
{
	char *s = NULL;
	int n = -1;

	switch (v->kind) {
	case RPT_EXEC: {
		const struct rpt_exec *e = &m->execs[v->item];

		n = asprintf(&s, "exec %s%s", e->filename, e->truncated ? " (truncated)" : "");
		break;
	}
	case RPT_FILE: {
		const struct rpt_file *f = &m->files[v->item];

		n = asprintf(&s, "%s %s%s%s", rpt__file_op(f->op), f->path, *f->new_path ? " -> " : "",
			     f->new_path);
		break;
	}
	case RPT_CONNECT: {
		const struct rpt_connect *c = &m->connects[v->item];

		n = asprintf(&s, "connect %s %s port %u", rpt__protocol(c->protocol), c->address,
			     c->port);
		break;
	}
	case RPT_ACCESS:
		n = asprintf(&s, "%s of pid %u", rpt__access_kind(v->access_kind), v->target_pid);
		break;
	default:
		n = asprintf(&s, "run incomplete");
	}
	return n < 0 ? NULL : s;
}

char *rpt__actor(const struct rpt_model *m, int32_t proc, size_t max_argv)
{
	const struct rpt_proc *p;
	size_t n;
	char *s = NULL;

	if (proc < 0)
		return asprintf(&s, "unknown process") < 0 ? NULL : s;
	p = &m->procs[proc];
	n = strlen(p->argv);
	if (n > max_argv) {
		n = max_argv;
		/* not inside a UTF-8 sequence: back off its continuation bytes */
		while (n && ((unsigned char)p->argv[n] & 0xc0) == 0x80)
			n--;
	}
	if (asprintf(&s, "pid %u %s%s%.*s%s (%s)", p->pid, *p->exe ? p->exe : "?",
		     n ? ": " : "", (int)n, p->argv, n && n < strlen(p->argv) ? "..." : "",
		     p->in_build ? "in the build" : "outside the build") < 0)
		return NULL;
	return s;
}

char *rpt__lineage(const struct rpt_violation *v)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	if (!v->nlineage)
		fputs(v->attributed ? "no ancestors recorded" : "actor not attributed", f);
	for (size_t i = 0; i < v->nlineage; i++)
		fprintf(f, "%spid %u %s%s", i ? " <- " : "", v->lineage[i].pid,
			*v->lineage[i].exe ? v->lineage[i].exe : "?",
			v->lineage[i].in_build ? " (build)" : "");
	if (v->lineage_total > v->nlineage)
		fprintf(f, " <- ... %zu more", v->lineage_total - v->nlineage);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
