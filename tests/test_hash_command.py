"""`lookalike hash` over folders: output files, progress and summary on stderr, the cache."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import lookalike
from conftest import COMMITTED_PHOTOS


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "lookalike",
            "hash",
            *args,
            *([] if "--workers" in args else ["--workers", "1"]),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **(env or {}), "COLUMNS": "200"},
    )


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A small photo library: nested folders, one broken file, one file that is not an image."""
    root = tmp_path / "library"
    (root / "2024" / "summer").mkdir(parents=True)
    for index, source in enumerate(COMMITTED_PHOTOS[:6]):
        target = root / ("2024/summer" if index % 2 else "2024") / source.name
        shutil.copy2(source, target)
    (root / "broken.jpg").write_bytes(COMMITTED_PHOTOS[1].read_bytes()[:500])
    (root / "notes.txt").write_text("not an image, not even named like one")
    return root


def expected_rows(root: Path, hashes: list[str]) -> dict[str, dict[str, str]]:
    rows = {}
    for path in sorted(root.rglob("*")):
        if path.suffix in (".jpg", ".png", ".webp") and path.name != "broken.jpg":
            result = lookalike.hash_file(path, hashes)
            rows[str(path)] = {name: str(value) for name, value in result.items()}
    return rows


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_out_file_holds_every_hashed_image(library: Path, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"hashes{suffix}"
    done = run(str(library), "--recursive", "--out", str(out), "--hashes", "ahash,phash", "--no-cache")
    assert done.returncode == 1  # broken.jpg failed
    if suffix == ".jsonl":
        records = [json.loads(line) for line in out.read_text().splitlines()]
    elif suffix == ".csv":
        with open(out, newline="") as handle:
            records = list(csv.DictReader(handle))
    else:
        import pyarrow.parquet as pq

        records = pq.read_table(out).to_pylist()
    expected = expected_rows(library, ["ahash", "phash"])
    assert {r["path"]: {"ahash": r["ahash"], "phash": r["phash"]} for r in records} == expected
    for record in records:
        assert len(record["sha256"]) == 64 and int(record["width"]) > 0 and int(record["bytes"]) > 0


def test_without_recursive_only_the_top_folder_is_hashed(library: Path) -> None:
    done = run(str(library), "--json", "--no-cache")
    paths = {json.loads(line)["path"] for line in done.stdout.splitlines()}
    assert paths == {str(p) for p in library.glob("*.*") if p.suffix != ".txt"}


def test_progress_and_summary_go_to_stderr_with_reasons(library: Path) -> None:
    done = run(str(library), "-r", "--json", "--workers", "2", "--no-cache")
    assert done.returncode == 1
    assert "files/s" in done.stderr and "ETA" in done.stderr
    assert "hashed 6, cached 0, failed 1" in done.stderr
    assert "1 x truncated image data" in done.stderr
    assert all(line.startswith("{") for line in done.stdout.splitlines())  # stdout stays clean


def test_second_run_answers_from_the_cache(library: Path, tmp_path: Path) -> None:
    cache = tmp_path / "my-cache.sqlite"
    first = run(str(library), "-r", "--json", "--cache", str(cache))
    second = run(str(library), "-r", "--json", "--cache", str(cache))
    assert "hashed 6, cached 0, failed 1" in first.stderr
    assert "hashed 0, cached 6, failed 1" in second.stderr  # the broken file is tried again
    assert sorted(first.stdout.splitlines()) == sorted(second.stdout.splitlines())
    exact = run(str(library), "-r", "--json", "--cache", str(cache), "--mode", "exact")
    assert "hashed 6, cached 0, failed 1" in exact.stderr


def test_cache_lives_in_the_user_cache_folder_and_no_cache_writes_none(library: Path, tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    env = {"XDG_CACHE_HOME": str(xdg), "LOOKALIKE_CACHE_DIR": ""}
    run(str(library), "-r", "--no-cache", env=env)
    assert not (xdg / "lookalike" / "hashes.sqlite").exists()
    run(str(library), "-r", env=env)
    assert (xdg / "lookalike" / "hashes.sqlite").exists()
    again = run(str(library), "-r", env=env)
    assert "cached 6" in again.stderr


def test_an_unusable_cache_is_reported_and_hashing_goes_on(library: Path, tmp_path: Path) -> None:
    not_a_db = tmp_path / "cache.sqlite"
    not_a_db.write_text("this is not SQLite" * 100)
    done = run(str(library), "-r", "--cache", str(not_a_db))
    assert "going on without the cache" in done.stderr
    assert "hashed 6, cached 0, failed 1" in done.stderr


def test_results_go_to_stdout_even_while_the_bar_draws_on_a_terminal(library: Path) -> None:
    """stderr on a terminal (the bar is live), stdout redirected to a file, as in `... > out.jsonl`."""
    import pty

    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "lookalike",
                "hash",
                str(library),
                "-r",
                "--json",
                "--no-cache",
                "--workers",
                "1",
            ],
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=180,
            env={**os.environ, "COLUMNS": "120"},
        )
    finally:
        os.close(follower)
        terminal = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            terminal += chunk
        os.close(leader)
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(records) == 7  # 6 photos and the broken file
    assert b"files/s" in terminal and b'"path"' not in terminal
