// SPDX-License-Identifier: GPL-2.0
/* Filters on an event's own fields and its printed forms: see query_event.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/json_out.h"
#include "collector/query_event.h"
#include "transport/pbjson.h"

void query_event__time(char *buf, size_t len, int64_t ns)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;
	char s[32];

	if (ns < 0)
		t = 0, ns = 0;
	gmtime_r(&t, &tm);
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03dZ", s, (int)((ns % 1000000000) / 1000000));
}

bool query_event__outside_write(const Buildwarden__V1__Event *ev)
{
	if (!ev || ev->body_case != BUILDWARDEN__V1__EVENT__BODY_FILE || !ev->file)
		return false;
	/* no process, or one the sensor could not attribute: nothing shows it was the build */
	return !ev->process || !ev->process->attributed || !ev->process->in_build;
}

static bool query_event__prefix(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);

	if (!s || strncmp(s, prefix, n))
		return false;
	/* "/src" matches /src and /src/x, not /srcfoo; "/src/" matches what is below */
	return !s[n] || s[n] == '/' || (n && prefix[n - 1] == '/');
}

bool query_event__filters(const struct query_opts *o)
{
	return o->exe || o->path || o->outside_writes;
}

bool query_event__match(const struct query_opts *o, const Buildwarden__V1__Event *ev)
{
	if (!query_event__filters(o))
		return true;
	if (!ev)
		return false;
	if (o->exe && (!ev->process || !ev->process->exe || strcmp(ev->process->exe, o->exe)))
		return false;
	if (o->path) {
		bool hit = false;

		if (ev->body_case == BUILDWARDEN__V1__EVENT__BODY_FILE && ev->file)
			hit = query_event__prefix(ev->file->path, o->path) ||
			      query_event__prefix(ev->file->new_path, o->path) ||
			      query_event__prefix(ev->file->old_path, o->path);
		else if (ev->body_case == BUILDWARDEN__V1__EVENT__BODY_EXEC && ev->exec)
			hit = query_event__prefix(ev->exec->filename, o->path);
		if (!hit)
			return false;
	}
	if (o->outside_writes && !query_event__outside_write(ev))
		return false;
	return true;
}

static const char *const query_event__flag_names[] = { "chain_break", "chain_unverified",
						       "bad_event", "redacted" };

static void query_event__json(FILE *out, const char *agent, uint64_t seq, int flags,
			      const Buildwarden__V1__Event *ev)
{
	char *json = NULL;
	size_t jlen = 0;
	FILE *mem;
	int rc = -EINVAL;

	fputs("{\"agent\":", out);
	json_out__str(out, agent);
	fputc(',', out);
	if (flags) {
		bool first = true;

		fputs("\"integrity\":[", out);
		for (int i = 0; i < 4; i++) {
			if (!(flags & (1 << i)))
				continue;
			fprintf(out, "%s\"%s\"", first ? "" : ",", query_event__flag_names[i]);
			first = false;
		}
		fputs("],", out);
	}
	if (ev && (mem = open_memstream(&json, &jlen))) {
		rc = pbjson__print(mem, &ev->base);
		fclose(mem);
	}
	if (!rc && json && jlen > 2 && json[0] == '{')
		fprintf(out, "%s\n", json + 1);
	else
		fprintf(out, "\"seq\":\"%llu\"}\n", (unsigned long long)seq);
	free(json);
}

/* A string of the event in a text line: control bytes shown as '?', so one event is
 * one line whatever a path holds. */
static void query_event__text_str(FILE *out, const char *s)
{
	for (; s && *s; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, out);
}

static const char *query_event__enum(const ProtobufCEnumDescriptor *d, int v)
{
	const ProtobufCEnumValue *e = protobuf_c_enum_descriptor_get_value(d, v);

	return e ? e->name : "?";
}

