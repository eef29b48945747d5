#!/bin/bash
# Proves scripts/check-layers.py catches what it is for: on a copy of the tree it must
# pass clean, then fail on each planted crossing, naming FILE:LINE and the rule.
# Exit 0 when every case behaves, 1 otherwise.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
check="$top/scripts/check-layers.py"
tmp=$(mktemp -d /tmp/bw-layers.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
bad=0

fresh() {
	rm -rf "$tmp/tree" && mkdir -p "$tmp/tree" &&
		cp -a "$top/user" "$top/bpf" "$top/include" "$tmp/tree/"
}

# plant FILE LINE-TEXT EXPECTED-MESSAGE-WITHOUT-FILE:LINE
plant() {
	local file=$1 text=$2 want=$3 line out rc
	fresh || { echo "FAIL: cannot copy the tree"; bad=1; return; }
	mkdir -p "$(dirname "$tmp/tree/$file")"
	printf '%s\n' "$text" >>"$tmp/tree/$file"
	line=$(wc -l <"$tmp/tree/$file")
	out=$("$check" --root "$tmp/tree" 2>&1)
	rc=$?
	if [ "$rc" -ne 1 ]; then
		echo "FAIL: $file += '$text': exit $rc, expected 1"
		bad=1
	elif ! grep -qF -- "$file:$line: $want" <<<"$out"; then
		echo "FAIL: $file += '$text': expected \"$file:$line: $want\" in:"
		echo "$out"
		bad=1
	else
		echo "ok: $file:$line: $want"
	fi
}

fresh || exit 1
if ! out=$("$check" --root "$tmp/tree" 2>&1); then
	echo "FAIL: the unmodified copy does not pass:"
	echo "$out"
	exit 1
fi
echo "ok: the unmodified tree passes"

plant user/policy/policy.c '#include "cli/agent.h"' \
	'policy must not include "cli/agent.h" (cli): rule policy -> base'
plant user/policy/policy.h '#include "../cli/usage.h"' \
	'policy must not include "../cli/usage.h" (cli): rule policy -> base'
plant user/base/clock.c '#include <policy/policy.h>' \
	'base must not include <policy/policy.h> (policy): rule base -> nothing'
plant user/collector/store.c '#include "sensor.skel.h"' \
	'collector must not include "sensor.skel.h" (skeleton): rule collector -> base, schema, transport'
plant user/transport/frame.c '#include "sensor_abi.h"' \
	'transport must not include "sensor_abi.h" (ABI): rule transport -> base, schema'
plant user/transport/frame.c '#include <bpf/libbpf.h>' \
	'transport must not include <bpf/libbpf.h> (libbpf): rule transport -> base, schema'
plant user/pipeline/records.c '#include "sensor/loader.h"' \
	'pipeline must not include "sensor/loader.h" (sensor): rule pipeline -> ABI, base, policy, schema'
plant user/sensor/loader.c '#include "pipeline/records.h"' \
	'sensor must not include "pipeline/records.h" (pipeline): rule sensor -> ABI, base, libbpf, policy, skeleton'
plant user/policy/policy.c '#include "nowhere.h"' \
	'"nowhere.h" is not a part, the ABI, the schema or the skeleton'
plant bpf/net.bpf.c '#include "../user/policy/policy.h"' \
	'bpf must not include "../user/policy/policy.h" (user/policy/policy.h): rule bpf -> bpf, include'
plant bpf/lib/maps.bpf.h '#include <transport/frame.h>' \
	'bpf must not include <transport/frame.h>: rule bpf -> bpf, include'
plant include/sensor_abi.h '#include "../user/base/clock.h"' \
	'include must not include "../user/base/clock.h" (user/base/clock.h): rule include -> include'

# a new part nobody gave a rule
fresh && mkdir -p "$tmp/tree/user/exporter" && echo 'int x;' >"$tmp/tree/user/exporter/x.c"
out=$("$check" --root "$tmp/tree" 2>&1)
if [ $? -eq 1 ] && grep -qF 'user/exporter/: a part with no rule' <<<"$out"; then
	echo "ok: user/exporter/: a part with no rule"
else
	echo "FAIL: a part with no rule passed:"
	echo "$out"
	bad=1
fi

exit "$bad"
