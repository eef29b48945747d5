// SPDX-License-Identifier: GPL-2.0
/* The exported JSON object of one event: see export_priv.h. The event part is the
 * shared proto3 JSON printer's (transport/pbjson), so export, `decode` and `query`
 * print an event the same way. */
#include <errno.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/batch.h"
#include "collector/export_priv.h"
#include "collector/json_out.h"
#include "transport/pbjson.h"

void export__rfc3339(char *buf, size_t len, int64_t ns)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;
	char s[32];

	if (ns < 0)
		t = 0, ns = 0;
	gmtime_r(&t, &tm);
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%06dZ", s, (int)((ns % 1000000000) / 1000));
}

void export__flag_names(char *buf, size_t len, uint32_t flags)
{
	static const char *const names[] = { "chain_break", "chain_unverified", "bad_event",
					     "redacted" };
	size_t used = 0;

	if (len)
		buf[0] = 0;
	for (int i = 0; i < 4; i++) {
		if (!(flags & (1u << i)) || used >= len)
			continue;
		used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? "," : "", names[i]);
	}
}

int export__json(FILE *out, const struct export_item *it)
{
	const struct store_row *r = &it->row;
	char t[40], flags[96];
	char *json = NULL;
	size_t jlen = 0;
	FILE *mem;
	int rc = 0;

	/* Agent ids and hosts were checked at Hello (printable, bounded); escaped anyway. */
	fputs("{\"agent\":", out);
	json_out__str(out, r->agent);
	fputs(",\"boundHost\":", out);
	json_out__str(out, r->host);
	if (r->received_ns) {
		export__rfc3339(t, sizeof(t), r->received_ns);
		fprintf(out, ",\"receivedTime\":\"%s\"", t);
	}
	export__flag_names(flags, sizeof(flags), r->flags);
	fputs(",\"integrity\":[", out);
	for (char *p = flags, *next; *p; p = next) {
		next = strchr(p, ',');
		fprintf(out, "%s\"%.*s\"", p == flags ? "" : ",",
			(int)(next ? (size_t)(next - p) : strlen(p)), p);
		next = next ? next + 1 : p + strlen(p);
	}
	fprintf(out, "],\"exportId\":\"%lld\"", (long long)r->id);
	if (it->ev) {
		mem = open_memstream(&json, &jlen);
		if (!mem)
			return -ENOMEM;
		__fsetlocking(mem, FSETLOCKING_BYCALLER); /* one thread: no lock per byte */
		rc = pbjson__print(mem, &it->ev->base);
		if (fclose(mem))
			rc = rc ?: -ENOMEM;
	}
	if (!rc && json && jlen > 2 && json[0] == '{') {
		fputc(',', out);
		fputs(json + 1, out); /* its closing brace closes ours */
	} else {
		/* not an Event (bad_event): what the row says, and the run it belongs to */
		fputs(",\"runId\":", out);
		json_out__str(out, r->run_id);
		fprintf(out, ",\"seq\":\"%llu\"}", (unsigned long long)r->seq);
	}
	free(json);
	return ferror(out) ? -EIO : 0;
}
