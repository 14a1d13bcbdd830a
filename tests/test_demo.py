"""`lookalike demo` (what `make demo` runs): the planted groups are found, the page is written."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from lookalike.cli.app import app
from lookalike.demo import COPIES, build_gallery, sample_photos


def test_gallery_plants_two_copies_of_six_photos(tmp_path: Path) -> None:
    gallery = build_gallery(sample_photos(), tmp_path / "g")
    assert len(gallery) == 14 + 12
    edits = [image.edit for image in gallery if image.edit]
    assert sorted(set(edits)) == sorted(suffix for suffix, _, _ in COPIES)
    assert all(image.path.exists() for image in gallery)


def test_demo_finds_every_planted_group_and_writes_the_page(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["demo", "--out", str(tmp_path / "out"), "--index", str(tmp_path / "demo.db"), "--workers", "1"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.stdout
    assert (
        "planted groups: 6; found whole 6, partly 0, missed 0; groups mixing different photos: 0"
        in result.stdout
    )
    page = tmp_path / "out" / "report.html"
    assert page.exists() and page.read_text().count('<section class="group ') == 6
    assert "Hamming distance from" in result.stdout and "total" in result.stdout
    best = [line for line in result.stdout.splitlines() if line.strip().startswith("keep")]
    assert len(best) == 6 and all("/originals/" in line for line in best)  # bars added to a copy do not win
