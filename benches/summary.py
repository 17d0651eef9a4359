#!/usr/bin/env python3
"""Prints the medians of the last `cargo bench --bench verify` as markdown tables (for
BENCHMARKS.md): per benchmark, the median time per iteration, the min-max over criterion's
samples, and the throughput at the median where the group set one.

    python3 benches/summary.py [target/criterion]
"""
import json
import sys
from pathlib import Path


def unit(ns):
    for scale, name in ((1e6, "ms"), (1e3, "µs"), (1, "ns")):
        if ns >= scale:
            return f"{ns / scale:.3g} {name}" if ns / scale < 100 else f"{ns / scale:.0f} {name}"
    return f"{ns:.3g} ns"


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
    rows = {}
    for bench in sorted(root.rglob("new/benchmark.json")):
        meta = json.loads(bench.read_text())
        new = bench.parent
        median = json.loads((new / "estimates.json").read_text())["median"]["point_estimate"]
        sample = json.loads((new / "sample.json").read_text())
        per_iter = [t / n for t, n in zip(sample["times"], sample["iters"])]
        throughput = meta.get("throughput") or {}
        size = throughput.get("Bytes") or throughput.get("BytesDecimal")
        rate = f"{size / median * 1e9 / 2**20:,.0f} MiB/s" if size else ""
        group = meta["group_id"]
        rows.setdefault(group, []).append((meta.get("function_id") or "", meta.get("value_str") or "",
                                           unit(median), f"{unit(min(per_iter))} – {unit(max(per_iter))}", rate))
    def order(item):
        value = item[1]
        sizes = {"example": 0, "0B": 1, "1KiB": 1 << 10, "64KiB": 1 << 16, "1MiB": 1 << 20}
        return (item[0], sizes.get(value, int(value) if value.isdigit() else 0), value)

    for group, items in rows.items():
        items.sort(key=order)
        print(f"\n#### {group}\n\n| bench | input | median | min – max | throughput |\n|---|---|---|---|---|")
        for function, value, median, spread, rate in items:
            print(f"| {function} | {value} | {median} | {spread} | {rate} |")


if __name__ == "__main__":
    main()
