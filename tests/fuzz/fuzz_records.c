/* Ring buffer records as the agent receives them: arbitrary bytes must be refused or
 * turned into an Event, never read past. The process table is empty. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/event_build.h"
#include "pipeline/records.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int no_proc(void *ctx, pid_t pid, struct bw_proc *out)
{
	return -2;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char text[] = "version: 1\nprotect:\n  - path: /src\nexec:\n  deny: [/tmp]\n"
				   "network:\n  allow: [\"127.0.0.0/8\"]\n  deny: [\"10.0.0.0/8\"]\n";
	static struct bw_policy *policy;
	static struct procinfo *pi;
	static struct arena *arena;
	struct proc_source src = { .lookup = no_proc };
	Buildwarden__V1__Event ev;
	struct event_ctx ctx;
	void *rec;
	int type;

	if (!policy) {
		struct bw_diags d;

		if (policy__parse(text, sizeof(text) - 1, "f", "/", BW_POLICY_NO_FS, &policy, &d))
			abort();
		pi = procinfo__new(&src);
		arena = malloc(sizeof(*arena));
	}
	/* an exact-size copy, so a read past the record is caught */
	rec = malloc(size ? size : 1);
	memcpy(rec, data, size);
	type = records__check(rec, size);
	ctx = (struct event_ctx){ .policy = policy, .pi = pi, .arena = arena };
	arena__reset(arena);
	buildwarden__v1__event__init(&ev);
	/* pids are forced to a nonexistent one: the fuzzer must not read this host's /proc */
	if (type == BW_EV_EXEC) {
		struct bw_exec_event *e = rec;

		e->pid = 0x7ffffff0;
		event_build__exec(&ctx, e, &ev);
	} else if (type == BW_EV_CONNECT) {
		struct bw_connect_event *c = rec;

		c->pid = 0x7ffffff0;
		event_build__connect(&ctx, c, &ev);
	}
	free(rec);
	return 0;
}
