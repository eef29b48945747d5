#!/bin/bash
# Proves scripts/check-layers.py catches what it is for: on a copy of the tree it must
# pass clean, then fail on each planted crossing with exactly one error, FILE:LINE and
# the whole message, and pass again on plants that are allowed.
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

# put FILE LINE-TEXT: a fresh copy, $prep run in it (when set), the line appended to FILE;
# prints the planted line's number
put() {
	local file=$1 text=$2
	fresh || return 1
	if [ -n "${prep:-}" ]; then
		(cd "$tmp/tree" && eval "$prep") || return 1
	fi
	mkdir -p "$(dirname "$tmp/tree/$file")"
	printf '%s\n' "$text" >>"$tmp/tree/$file"
	wc -l <"$tmp/tree/$file"
}

# plant FILE LINE-TEXT EXPECTED-MESSAGE-WITHOUT-FILE:LINE (prep=CMD plant ...: run CMD
# in the copy first)
plant() {
	local file=$1 text=$2 want=$3 line out rc expected
	line=$(put "$file" "$text") || { echo "FAIL: cannot copy the tree"; bad=1; return; }
	out=$("$check" --root "$tmp/tree" 2>&1)
	rc=$?
	expected="check-layers: $file:$line: $want
check-layers: 1 include(s) cross the one-way rules (docs/architecture.md)"
	if [ "$rc" -ne 1 ]; then
		echo "FAIL: $file += '$text': exit $rc, expected 1"
		echo "$out"
		bad=1
	elif [ "$out" != "$expected" ]; then
		echo "FAIL: $file += '$text': expected exactly:"
		echo "$expected"
		echo "got:"
		echo "$out"
		bad=1
	else
		echo "ok: $file:$line: $want"
	fi
}

# allowed FILE LINE-TEXT: the plant must pass
allowed() {
	local file=$1 text=$2 out
	put "$file" "$text" >/dev/null || { echo "FAIL: cannot copy the tree"; bad=1; return; }
	if out=$("$check" --root "$tmp/tree" 2>&1); then
		echo "ok: $file += '$text' passes"
	else
		echo "FAIL: $file += '$text' is allowed, but:"
		echo "$out"
		bad=1
	fi
}

fresh || exit 1
if ! out=$("$check" --root "$tmp/tree" 2>&1); then
	echo "FAIL: the unmodified copy does not pass:"
	echo "$out"
	exit 1
fi
echo "ok: the unmodified tree passes"

# ---- the table ------------------------------------------------------------------
plant user/policy/policy.c '#include "cli/commands.h"' \
	'policy must not include "cli/commands.h" (cli): rule policy -> base'
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
plant user/agent/agent.c '#include "collector/store.h"' \
	'agent must not include "collector/store.h" (collector): rule agent -> ABI, base, pipeline, policy, schema, sensor, transport'
plant user/report/model.c '#include "sensor/loader.h"' \
	'report must not include "sensor/loader.h" (sensor): rule report -> base, schema, transport'
plant user/report/html.c '#include "agent/agent.h"' \
	'report must not include "agent/agent.h" (agent): rule report -> base, schema, transport'
# draft judges policies with the kernel's decision (include/netmatch.h), never the sensor
plant user/draft/replay.c '#include "sensor/loader.h"' \
	'draft must not include "sensor/loader.h" (sensor): rule draft -> ABI, base, policy, schema, transport'
plant user/policy/netrule.c '#include "netmatch.h"' \
	'policy must not include "netmatch.h" (ABI): rule policy -> base'
plant user/draft/learn.c '#include "agent/agent.h"' \
	'draft must not include "agent/agent.h" (agent): rule draft -> ABI, base, policy, schema, transport'
plant user/cli/main.c '#include "sensor.skel.h"' \
	'cli must not include "sensor.skel.h" (skeleton): rule cli -> ABI, agent, base, collector, draft, pipeline, policy, report, schema, sensor, transport'
plant user/cli/cmd_agent.c '#include <bpf/libbpf.h>' \
	'cli must not include <bpf/libbpf.h> (libbpf): rule cli -> ABI, agent, base, collector, draft, pipeline, policy, report, schema, sensor, transport'
plant user/policy/policy.c '#include "nowhere.h"' \
	'"nowhere.h" is not a part, the ABI, the schema or the skeleton (write part/file.h)'

