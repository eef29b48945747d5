#!/usr/bin/env python3
"""Summarise `buildwarden decode` output (JSON lines) for bench/run.sh.

Prints one line:  events=N violations=V drops=D bodies=exec:3,file:2 dropfields=...
`drops` is taken from the last runEnd event if there is one, else from the last
stats event: the sum of every numeric field whose name contains "drop" or
"lost" (counters in those events are cumulative per run). It is "?" when the
stream has neither event, so a missing counter is never shown as zero.
"""
import json
import re
import sys

DROPISH = re.compile(r"drop|lost", re.I)


def numeric(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str) and re.fullmatch(r"-?\d+", v):
        return int(v)
    return None


def drop_fields(obj, prefix=""):
    """Yield (path, value) for every drop-ish numeric field under obj."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            p = f"{prefix}.{k}" if prefix else k
            n = numeric(v)
            if n is not None and DROPISH.search(k):
                yield p, n
            elif isinstance(v, (dict, list)):
                # a list/dict under a drop-ish key (e.g. dropsPerCpu: [..])
                if DROPISH.search(k):
                    for sub_p, sub_v in flatten(v, p):
                        yield sub_p, sub_v
                else:
                    yield from drop_fields(v, p)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from drop_fields(v, f"{prefix}[{i}]")


def flatten(obj, prefix):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from flatten(v, f"{prefix}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from flatten(v, f"{prefix}[{i}]")
    else:
        n = numeric(obj)
        if n is not None:
            yield prefix, n


def main():
    src = open(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] != "-" else sys.stdin
    events = violations = bad = 0
    bodies = {}
    last_stats = last_end = None
    for line in src:
        line = line.strip()
        if not line:
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if not isinstance(ev, dict):
            continue
        events += 1
        verdict = ev.get("verdict") or {}
        if isinstance(verdict, dict) and verdict.get("violation") is True:
            violations += 1
        for body in ("exec", "file", "connect", "stats", "runStart", "runEnd"):
            if body in ev:
                bodies[body] = bodies.get(body, 0) + 1
        if "runEnd" in ev:
            last_end = ev
        if "stats" in ev:
            last_stats = ev
    ref = last_end if last_end is not None else last_stats
    if ref is None:
        drops, fields = "?", ""
    else:
        f = list(drop_fields(ref))
        drops = sum(v for _, v in f)
        fields = ",".join(f"{p}={v}" for p, v in f if v)
    print(
        f"events={events} violations={violations} drops={drops}"
        f" bodies={','.join(f'{k}:{v}' for k, v in sorted(bodies.items())) or '-'}"
        f" dropfields={fields or '-'}" + (f" unparsable_lines={bad}" if bad else "")
    )


if __name__ == "__main__":
    main()
