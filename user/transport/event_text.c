/* event_text__print: see event_text.h. A separate printer from pbjson.c: JSON is for
 * programs and follows the schema; this line is for a person reading a log. */
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "transport/event_text.h"

/* Control characters (a newline in a file name, an escape sequence in argv) as \xNN:
 * one event stays one line, and nothing the build chose drives the terminal. */
static void text__str(FILE *out, const char *s)
{
	if (!s || !*s) {
		fputs("\"\"", out);
		return;
	}
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 0x20 || ch == 0x7f || ch == '\\')
			fprintf(out, "\\x%02x", ch);
		else
			fputc(ch, out);
	}
}

static const char *text__enum(const ProtobufCEnumDescriptor *d, int v)
{
	const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, v);

	return ev ? ev->name : "?";
}

static void text__time(FILE *out, uint64_t ns)
{
	time_t sec = (time_t)(ns / 1000000000u);
	struct tm tm;
	char buf[32];

	if (!ns || !gmtime_r(&sec, &tm) || !strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm)) {
		fputs("-", out);
		return;
	}
	fprintf(out, "%s.%03uZ", buf, (unsigned)(ns % 1000000000u / 1000000u));
}

static void text__body(FILE *out, const Buildwarden__V1__Event *ev)
{
	switch (ev->body_case) {
	case BUILDWARDEN__V1__EVENT__BODY_EXEC:
		fputs("exec ", out);
		text__str(out, ev->exec->filename);
		break;
	case BUILDWARDEN__V1__EVENT__BODY_FILE:
		fprintf(out, "file %s ", text__enum(&buildwarden__v1__file_op__descriptor, (int)ev->file->op));
		text__str(out, ev->file->path);
		if (ev->file->new_path && *ev->file->new_path) {
			fputs(" -> ", out);
			text__str(out, ev->file->new_path);
		}
		break;
	case BUILDWARDEN__V1__EVENT__BODY_CONNECT:
		fprintf(out, "connect %s ", text__enum(&buildwarden__v1__protocol__descriptor,
						       (int)ev->connect->protocol));
		text__str(out, ev->connect->address);
		fprintf(out, " port %" PRIu32, ev->connect->port);
		if (ev->connect->name && *ev->connect->name) {
			fputs(" (", out);
			text__str(out, ev->connect->name);
			fputc(')', out);
		}
		break;
	case BUILDWARDEN__V1__EVENT__BODY_RUN_START:
		fputs("run_start mode ", out);
		text__str(out, ev->run_start->mode);
		for (size_t i = 0; i < ev->run_start->n_argv; i++) {
			fputc(' ', out);
			text__str(out, ev->run_start->argv[i]);
		}
		break;
	case BUILDWARDEN__V1__EVENT__BODY_RUN_END:
		fprintf(out, "run_end exit %" PRId32 ", %" PRIu64 " events, %" PRIu64 " violations, %" PRIu64 " drops",
			ev->run_end->exit_status, ev->run_end->events, ev->run_end->violations,
			ev->run_end->drops);
		break;
	case BUILDWARDEN__V1__EVENT__BODY_STATS:
		fprintf(out, "stats %" PRIu64 " events, %" PRIu64 " ring buffer drops", ev->stats->events,
			ev->stats->ringbuf_drops);
		break;
	case BUILDWARDEN__V1__EVENT__BODY_PROCESS_ACCESS:
		fprintf(out, "process_access %s pid %" PRIu32,
			text__enum(&buildwarden__v1__process_access_kind__descriptor,
				   (int)ev->process_access->kind),
			ev->process_access->target_pid);
		break;
	case BUILDWARDEN__V1__EVENT__BODY_ENROLL:
		fprintf(out, "enroll pid %" PRIu32 "%s", ev->enroll->pid,
			ev->enroll->refused ? " refused" : "");
		break;
	default:
		fputs("none", out);
	}
}

void event_text__print(FILE *out, const Buildwarden__V1__Event *ev)
{
	const Buildwarden__V1__Process *p = ev->process;
	const Buildwarden__V1__Verdict *v = ev->verdict;

	text__time(out, ev->time_ns);
	fputs(" run ", out);
	text__str(out, ev->run_id);
	fprintf(out, " #%" PRIu64 " ", ev->seq);
	text__body(out, ev);
	if (p) {
		fputs(" by ", out);
		text__str(out, p->exe && *p->exe ? p->exe : "?");
		fprintf(out, " pid %" PRIu32 " (%s)", p->pid,
			!p->attributed ? "unattributed" : p->in_build ? "build" : "outside the build");
	}
	if (v && v->violation) {
		fputs(" VIOLATION ", out);
		text__str(out, v->rule);
		fprintf(out, " %s", text__enum(&buildwarden__v1__action__descriptor, (int)v->action));
	} else if (v && v->rule && *v->rule) {
		fputs(" allowed by ", out);
		text__str(out, v->rule);
	}
	fputc('\n', out);
}
