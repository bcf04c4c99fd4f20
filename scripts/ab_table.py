"""The table of an A/B run (scripts/ab-bench.sh): each figure by side and round, then medians, ranges, ratios."""

import glob
import json
import re
import statistics
import sys

out = sys.argv[1]
rows = {}
for f in sorted(glob.glob(f"{out}/*.json")):
    bench, side, r = re.match(r".*/(\w+)-(\w+)-(\d+)\.json", f).groups()
    try:
        d = json.load(open(f))
    except Exception:
        continue
    rows.setdefault(bench, {}).setdefault(side, []).append((int(r), d))


def cpu(d):
    c = d.get("cpu_seconds")
    return c.get("all") if isinstance(c, dict) else c


for bench, sides in rows.items():
    keys = (
        ["hub_qps", "hub_p99_ms", "direct_qps", "direct_p99_ms", "errors"]
        if bench == "exchange"
        else ["seconds", "cpu", "peak_rss_mb", "eligible", "notices", "total_yen"]
    )
    print(f"## {bench}")
    print("| side | round | " + " | ".join(keys) + " |")
    for side in ("base", "main"):
        for r, d in sorted(sides.get(side, [])):
            vals = [cpu(d) if k == "cpu" else d.get(k) for k in keys]
            print(f"| {side} | {r} | " + " | ".join(str(v) for v in vals) + " |")
    for k in keys:
        b = [cpu(d) if k == "cpu" else d.get(k) for _, d in sides.get("base", [])]
        m = [cpu(d) if k == "cpu" else d.get(k) for _, d in sides.get("main", [])]
        if b and m and all(isinstance(x, (int, float)) for x in b + m) and statistics.median(b):
            print(
                f"{k}: base median {statistics.median(b)}, main median {statistics.median(m)}, ratio main/base {statistics.median(m) / statistics.median(b):.3f}, base range {min(b)}-{max(b)}, main range {min(m)}-{max(m)}"
            )
