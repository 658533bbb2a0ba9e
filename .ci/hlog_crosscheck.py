"""Reads a pollwatch interval log (report.hlog) with the Python `hdrhistogram` package and
checks that every histogram matches what pollwatch's own reader says
(`pollwatch intervals --json`): the same site (tags percent-decoded with the standard
library), start, count, min, max, every recorded value and its count, and p50/p90/p99/p99.9.

Percentiles: Python's `get_value_at_percentile` picks rank round(p * count), the Rust
`hdrhistogram` crate picks rank ceil(p * count). Where the two ranks land in different buckets
the values differ; such a value is accepted only if Python's histogram, asked for the Rust rank,
gives exactly the Rust value, and these are counted and printed.

usage: python3 hlog_crosscheck.py report.hlog rust.json
"""

import json
import math
import sys
import urllib.parse

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

QUANTILES = [("p50_ns", 50.0), ("p90_ns", 90.0), ("p99_ns", 99.0), ("p999_ns", 99.9)]


def value_at_rank(h, rank):
    """The highest equivalent value of the bucket holding the `rank`th value (1-based)."""
    total = 0
    for item in h.get_recorded_iterator():
        total += item.count_at_value_iterated_to
        if total >= rank:
            return h.get_highest_equivalent_value(item.value_iterated_to)
    return 0


def main(log_path, rust_path):
    with open(rust_path, encoding="utf-8") as f:
        rust = json.load(f)
    reader = HistogramLogReader(log_path, HdrHistogram(1000, 3_600_000_000_000, 3))
    problems = []
    python = []
    while True:
        h = reader.get_next_interval_histogram()
        if h is None:
            break
        python.append(h)
    if len(python) != len(rust):
        problems.append(f"Python read {len(python)} histograms, Rust {len(rust)}")
    start_ms = reader.get_start_time_sec() * 1000.0
    rank_rounding = 0
    for n, (h, r) in enumerate(zip(python, rust)):
        where = f"histogram {n + 1} ({r['site'] or 'all sites'} at {r['start_s']:.3f}s)"
        tag = h.get_tag()
        site = urllib.parse.unquote(tag, errors="strict") if tag else None
        if site != r["site"]:
            problems.append(f"{where}: Python site {site!r}")
        start_s = (h.get_start_time_stamp() - start_ms) / 1000.0
        if abs(start_s - r["start_s"]) > 0.0015:
            problems.append(f"{where}: Python start {start_s:.3f}s")
        count = h.get_total_count()
        if count != r["count"]:
            problems.append(f"{where}: Python count {count}, Rust {r['count']}")
        values = [
            [item.value_iterated_to, item.count_at_value_iterated_to]
            for item in h.get_recorded_iterator()
        ]
        rust_values = [[h.get_highest_equivalent_value(v), c] for v, c in r["values"]]
        if values != rust_values:
            problems.append(f"{where}: recorded values differ")
        if count == 0:
            continue
        if h.get_max_value() != h.get_highest_equivalent_value(r["max_ns"]):
            problems.append(f"{where}: Python max {h.get_max_value()}, Rust {r['max_ns']}")
        if h.get_min_value() != h.get_lowest_equivalent_value(r["min_ns"]):
            problems.append(f"{where}: Python min {h.get_min_value()}, Rust {r['min_ns']}")
        for key, percentile in QUANTILES:
            py = h.get_value_at_percentile(percentile)
            if py == r[key]:
                continue
            rust_rank = max(1, math.ceil(percentile / 100.0 * count))
            if value_at_rank(h, rust_rank) == r[key]:
                rank_rounding += 1
            else:
                problems.append(f"{where}: {key} Python {py}, Rust {r[key]}")
    tagged = sum(1 for r in rust if r["site"] is not None)
    total = sum(r["count"] for r in rust if r["site"] is None)
    print(
        f"{log_path}: {len(python)} histograms ({tagged} per site, {len(python) - tagged} all-sites) "
        f"holding {total} polls read by Python hdrhistogram"
    )
    if tagged == 0 or total == 0:
        problems.append("the log has no tagged histogram or no polls: nothing was checked")
    if not problems:
        print(
            f"  same sites, starts, counts, min, max and recorded values; percentiles identical "
            f"except {rank_rounding} that differ only by the rank rule (round vs ceil)"
        )
    for p in problems[:20]:
        print(f"MISMATCH {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
