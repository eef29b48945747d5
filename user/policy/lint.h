/* Warnings for a policy that loads but does not do what its author likely meant:
 * dangerous (a hole left open) or dead (a rule that never decides anything). */
#ifndef BUILDWARDEN_POLICY_LINT_H
#define BUILDWARDEN_POLICY_LINT_H

#include "policy/policy.h"

/* Appends one warning per finding to d (items with .warning set). */
void policy_lint__run(const struct bw_policy *p, struct bw_diags *d);

#endif
