"""ClickHouse (chDB) against NumPy brute force, side by side in one run.

    python bench/clickhouse.py              # 10M random 64-bit hashes
    python bench/clickhouse.py --rows 1000000

Measures: columnar ingest rate into chDB (`add_words`, keys given as a Python list, including
the pre-filter rows its materialized view writes); one range query over the whole table by full
scan and with the multi-index pre-filter, against NumPy brute force (`np.bitwise_count` on the
same uint64 column), interleaved over rounds, medians; the rows each plan reads; and a batch of
1,000 queries answered by one statement. The tables are merged (OPTIMIZE ... FINAL, timed apart)
before the queries, as background merges would leave them; the load average is printed because
this machine is shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

from lookalike.hash import Hash
from lookalike.index.clickhouse import ClickHouseIndex


def brute_force(words: np.ndarray, query: int, radius: int) -> np.ndarray:
    distances = np.bitwise_count(words ^ np.uint64(query))
    return np.flatnonzero(distances <= radius)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--radii", default="3,6,10")
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    words = rng.integers(0, 2**64, size=args.rows, dtype=np.uint64)
    keys = [f"img/{i:09d}.jpg" for i in range(args.rows)]
    with tempfile.TemporaryDirectory() as folder:
        index = ClickHouseIndex.open_chdb(f"chdb://{folder}/ch")
        # repeated identical predicates would be answered from ClickHouse's condition cache
        index.connection.execute("SET use_query_condition_cache = 0")
        started = time.perf_counter()
        index.add_words(keys, "phash", words.reshape(-1, 1), 64)
        ingest = time.perf_counter() - started
        print(f"rows: {args.rows:,}  (chDB engine {'.'.join(map(str, index.connection.version))})")
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(
            f"ingest (add_words, Arrow stream, incl. pre-filter view): {args.rows / ingest:,.0f} hashes/s"
            f" ({ingest:.1f} s)"
        )
        started = time.perf_counter()
        for table in (
            index.tables.entries(),
            index.tables.hashes("phash"),
            index.tables.prefilter("phash", index.prefilter_bits("phash"), True),
        ):
            index.connection.execute(f"OPTIMIZE TABLE {table} FINAL")
        print(
            f"merging the parts afterwards (OPTIMIZE FINAL, not in the rate):"
            f" {time.perf_counter() - started:.1f} s"
        )
        print()
        print(
            "| radius | NumPy brute force | chDB full scan | ratio | chDB pre-filter | ratio"
            " | rows read scan / pre-filter |"
        )
        print("|---|---|---|---|---|---|---|")
        for radius in [int(r) for r in args.radii.split(",")]:
            timings: dict[str, list[float]] = {"numpy": [], "scan": [], "pre": []}
            rows_read = {"scan": 0, "pre": 0}
            for round_number in range(args.rounds):
                target = int(words[(round_number * 7919) % args.rows])
                query_value = target ^ ((1 << radius) - 1 if radius else 0)  # exactly `radius` bits away
                query = Hash(query_value, 64)
                started = time.perf_counter()
                expected = brute_force(words, query_value, radius)
                timings["numpy"].append(time.perf_counter() - started)
                for plan, forced in (("scan", "scan"), ("pre", "prefilter")):
                    index.plan = forced
                    started = time.perf_counter()
                    found = index.range_search(query, "phash", radius)
                    timings[plan].append(time.perf_counter() - started)
                    rows_read[plan] = index.connection.last_rows_read
                    if sorted(m.key for m in found) != sorted(keys[i] for i in expected):
                        sys.exit(f"mismatch at radius {radius} ({plan})")
            numpy_ms, scan_ms, pre_ms = (
                1000 * statistics.median(timings[p]) for p in ("numpy", "scan", "pre")
            )
            print(
                f"| {radius} | {numpy_ms:.1f} ms | {scan_ms:.1f} ms | {scan_ms / numpy_ms:.2f}x |"
                f" {pre_ms:.1f} ms | {pre_ms / numpy_ms:.2f}x |"
                f" {rows_read['scan']:,} / {rows_read['pre']:,} |"
            )
        print()
        index.plan = "auto"
        batch = [Hash(int(words[(i * 104729) % args.rows]) ^ 0b101, 64) for i in range(args.batch)]
        for radius in (3, 10):
            started = time.perf_counter()
            answers = index.range_search(batch, "phash", radius)
            elapsed = time.perf_counter() - started
            assert all(answers), "every query has its planted match"
            started = time.perf_counter()
            for query in batch[:50]:
                brute_force(words, int(query), radius)
            numpy_each = (time.perf_counter() - started) / 50
            print(
                f"batch of {args.batch} queries, r={radius}, one statement (pre-filter):"
                f" {elapsed * 1000:.0f} ms ({elapsed / args.batch * 1000:.2f} ms/query;"
                f" NumPy brute force {numpy_each * 1000:.1f} ms/query)"
            )
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        index.close()


if __name__ == "__main__":
    main()
