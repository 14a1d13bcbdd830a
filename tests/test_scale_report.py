"""The scale report quotes medians over rounds and each job's time as a ratio to ours on SQLite."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lookalike.benchmarks.scale_report import summarise, write_report


def _ours(seconds: float, round_number: int) -> dict[str, Any]:
    return {
        "backend": "sqlite",
        "size": 10_000,
        "planted": 3420,
        "round": round_number,
        "dedupe_seconds": seconds,
        "add_seconds": 1.0,
        "add_rates": [5000.0 + round_number],
        "peak_mb": 300.0,
        "match_p50_ms": 2.0,
        "match_p95_ms": 5.0,
        "first_query_seconds": 0.1,
        "search_memory_mb": 30.0,
        "truth_pairs": 100,
        "truth_found": 60,
        "outside_planted": 0,
        "log": ["add 0-10,000"],
    }


def _peer(seconds: float, round_number: int) -> dict[str, Any]:
    return {
        "backend": "faiss-flat",
        "peer": "faiss-flat",
        "hash": "phash_eq",
        "bits": 256,
        "radius": 56,
        "size": 10_000,
        "planted": 3420,
        "round": round_number,
        "dedupe_seconds": seconds,
        "build_seconds": 0.1,
        "search_seconds": seconds - 0.1,
        "estimated": round_number == 1,
        "rows_answered": 10_000,
        "peak_mb": 200.0,
        "baseline_mb": 150.0,
        "index_mb": 50.0,
        "truth_pairs": 100,
        "truth_found": 40,
        "outside_planted": 3,
    }


RESULTS = [_ours(2.0, 0), _peer(9.0, 0), _ours(4.0, 1), _peer(30.0, 1), _ours(3.0, 2), _peer(12.0, 2)]


def test_medians_over_rounds_and_ratio_to_ours_on_sqlite() -> None:
    summary = summarise(RESULTS)

    ours, peer = summary[10_000]["sqlite"], summary[10_000]["faiss-flat"]
    assert ours["dedupe_seconds"] == 3.0 and ours["rounds"] == 3
    assert ours["add_items_per_second"] == 5001.0
    assert peer["dedupe_seconds"] == 12.0
    assert peer["time_vs_ours"] == 4.0
    assert peer["estimated"]  # one round was extrapolated: the median is marked so


def test_report_files_carry_the_table_the_command_and_every_run(tmp_path: Path) -> None:
    write_report(RESULTS, tmp_path, "python bench/scale.py --sizes 10000")

    text = (tmp_path / "scale.md").read_text()
    assert "python bench/scale.py --sizes 10000" in text
    assert "## 10,000 images" in text
    peer_row = next(line for line in text.splitlines() if line.startswith("| FAISS IndexBinaryFlat"))
    assert "| 3 | 12.0 s est. | 4.00 | 40 (40.0%) | 3 | 200 MB | 50 MB |" in peer_row
    data = json.loads((tmp_path / "scale.json").read_text())
    assert len(data["runs"]) == 6 and "log" not in data["runs"][0]
    assert data["medians"]["10000"]["sqlite"]["dedupe_seconds"] == 3.0
