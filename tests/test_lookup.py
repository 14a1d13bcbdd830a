"""The shared search code behind `lookalike search`, `/v1/search` and the page: which hashes agreed,
and whether keypoints verify what the hashes accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import COMMITTED_PHOTOS, committed_rgb
from lookalike.hash import Hash
from lookalike.index import open_index
from lookalike.lookup import agreed_hashes, parse_queries, query_algorithms, search_queries
from lookalike.matcher import Matcher, default_index_hashes

RULE = Matcher.parse("pdq <= 31 with quality >= 50 or ahash + colorhash <= 12")


def pdq(quality: int) -> dict[str, Hash]:
    return {"pdq": Hash(0, 256, quality=quality)}


def test_a_condition_within_its_limit_but_failing_its_quality_gate_did_not_agree() -> None:
    distances = {"pdq": 10}
    assert agreed_hashes(distances, pdq(90), pdq(80), RULE) == ("pdq",)
    assert agreed_hashes(distances, pdq(90), pdq(20), RULE) == ()
    assert agreed_hashes({"pdq": 40}, pdq(90), pdq(80), RULE) == ()


def test_a_summed_condition_agrees_as_a_whole() -> None:
    both = {"ahash + colorhash": 11, "ahash": 9, "colorhash": 2}
    assert agreed_hashes(both, {}, {}, RULE) == ("ahash", "colorhash")
    assert agreed_hashes({**both, "ahash + colorhash": 13}, {}, {}, RULE) == ()


def test_without_a_rule_each_hash_is_judged_by_its_own_default_distance() -> None:
    assert agreed_hashes({"pdq": 31, "phash": 30, "ahash + colorhash": 0}, {}, {}, None) == ("pdq",)


def test_queries_are_hashed_with_what_the_index_stores_except_multi_hashes() -> None:
    stored = {"phash": 64, "dhash": 64, "crop_resistant": 64, "someone_elses": 64}
    assert query_algorithms(["pdq", "phash"], stored) == ["pdq", "phash", "dhash"]
    assert query_algorithms(default_index_hashes(), {}) == list(default_index_hashes())


def test_matches_the_hashes_accept_are_verified_by_keypoints(tmp_path: Path) -> None:
    """A loose rule accepts other photos too; keypoints verify the real copy and not the others,
    and a crop the hashes accept also says where it lies."""
    pytest.importorskip("cv2")
    original = committed_rgb(COMMITTED_PHOTOS[4], 480)
    stored = [tmp_path / "original.jpg", *(tmp_path / f"other{n}.jpg" for n in range(3))]
    original.save(stored[0], quality=90)
    for path, other in zip(stored[1:], COMMITTED_PHOTOS[6:9], strict=True):
        committed_rgb(other, 480).save(path, quality=90)
    copy = tmp_path / "copy.jpg"
    original.crop((0, 0, int(original.width * 0.85), original.height)).save(copy, quality=80)
    with open_index(tmp_path / "index.db") as index:
        index.add_files(stored, workers=1)
        loose = "ahash <= 64"  # accepts any photo: only keypoints tell them apart
        names = list(default_index_hashes())
        (query,) = parse_queries([str(copy)], names, dihedral=True, workers=1)
        (found,) = search_queries(index, [query], names, 10, None, loose, True)
    verdicts = {Path(item.key).name: item.verified for item in found}
    # other2 (photo08) is nearly flat, 10 keypoints: too few for keypoints to judge it either way
    assert verdicts == {"original.jpg": True, "other0.jpg": False, "other1.jpg": False, "other2.jpg": None}
    where = next(item.where for item in found if item.key.endswith("original.jpg"))
    assert where is not None and where["pixels"]
    assert max(x for x, _ in where["stored_region"]) < 0.9 * original.width  # the right 15% was cut


def test_a_picture_too_flat_for_keypoints_is_neither_verified_nor_rejected(tmp_path: Path) -> None:
    """A storm sky or a blank slate has fewer keypoints than a verdict needs inliers: the
    keypoints cannot judge its match, so it is not called "similar, not verified" (None), while
    a textured photo the same loose rule accepts still is (False)."""
    pytest.importorskip("cv2")
    import numpy as np
    from PIL import Image

    from lookalike.local.features import extract
    from lookalike.local.verify import MIN_INLIERS

    rows = np.linspace(90, 150, 360)[:, None, None]  # a smooth grey sky, darker at the top
    sky = Image.fromarray(np.broadcast_to(rows, (360, 480, 3)).astype(np.uint8))
    assert len(extract(np.asarray(sky.convert("L")))) < MIN_INLIERS
    stored = [tmp_path / "sky.jpg", tmp_path / "photo.jpg"]
    sky.save(stored[0], quality=90)
    committed_rgb(COMMITTED_PHOTOS[6], 480).save(stored[1], quality=90)
    query = tmp_path / "query.jpg"
    committed_rgb(COMMITTED_PHOTOS[4], 480).save(query, quality=90)
    with open_index(tmp_path / "index.db") as index:
        index.add_files(stored, workers=1)
        names = list(default_index_hashes())
        (parsed,) = parse_queries([str(query)], names, dihedral=True, workers=1)
        (found,) = search_queries(index, [parsed], names, 10, None, "ahash <= 64", True)
    assert {Path(item.key).name: item.verified for item in found} == {"sky.jpg": None, "photo.jpg": False}
