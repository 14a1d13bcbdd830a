"""`lookalike bench accuracy` end to end on a few committed photos (no peers, three edits)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import COMMITTED_PHOTOS
from lookalike.cli.app import app


def quick_bench(photos: Path, tmp_path: Path, transforms: str) -> list[str]:
    """`lookalike bench accuracy` on `photos` with a few edits, small, no peers, one process;
    the cache under `tmp_path`, the results in `tmp_path / "out"`."""
    where = ["--photos", str(photos), "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]
    quick = ["--no-peers", "--workers", "1", "--max-side", "256", "--transforms", transforms]
    return ["bench", "accuracy", *where, *quick]


@pytest.mark.slow
def test_bench_accuracy_writes_tables_and_finds_easy_copies(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for source in COMMITTED_PHOTOS[:8]:
        (photos / source.name).write_bytes(source.read_bytes())
    (photos / "broken.jpg").write_bytes(COMMITTED_PHOTOS[0].read_bytes()[:300])  # skipped, named
    out = tmp_path / "out"
    args = quick_bench(photos, tmp_path, "jpeg_50,flip_horizontal,crop_left_10")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "accuracy.json").read_text())
    assert data["photos"] == 8 and data["images"] == 8 * 4
    assert "broken.jpg" in result.output and any("broken.jpg" in f for f in data["failures"])
    assert data["tune_photos"] + data["test_photos"] == 8
    by_name = {r["name"]: r for r in data["results"]}
    default = by_name["lookalike near-duplicate (hashes only)"]
    assert default["family_recall"]["0.999"]["jpeg"] == 1.0
    assert default["family_recall"]["0.999"]["flip"] == 1.0  # dihedral variants
    assert by_name["lookalike:phash"]["family_recall"]["0.999"]["flip"] < 1.0  # no variants: flips missed
    assert "| **lookalike near-duplicate (hashes only)** |" in (out / "accuracy.md").read_text()
    # a second run finds every copy and hash in the cache
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output


@pytest.mark.slow
def test_bench_accuracy_index_path_runs_each_preset_through_an_index(tmp_path: Path) -> None:
    """--index-eval: the test half in a SQLite index with local features, a duplicate search per
    preset (and the default with a local clause), scored per family beside the best peer; hard
    negatives (two photos of one place, by their names in the shared folder) reported apart."""
    photos = tmp_path / "photos"
    for source in COMMITTED_PHOTOS[:8]:
        (photos / "general").mkdir(parents=True, exist_ok=True)
        (photos / "general" / source.name).write_bytes(source.read_bytes())
    court = photos / "scratch"
    court.mkdir()
    (court / "basketball-court1-a.jpg").write_bytes(COMMITTED_PHOTOS[9].read_bytes())
    (court / "basketball-court1-b.jpg").write_bytes(COMMITTED_PHOTOS[10].read_bytes())  # another photo
    moon = photos / "scribus-template"
    moon.mkdir()
    (moon / "br2__moon.jpg").write_bytes(COMMITTED_PHOTOS[11].read_bytes())
    with Image.open(COMMITTED_PHOTOS[11]) as image:  # the same picture, re-encoded: a pair a matcher finds
        image.convert("RGB").save(moon / "cal2__moon.jpg", quality=70)
    out = tmp_path / "out"
    args = quick_bench(photos, tmp_path, "jpeg_50,crop_uneven_light,pip")
    args += ["--index-eval", "--index-rule", "phash_eq <= 20"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "accuracy.json").read_text())
    index = data["index"]
    assert index["half"] == "test" and index["images"] == data["test_photos"] * 4
    by_rule = {r["name"]: r for r in index["results"]}
    assert set(by_rule) == {
        "exact-duplicate", "near-duplicate", "similar", "partial-copy", "near-duplicate (hashes only)",
        "phash_eq <= 20", "near-duplicate, verified",
    }  # fmt: skip
    default = by_rule["near-duplicate (hashes only)"]["scores"]
    assert default["family_recall"]["jpeg"] == 1.0 and default["positives"] == data["test_photos"] * 3
    assert set(default["family_recall"]) == {"jpeg", "crop_uneven", "pip"}
    with_local = by_rule["near-duplicate"]["scores"]
    assert with_local["found"] >= default["found"]  # a local clause only adds verified pairs
    assert with_local["grouped_recall"] >= with_local["recall"]
    verified = by_rule["near-duplicate, verified"]["scores"]  # the same pairs, those keypoints reject dropped
    assert verified["found"] <= with_local["found"] and verified["false_pairs"] <= with_local["false_pairs"]
    assert verified["family_recall"]["jpeg"] == 1.0  # a re-encoded photo's keypoints agree with its own
    subjects = {pair["subject"] for pair in data["hard_negatives"]}
    assert subjects == {"one basketball court, two views", "the full Moon"}
    assert "the full Moon" in data["index_hard_negatives"]["near-duplicate"]  # the re-encoded "moon"
    assert "one basketball court, two views" not in data["index_hard_negatives"]["near-duplicate"]
    presets = {r["name"]: r for r in data["results"]}
    hashes_only = presets["lookalike near-duplicate (hashes only)"]
    assert hashes_only["hard_negatives"]["own limits"] == ["the full Moon"]
    text = (out / "accuracy.md").read_text()
    assert "| near-duplicate (hashes only) |" in text and "Hard negatives: 2 pairs" in text


def test_duplicate_search_links_are_scored_as_found_pairs_false_pairs_and_groups() -> None:
    """Pairs and groups from a duplicate search, read back onto the benchmark's pairs: a false
    pair shows no photo in common; an image that shows the other photo (a composite's donor)
    is neither true nor false with it; an image left out for bytes equal to another's shares
    that one's pairs."""
    from lookalike.benchmarks.index_eval import Links, score_links
    from lookalike.benchmarks.scoring import make_pair_set
    from lookalike.dedupe.grouping import group_pairs
    from lookalike.index.base import Entry

    # photo 0: original, jpeg copy, pip showing photo 1; photo 1: original, jpeg copy
    pairs = make_pair_set(
        [0, 0, 0, 1, 1], [None, "jpeg_50", "pip", None, "jpeg_50"], [0, 1], [(), (), (1,), (), ()]
    )
    keys = [f"/img/{row}" for row in range(5)]
    entries = {row: Entry(row, keys[row], {}, None, None, 10, 10, None, 0.0) for row in range(4)}
    # the search paired 0-1, 1-3 and 2-3; row 4 was not stored: its bytes are row 3's
    groups = group_pairs(np.array([0, 1, 2]), np.array([1, 3, 3]), np.zeros(3, dtype=np.int64), entries)
    links = Links.from_groups(groups, {key: row for row, key in enumerate(keys)}, twins={4: 3})
    assert links.edges == {(0, 1), (1, 3), (2, 3), (3, 4), (1, 4), (2, 4)}
    assert len(set(links.group_of.tolist())) == 1  # one group of all five
    scores = score_links(links, pairs, {"jpeg_50": "jpeg", "pip": "pip"}, keys)
    assert (scores.positives, scores.found) == (3, 2)  # 0-1 and 3-4 found, the pip 0-2 not
    assert scores.family_recall == {"jpeg": 1.0, "pip": 0.0}
    assert scores.false_pairs == 2 and scores.false_examples == [("/img/1", "/img/3"), ("/img/1", "/img/4")]
    assert scores.precision == pytest.approx(2 / 4)
    assert scores.false_kinds == {"jpeg ~ original": 1, "jpeg ~ jpeg": 1}
    assert scores.grouped_recall == 1.0
    # 10 pairs in the group, 4 within a photo, 2 showing photo 1 together (2-3, 2-4): 4 false
    assert scores.grouped_false_pairs == 4


def test_verified_links_keep_a_copy_and_drop_a_look_alike_the_keypoints_reject(tmp_path: Path) -> None:
    """The verified default preset: of the pairs a search made, those whose keypoints agree stay
    (a re-encoded photo and its original); two different photos paired by the hashes go, and
    their group splits."""
    from lookalike import open_index
    from lookalike.benchmarks.index_eval import Links, verified_links
    from lookalike.discover import file_key
    from lookalike.matcher import default_index_hashes

    paths = []
    for name, source, quality in (("a", 0, 95), ("a-copy", 0, 60), ("b", 3, 95)):
        with Image.open(COMMITTED_PHOTOS[source]) as image:
            image.convert("RGB").save(tmp_path / f"{name}.jpg", quality=quality)
        paths.append(str(tmp_path / f"{name}.jpg"))
    with open_index(str(tmp_path / "index.db")) as index:
        index.add_files(paths, default_index_hashes(), local=True, workers=1)
        keys = [file_key(path) for path in paths]
        links = Links(frozenset({(0, 1), (0, 2)}), np.zeros(3, dtype=np.int64))
        kept = verified_links(index, links, keys)
        assert kept.edges == {(0, 1)}
        assert kept.group_of[0] == kept.group_of[1] and kept.group_of[2] == -1
        # a file gone since it was indexed cannot be searched for: its pairs are judged from the
        # other side only, and the run goes on
        (tmp_path / "a.jpg").unlink()
        again = verified_links(index, links, keys, workers=2)
    assert again.edges == {(0, 1)}  # the copy, searched for, still verifies on a's stored keypoints
