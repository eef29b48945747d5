// SPDX-License-Identifier: GPL-2.0
/* libFuzzer target: arbitrary bytes as a spool segment, read the ways the agent reads
 * one. The first byte picks the path: the record parser and whole-segment scan over
 * the raw bytes (as a sealed .seg), inflate + scan (as a compressed .segz), or the
 * real reader over a file of those bytes in a run directory (listing, loading,
 * bounded inflate, damage reporting). Invariants checked: the scan's good prefix is
 * exactly what record-by-record parsing accepts, seqs in it strictly increase, and
 * the reader never returns a record outside the bytes or out of order. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport/spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_scan(const uint8_t *buf, size_t len)
{
	struct spool_rec rec;
	uint64_t first, last, prev = 0;
	uint8_t chain[CHAIN_LEN];
	size_t good, off = 0;
	int rc;

	rc = spool__scan(buf, len, &good, &first, &last, chain);
	if (good > len || (rc == 0 && good != len))
		abort();
	while (off < good) {
		if (spool__next_record(buf, len, &off, &rec) != 1)
			abort();
		if (rec.first <= prev || rec.last < rec.first || rec.frame != buf + off - rec.frame_len)
			abort();
		if (rec.kind == SPOOL_REC_EVENT &&
		    (rec.chain < buf || rec.chain + CHAIN_LEN > buf + off ||
		     (rec.event_len && (rec.event < buf || rec.event + rec.event_len > buf + off))))
			abort();
		prev = rec.last;
	}
	if (off != good || (good && last != prev))
		abort();
}

static void check_reader(const uint8_t *data, size_t size, bool compressed)
{
	/* tmpfs where there is one: fsync there is free, and the spool fsyncs a lot */
	static char root[] = "/dev/shm/fuzz_spool.XXXXXX";
	static bool made;
	char path[256], err[256];
	struct spool_opts o = { .dir = root, .run_id = "cur" };
	struct spool *sp;
	int fd;

	if (!made) {
		if (!mkdtemp(root))
			abort();
		made = true;
	}
	/* an old run with one segment holding the input, adopted at open */
	snprintf(path, sizeof(path), "%s/old", root);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/old/meta", root);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, "buildwarden-spool 1\nrun_id old\n", 31) != 31)
		abort();
	close(fd);
	snprintf(path, sizeof(path), "%s/old/%020d-%020d.%s", root, 1, 1000000,
		 compressed ? "segz" : "seg");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);

	sp = spool__open(&o, err, sizeof(err));
	if (!sp)
		abort();
	for (size_t i = 0; i < spool__n_runs(sp); i++) {
		struct spool_run *run = spool__run(sp, i);
		struct spool_reader *r;
		struct spool_rec rec;
		uint64_t prev = 0;

		if (run->current)
			continue;
		r = spool_reader__new(sp, run, 1);
		while (spool_reader__next(r, &rec) == 1) {
			if (rec.first <= prev)
				abort();
			prev = rec.last;
		}
		if (!spool_reader__eof(r))
			abort();
		spool_reader__free(r);
		spool__remove_run(sp, run);
	}
	spool__close(sp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *out;
	size_t outlen;

	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0:
		check_scan(data + 1, size - 1);
		break;
	case 1:
		spool__inflate(data + 1, size - 1, &out, &outlen);
		if (out)
			check_scan(out, outlen);
		free(out);
		break;
	case 2:
		check_reader(data + 1, size - 1, false);
		break;
	default:
		check_reader(data + 1, size - 1, true);
		break;
	}
	return 0;
}