static void query_event__text(FILE *out, const char *agent, const char *host, const char *run_id,
			      uint64_t seq, int64_t received_ns, int flags,
			      const Buildwarden__V1__Event *ev)
{
	const Buildwarden__V1__Process *p = ev ? ev->process : NULL;
	char t[40];

	query_event__time(t, sizeof(t), ev && ev->time_ns ? (int64_t)ev->time_ns : received_ns);
	fprintf(out, "%s ", t);
	query_event__text_str(out, agent);
	if (host) {
		fputc('/', out);
		query_event__text_str(out, host);
	}
	fputs(" run ", out);
	query_event__text_str(out, run_id);
	fprintf(out, " #%llu ", (unsigned long long)seq);
	if (!ev) {
		fputs("(not an event)", out);
	} else {
		switch (ev->body_case) {
		case BUILDWARDEN__V1__EVENT__BODY_EXEC:
			fputs("exec ", out);
			query_event__text_str(out, ev->exec->filename);
			break;
		case BUILDWARDEN__V1__EVENT__BODY_FILE:
			fprintf(out, "file %s ",
				query_event__enum(&buildwarden__v1__file_op__descriptor, (int)ev->file->op));
			query_event__text_str(out, ev->file->path);
			if (ev->file->new_path && *ev->file->new_path) {
				fputs(" -> ", out);
				query_event__text_str(out, ev->file->new_path);
			}
			break;
		case BUILDWARDEN__V1__EVENT__BODY_CONNECT:
			fputs("connect ", out);
			query_event__text_str(out, ev->connect->address);
			fprintf(out, ":%u", ev->connect->port);
			if (ev->connect->name && *ev->connect->name) {
				fputs(" (", out);
				query_event__text_str(out, ev->connect->name);
				fputc(')', out);
			}
			break;
		case BUILDWARDEN__V1__EVENT__BODY_RUN_START:
			fputs("run_start", out);
			if (ev->run_start->mode && *ev->run_start->mode) {
				fputs(" mode ", out);
				query_event__text_str(out, ev->run_start->mode);
			}
			for (size_t i = 0; i < ev->run_start->n_argv; i++) {
				fputc(' ', out);
				query_event__text_str(out, ev->run_start->argv[i]);
			}
			break;
		case BUILDWARDEN__V1__EVENT__BODY_RUN_END:
			fprintf(out, "run_end exit %d, %llu events, %llu violations, %llu drops",
				ev->run_end->exit_status, (unsigned long long)ev->run_end->events,
				(unsigned long long)ev->run_end->violations,
				(unsigned long long)ev->run_end->drops);
			break;
		case BUILDWARDEN__V1__EVENT__BODY_STATS:
			fputs("stats", out);
			break;
		case BUILDWARDEN__V1__EVENT__BODY_PROCESS_ACCESS:
			fprintf(out, "process_access %s pid %u",
				query_event__enum(&buildwarden__v1__process_access_kind__descriptor,
						  (int)ev->process_access->kind),
				ev->process_access->target_pid);
			break;
		default:
			fputs("none", out);
		}
		if (p) {
			fputs(" by ", out);
			query_event__text_str(out, p->exe && *p->exe ? p->exe : "?");
			fprintf(out, " pid %u (%s)", p->pid,
				!p->attributed ? "unattributed" : p->in_build ? "build" : "outside the build");
		}
		if (ev->verdict && ev->verdict->violation) {
			fputs(" VIOLATION ", out);
			query_event__text_str(out, ev->verdict->rule);
			fprintf(out, " %s", query_event__enum(&buildwarden__v1__action__descriptor,
							      (int)ev->verdict->action));
		}
	}
	for (int i = 0; i < 4; i++)
		if (flags & (1 << i))
			fprintf(out, " [%s]", query_event__flag_names[i]);
	fputc('\n', out);
}

void query_event__print(FILE *out, const struct query_opts *o, const char *agent,
			const char *host, const char *run_id, uint64_t seq, int64_t received_ns,
			int flags, const Buildwarden__V1__Event *ev)
{
	if (o->format == QUERY_TEXT)
		query_event__text(out, agent, host, run_id, seq, received_ns, flags, ev);
	else
		query_event__json(out, agent, seq, flags, ev);
}
