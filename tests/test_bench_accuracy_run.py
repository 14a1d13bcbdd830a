"""`lookalike bench accuracy` end to end on a few committed photos (no peers, three edits)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import COMMITTED_PHOTOS
from lookalike.cli.app import app


@pytest.mark.slow
def test_bench_accuracy_writes_tables_and_finds_easy_copies(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for source in COMMITTED_PHOTOS[:8]:
        (photos / source.name).write_bytes(source.read_bytes())
    (photos / "broken.jpg").write_bytes(COMMITTED_PHOTOS[0].read_bytes()[:300])  # skipped, named
    out = tmp_path / "out"
    args = [
        "bench",
        "accuracy",
        "--photos",
        str(photos),
        "--cache",
        str(tmp_path / "cache"),
        "--out",
        str(out),
    ]
    args += [
        "--no-peers",
        "--workers",
        "1",
        "--max-side",
        "256",
        "--transforms",
        "jpeg_50,flip_horizontal,crop_left_10",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "accuracy.json").read_text())
    assert data["photos"] == 8 and data["images"] == 8 * 4
    assert "broken.jpg" in result.output and any("broken.jpg" in f for f in data["failures"])
    assert data["tune_photos"] + data["test_photos"] == 8
    by_name = {r["name"]: r for r in data["results"]}
    default = by_name["lookalike near-duplicate"]
    assert default["family_recall"]["0.999"]["jpeg"] == 1.0
    assert default["family_recall"]["0.999"]["flip"] == 1.0  # dihedral variants
    assert by_name["lookalike:phash"]["family_recall"]["0.999"]["flip"] < 1.0  # no variants: flips missed
    assert "| **lookalike near-duplicate** |" in (out / "accuracy.md").read_text()
    # a second run finds every copy and hash in the cache
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
