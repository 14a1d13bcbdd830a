"""The `lookalike hash` and `lookalike compare` commands, run as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lookalike
from conftest import COMMITTED_PHOTOS


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lookalike", *args], capture_output=True, text=True, timeout=120
    )


def test_hash_json_lines_match_the_python_api(tmp_path: Path) -> None:
    photos = [str(p) for p in COMMITTED_PHOTOS[:3]]
    done = run("hash", *photos, "--hashes", "ahash,colorhash,phash:16", "--json", "--workers", "1")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["path"] for line in lines] == photos
    for line in lines:
        expected = lookalike.hash_file(line["path"], ["ahash", "colorhash", "phash:16"])
        assert line["hashes"] == {name: str(value) for name, value in expected.items()}


def test_hash_reports_failures_per_file_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_text("hello")
    done = run("hash", str(COMMITTED_PHOTOS[0]), str(bad), str(tmp_path / "gone.png"), "--json")
    assert done.returncode == 1
    records = {r["path"]: r for r in map(json.loads, done.stdout.splitlines())}
    assert "hashes" in records[str(COMMITTED_PHOTOS[0])]
    assert "error" in records[str(bad)] and "error" in records[str(tmp_path / "gone.png")]
    assert "Traceback" not in done.stderr
    assert str(bad) in done.stderr


def test_compare_prints_seed_table_with_sum(tmp_path: Path) -> None:
    source, other = COMMITTED_PHOTOS[0], COMMITTED_PHOTOS[1]
    done = run("compare", str(source), str(source), str(other), "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert rows[0]["distances"] == {"ahash": 0, "colorhash": 0} and rows[0]["total"] == 0
    a, b = lookalike.hash_file(source), lookalike.hash_file(other)
    expected = {"ahash": a["ahash"] - b["ahash"], "colorhash": a["colorhash"] - b["colorhash"]}
    assert rows[1]["distances"] == expected
    assert rows[1]["total"] == sum(expected.values())
    table = run("compare", str(source), str(other))
    assert table.returncode == 0 and "total" in table.stdout


def test_usage_error_exits_2() -> None:
    done = run("hash", "--hashes", "nosuchhash", str(COMMITTED_PHOTOS[0]))
    assert done.returncode == 2
    assert "unknown hash algorithm" in done.stderr and "Traceback" not in done.stderr
    assert run("compare").returncode == 2
