// SPDX-License-Identifier: GPL-2.0
/* A run's meta file: a few "key value" lines, replaced whole through a rename. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hex.h"
#include "transport/spool_internal.h"

#define SPOOL_META_MAX 4096

int spool__write_meta(int dfd, const struct spool_meta *m, bool sync)
{
	char buf[SPOOL_META_MAX], hex[2 * CHAIN_LEN + 1];
	int n;

	hex__encode(m->last_chain, CHAIN_LEN, hex);
	n = snprintf(buf, sizeof(buf),
		     "buildwarden-spool 1\nrun_id %s\nhost %s\nagent_id %s\nkeyed %d\n"
		     "created_ns %" PRIu64 "\nlast_seq %" PRIu64 "\nlast_chain %s\n",
		     m->run_id, m->host, m->agent_id, m->keyed ? 1 : 0, m->created_ns,
		     m->last_seq, hex);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -ENAMETOOLONG;
	return spool__replace_file(dfd, "meta.tmp", "meta", buf, (size_t)n, sync);
}

static bool spool__meta_str(const char *line, const char *key, char *out, size_t outlen)
{
	size_t k = strlen(key), n;

	if (strncmp(line, key, k) != 0 || line[k] != ' ')
		return false;
	n = strlen(line + k + 1);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, line + k + 1, n);
	out[n] = '\0';
	return true;
}

int spool__read_meta(int dfd, struct spool_meta *m)
{
	char val[2 * CHAIN_LEN + 8];
	uint8_t *buf;
	size_t len;
	char *text, *line, *save = NULL;
	bool magic = false;
	int err;

	memset(m, 0, sizeof(*m));
	err = spool__read_file(dfd, "meta", SPOOL_META_MAX, &buf, &len);
	if (err) {
		free(buf);
		return err;
	}
	text = malloc(len + 1);
	if (!text) {
		free(buf);
		return -ENOMEM;
	}
	memcpy(text, buf, len);
	text[len] = '\0';
	free(buf);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strcmp(line, "buildwarden-spool 1") == 0) {
			magic = true;
		} else if (spool__meta_str(line, "run_id", m->run_id, sizeof(m->run_id)) ||
			   spool__meta_str(line, "host", m->host, sizeof(m->host)) ||
			   spool__meta_str(line, "agent_id", m->agent_id, sizeof(m->agent_id))) {
			continue;
		} else if (spool__meta_str(line, "keyed", val, sizeof(val))) {
			m->keyed = strcmp(val, "1") == 0;
		} else if (spool__meta_str(line, "created_ns", val, sizeof(val))) {
			m->created_ns = strtoull(val, NULL, 10);
		} else if (spool__meta_str(line, "last_seq", val, sizeof(val))) {
			m->last_seq = strtoull(val, NULL, 10);
		} else if (spool__meta_str(line, "last_chain", val, sizeof(val))) {
			for (int i = 0; i < CHAIN_LEN && strlen(val) == 2 * CHAIN_LEN; i++) {
				unsigned b;

				if (sscanf(val + 2 * i, "%2x", &b) == 1)
					m->last_chain[i] = (uint8_t)b;
			}
		}
	}
	free(text);
	if (!magic || !spool__valid_run_id(m->run_id))
		return -EBADMSG;
	return 0;
}
