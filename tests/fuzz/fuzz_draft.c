// SPDX-License-Identifier: GPL-2.0
/* libFuzzer target: an events stream as `buildwarden policy learn` and `policy test`
 * read it (the framing is transport's, fuzzed by fuzz_frame). Every event goes into a
 * learner and into a replay of a fixed draft; the proposal must then be a policy the
 * parser takes (file checks off): whatever names, paths and addresses hostile events
 * carry, `learn` never writes a file `policy check` would refuse. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buildwarden.pb-c.h"
#include "draft/learn.h"
#include "draft/replay.h"
#include "policy/policy.h"
#include "transport/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char draft_yaml[] =
	"version: 1\nprotect:\n  - path: /w/out\n    writers:\n      - exe: /usr/bin/rsync\n"
	"exec:\n  deny: [/tmp]\nnetwork:\n  default: deny\n"
	"  allow: [\"github.com:443\", \"*.example.org\", \"10.0.0.0/8\"]\n  deny: [\"10.9.0.0/16\"]\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const deny[] = { "/tmp", "/dev/shm", NULL };
	static struct bw_policy *draft;
	static FILE *devnull;
	struct draft_learn *l;
	struct draft_replay *r;
	struct bw_policy *p = NULL;
	struct bw_diags d;
	const uint8_t *payload;
	size_t off = 0, plen, len = 0;
	char *buf = NULL;
	FILE *out;

	if (!draft) {
		memset(&d, 0, sizeof(d));
		devnull = fopen("/dev/null", "w");
		if (!devnull || policy__parse(draft_yaml, strlen(draft_yaml), "d.yaml", "/",
					      BW_POLICY_NO_FS, &draft, &d))
			abort();
	}
	if (draft_learn__new(&l) || draft_replay__new(draft, &r))
		abort();
	while (frame__next(data, size, &off, BW_FRAME_MAX, &payload, &plen) == 1) {
		Buildwarden__V1__Event *ev = buildwarden__v1__event__unpack(NULL, plen, payload);

		if (!ev)
			break;
		if (draft_learn__event(l, ev) || draft_replay__event(r, ev))
			abort(); /* far below the item bounds: only out of memory */
		buildwarden__v1__event__free_unpacked(ev, NULL);
	}
	draft_replay__write(r, devnull);
	draft_replay__free(r);
	out = open_memstream(&buf, &len);
	if (!out || draft_learn__write(l, deny, out) || fclose(out))
		abort();
	draft_learn__free(l);
	memset(&d, 0, sizeof(d));
	if (policy__parse(buf, len, "learned.yaml", "/", BW_POLICY_NO_FS, &p, &d)) {
		fprintf(stderr, "the proposal does not parse:\n%s\n", buf);
		for (size_t i = 0; i < d.n; i++)
			fprintf(stderr, "learned.yaml:%u:%u: %s\n", d.items[i].line, d.items[i].col,
				d.items[i].msg);
		abort();
	}
	policy__free(p);
	free(buf);
	return 0;
}
