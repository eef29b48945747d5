/* Redaction of secrets in the argv the collector stores (docs/collector.md, "Redaction").
 * CI command lines carry tokens (`git clone https://x:ghp_...@github.com/...`,
 * `curl -H "Authorization: Bearer ..."`, `--password=...`, `GITHUB_TOKEN=...`), and the
 * database is read by people who should not get them. Applied to Process.argv and
 * RunStart.argv of every event before it is stored; each secret becomes [REDACTED].
 *
 * The built-in rules are plain C scans, not regular expressions: they run on every
 * argv string of every event (a compile line has ~10), and glibc's regexec would cost
 * more than the rest of ingest. Extra rules (--redact) are POSIX extended regular
 * expressions and cost what they cost. */
#ifndef BUILDWARDEN_COLLECTOR_REDACT_H
#define BUILDWARDEN_COLLECTOR_REDACT_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include "collector/slab.h"

#define REDACT_MARK "[REDACTED]"
#define REDACT_MAX_RULES 32

struct redact {
	bool defaults;            /* the built-in rules */
	regex_t re[REDACT_MAX_RULES];
	size_t n_re;
};

/* Compiles patterns (POSIX ERE); defaults turns the built-in rules on. 0, or -EINVAL
 * with the bad pattern and regerror's reason in err (nothing left allocated). */
int redact__init(struct redact *r, bool defaults, const char *const *patterns, size_t n,
		 char *err, size_t errlen);
void redact__free(struct redact *r);
/* Any rule at all? */
bool redact__active(const struct redact *r);
/* NULL when s holds nothing to redact; else its redacted copy, allocated from mem
 * (*nomem set when that failed). A regex rule with a parenthesised group redacts what
 * the first group matched, else the whole match. */
const char *redact__string(const struct redact *r, const char *s, struct slab *mem, bool *nomem);

#endif /* BUILDWARDEN_COLLECTOR_REDACT_H */