# ---- names that hide where they land ------------------------------------------------
plant user/collector/store.c '#include "transport/../sensor/loader.h"' \
	'"transport/../sensor/loader.h" uses "..", which hides the part it lands in: write "sensor/loader.h"'
plant user/policy/policy.h '#include "../cli/usage.h"' \
	'"../cli/usage.h" uses "..", which hides the part it lands in: write "cli/usage.h"'
plant user/agent/tally.c '#include <transport/../cli/usage.h>' \
	'<transport/../cli/usage.h> uses "..", which hides the part it lands in: write "cli/usage.h"'
plant user/base/clock.c '#include "../../include/sensor_abi.h"' \
	'"../../include/sensor_abi.h" climbs out of user/ with "..": include it by its own name'
plant user/transport/frame.c '#include "/usr/include/bpf/libbpf.h"' \
	'"/usr/include/bpf/libbpf.h" is an absolute path: write part/file.h'
# normalised before it is judged: the message names what it really is
plant user/collector/store.c '#include "policy/./policy.h"' \
	'collector must not include "policy/policy.h" (policy): rule collector -> base, schema, transport'
allowed user/pipeline/records.c '#include "policy//./policy.h"'
# a symlink inside a part is followed to where it lands
prep='ln -s ../sensor user/collector/alias' plant user/collector/store.c '#include "alias/loader.h"' \
	'collector must not include "alias/loader.h" (sensor): rule collector -> base, schema, transport'

# ---- the skeleton and libbpf: user/sensor/*.c only ------------------------------------
plant user/sensor/loader.h '#include "sensor.skel.h"' \
	'sensor header must not include "sensor.skel.h" (skeleton): only user/sensor/*.c may, as agent and cli include sensor headers (declare the struct instead)'
plant user/sensor/features.h '#include <bpf/libbpf.h>' \
	'sensor header must not include <bpf/libbpf.h> (libbpf): only user/sensor/*.c may, as agent and cli include sensor headers (declare the struct instead)'
allowed user/sensor/procscan.c '#include <bpf/libbpf.h>'
allowed user/draft/netdraft.c '#include "netmatch.h"'

# ---- private headers: their own part only ------------------------------------------
plant user/cli/cmd_collector.c '#include "collector/server_priv.h"' \
	'cli must not include "collector/server_priv.h": it is private to collector'
plant user/cli/main.c '#include "agent/agent_int.h"' \
	'cli must not include "agent/agent_int.h": it is private to agent'
plant user/agent/agent.c '#include "transport/spool_internal.h"' \
	'agent must not include "transport/spool_internal.h": it is private to transport'
allowed user/collector/tls.c '#include "collector/server_priv.h"'

# ---- #include MACRO -----------------------------------------------------------------
plant user/pipeline/records.c '#include BW_HEADER' \
	'#include BW_HEADER does not name a file ("file.h" or <file.h>): the check cannot see what it includes'
plant bpf/net.bpf.c '#include HDR(maps) /* why not */' \
	'#include HDR(maps) does not name a file ("file.h" or <file.h>): the check cannot see what it includes'

# ---- the kernel side ---------------------------------------------------------------
plant bpf/net.bpf.c '#include "../user/policy/policy.h"' \
	'bpf must not include "../user/policy/policy.h" (user/policy/policy.h): rule bpf -> bpf, include'
plant bpf/lib/maps.bpf.h '#include <transport/frame.h>' \
	'bpf must not include <transport/frame.h>: rule bpf -> bpf, include'
plant include/sensor_abi.h '#include "../user/base/clock.h"' \
	'include must not include "../user/base/clock.h" (user/base/clock.h): rule include -> include'

# a new part nobody gave a rule
fresh && mkdir -p "$tmp/tree/user/exporter" && echo 'int x;' >"$tmp/tree/user/exporter/x.c"
out=$("$check" --root "$tmp/tree" 2>&1)
if [ $? -eq 1 ] && grep -qxF 'check-layers: user/exporter/: a part with no rule in scripts/check-layers.py (and docs/architecture.md): say what it may include' <<<"$out"; then
	echo "ok: user/exporter/: a part with no rule"
else
	echo "FAIL: a part with no rule passed:"
	echo "$out"
	bad=1
fi

exit "$bad"
