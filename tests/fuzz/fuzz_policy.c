/* libFuzzer target for the policy parser: any bytes must give either a policy or
 * diagnostics, never a crash, a leak or unbounded work. No file system access, so
 * runs are reproducible and the fuzzer cannot wander into /proc. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* ${VAR}, $VAR and ~ expansion runs too: set and unset variables, one long value */
	static char big[5000];
	static const char *vars[] = { "WS=/w", "HOME=/home/u", "EMPTY=", "BIG=", big };
	struct bw_policy_opts o = { .flags = BW_POLICY_NO_FS, .vars = vars, .n_vars = 5 };
	struct bw_policy *p = NULL;
	struct bw_diags d;
	const char *rule;
	uint8_t addr[16] = { 0 };
	int rc;

	if (!big[0]) {
		memcpy(big, "LONG=", 5);
		memset(big + 5, 'x', sizeof(big) - 6);
	}
	rc = policy__parse_opts((const char *)data, size, "fuzz.yaml", "/base", &o, &p, &d);
	if (rc == 0) {
		/* loaded: warnings only, never an error */
		if (!p || d.n_errors)
			__builtin_trap();
		for (size_t i = 0; i < d.n; i++)
			if (!d.items[i].warning)
				__builtin_trap();
		/* exercise the verdict on an address taken from the input */
		memcpy(addr, data, size < sizeof(addr) ? size : sizeof(addr));
		policy__net_verdict(p, addr, size > 1 ? (uint16_t)(data[0] << 8 | data[1]) : 0,
				    &rule);
		policy__free(p);
	} else {
		if (p || (!d.n && rc == -EINVAL))
			__builtin_trap();
		for (size_t i = 0; i < d.n; i++)
			if (!memchr(d.items[i].msg, '\0', sizeof(d.items[i].msg)))
				__builtin_trap();
	}
	return 0;
}
