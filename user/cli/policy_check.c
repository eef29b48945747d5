/* buildwarden policy check [--offline] [--strict] [--set VAR=VALUE]... FILE: the policy
 * as the agent would load it (or, --offline, its syntax, types and semantics alone, for
 * a pull request's CI where the paths do not exist), with its warnings. */
#include <stdio.h>
#include <string.h>

#include "cli/exitcodes.h"
#include "cli/help.h"
#include "cli/policy_check.h"
#include "cli/usage.h"
#include "policy/policy.h"

#define POLICY_CHECK_MAX_SETS 64

static bool set__valid(const char *s)
{
	const char *eq = strchr(s, '=');

	if (!eq || eq == s)
		return false;
	for (const char *q = s; q < eq; q++)
		if (!(*q == '_' || (*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') ||
		      (q > s && *q >= '0' && *q <= '9')))
			return false;
	return true;
}

int policy_check__main(int argc, char **argv)
{
	const char *sets[POLICY_CHECK_MAX_SETS];
	struct bw_policy_opts opts = { .use_env = true, .vars = sets };
	const char *usage = help__text("policy"), *file = NULL;
	struct bw_policy *p = NULL;
	struct bw_diags diags;
	size_t warnings = 0;
	bool strict = false;
	int err;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--offline")) {
			opts.flags |= BW_POLICY_NO_FS;
		} else if (!strcmp(a, "--strict")) {
			strict = true;
		} else if (!strcmp(a, "--set") || !strncmp(a, "--set=", 6)) {
			const char *v = a[5] == '=' ? a + 6 : (i + 1 < argc ? argv[++i] : NULL);

			if (!v || !set__valid(v))
				return usage__error("buildwarden policy check", usage,
						    "--set takes VAR=VALUE (VAR: letters, digits, _)");
			if (opts.n_vars >= POLICY_CHECK_MAX_SETS)
				return usage__error("buildwarden policy check", usage,
						    "at most 64 --set");
			sets[opts.n_vars++] = v;
		} else if (a[0] == '-' && a[1]) {
			return usage__error("buildwarden policy check", usage, "unknown option");
		} else if (file) {
			return usage__error("buildwarden policy check", usage, "one FILE only");
		} else {
			file = a;
		}
	}
	if (!file)
		return usage__error("buildwarden policy check", usage, "expected: policy check FILE (options: --offline, --strict, --set VAR=VALUE)");

	memset(&diags, 0, sizeof(diags));
	err = policy__load_file_opts(file, &opts, &p, &diags, NULL, NULL);
	policy__print_diags(&diags, file, stderr);
	for (size_t i = 0; i < diags.n; i++)
		warnings += diags.items[i].warning;
	if (err) {
		if (!diags.n)
			fprintf(stderr, "%s: error: cannot load the policy: %s\n", file, strerror(-err));
		return EXIT_POLICY;
	}
	if (strict && (warnings || diags.dropped)) {
		fprintf(stderr, "%s: %zu warning%s, refused with --strict\n", file, warnings,
			warnings == 1 ? "" : "s");
		policy__free(p);
		return EXIT_POLICY;
	}
	printf("%s: ok%s (%zu protected trees, %zu exec deny and %zu exec allow trees, %zu allow, "
	       "%zu allow by name and %zu deny network rules, mode %s; %zu warning%s)\n",
	       file, opts.flags & BW_POLICY_NO_FS ? " offline" : "", p->n_protect, p->n_exec_deny,
	       p->n_exec_allow, p->n_net_allow, p->n_net_allow_names, p->n_net_deny,
	       p->mode == BW_MODE_ENFORCE ? "enforce" : "audit", warnings,
	       warnings == 1 ? "" : "s");
	policy__free(p);
	return 0;
}
