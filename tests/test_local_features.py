"""Local features on committed photos: a crop, a mirrored crop and a picture inside a frame are
verified with the region they came from; a different photo is not; a small inset is verified by
the coarse keypoints a compact set keeps, and by a search's finer keypoints where the standard
ones fail."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from conftest import COMMITTED_PHOTOS
from lookalike.local.features import (
    FINER_KEYPOINTS,
    SCALE_SHARE,
    STORED_KEYPOINTS,
    LocalFeatures,
    extract,
    level_rank,
    mirrored,
    scale_mixed_order,
)
from lookalike.local.retrieval import by_shared_descriptors, nearest_distances
from lookalike.local.verify import (
    MIN_COVERAGE,
    SMALL_COPY_COVERAGE,
    SMALL_COPY_SCALE,
    agreement_needed,
    verify,
)


def _gray(index: int) -> npt.NDArray[np.uint8]:
    return np.asarray(Image.open(COMMITTED_PHOTOS[index]).convert("L"))


def test_an_uneven_crop_is_found_with_the_region_it_was_cut_from() -> None:
    original = _gray(1)
    height, width = original.shape
    box = (int(width * 0.21), int(height * 0.08), int(width * 0.93), int(height * 0.71))
    crop = original[box[1] : box[3], box[0] : box[2]]
    found = verify(extract(crop), extract(original).compact())
    assert found is not None and not found.mirrored
    expected = np.array([[box[0] / width, box[1] / height], [box[2] / width, box[3] / height]])
    corners = np.array([found.stored_region.min(axis=0), found.stored_region.max(axis=0)])
    assert np.abs(corners - expected).max() < 0.02
    assert found.stored_coverage == pytest.approx(0.72 * 0.63, abs=0.03)


def test_a_mirrored_crop_needs_and_uses_the_mirrored_query() -> None:
    original = _gray(4)
    height, width = original.shape
    copy = mirrored(original[: int(height * 0.85), int(width * 0.1) :])
    stored = extract(original).compact()
    assert verify(extract(copy), stored) is None
    found = verify(extract(copy), stored, extract(mirrored(copy)))
    assert found is not None and found.mirrored


def test_a_photo_inside_a_frame_is_found_at_its_place_in_the_frame() -> None:
    photo = Image.open(COMMITTED_PHOTOS[6]).convert("L")
    canvas = Image.new("L", (photo.width * 2, photo.height * 2), 40)
    canvas.paste(photo, (photo.width // 2, photo.height // 3))
    found = verify(extract(np.asarray(photo)), extract(np.asarray(canvas)).compact())
    assert found is not None
    assert found.stored_region.min(axis=0) == pytest.approx([0.25, 1 / 6], abs=0.02)
    assert found.stored_coverage == pytest.approx(0.25, abs=0.02)


@pytest.mark.parametrize("other", [2, 9, 14])
def test_a_different_photo_is_not_verified(other: int) -> None:
    assert verify(extract(_gray(other)), extract(_gray(1)).compact()) is None


def test_stored_features_fit_in_4_kb_and_round_trip() -> None:
    stored = extract(_gray(3)).compact()
    data = stored.to_bytes()
    assert len(stored) == STORED_KEYPOINTS and len(data) <= 4096
    back = LocalFeatures.from_bytes(data)
    assert np.array_equal(back.descriptors, stored.descriptors)
    assert np.abs(back.points - stored.points).max() <= 1 / 16


def small_inset(
    photo: int, background: int, share: float = 0.3
) -> tuple[Image.Image, tuple[float, float, float, float]]:
    """Committed photo `photo` pasted at `share` of the width of `background` brought to 1,200
    pixels wide (at 30%, an inset about 150 pixels wide at the 512-pixel working size), and its
    relative box."""
    inset = Image.open(COMMITTED_PHOTOS[photo]).convert("RGB")
    canvas = Image.open(COMMITTED_PHOTOS[background]).convert("RGB")
    canvas = canvas.resize((1200, round(1200 * canvas.height / canvas.width)), Image.Resampling.BICUBIC)
    width = round(1200 * share)
    height = round(width * inset.height / inset.width)
    left, top = 660, (canvas.height - height) // 2
    canvas.paste(inset.resize((width, height), Image.Resampling.LANCZOS), (left, top))
    box = (
        left / canvas.width,
        top / canvas.height,
        (left + width) / canvas.width,
        (top + height) / canvas.height,
    )
    return canvas, box


def _inset_corners(found_region: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.array([found_region.min(axis=0), found_region.max(axis=0)]).ravel()


@pytest.mark.parametrize(("photo", "background"), [(30, 0), (5, 0), (7, 5)])
def test_a_small_inset_is_verified_by_a_searchs_finer_keypoints(photo: int, background: int) -> None:
    """ORB's pyramid at the working size barely reaches down to where the inset's original was
    stored; the finer set (upscaled levels) does, and places the inset where it was pasted."""
    canvas, box = small_inset(photo, background)
    gray = np.asarray(canvas.convert("L"))
    stored = extract(_gray(photo)).compact()
    query = extract(gray, finer=True)
    assert query.finer is not None and len(query.finer) > len(query)
    assert len(query.finer) <= len(query) + FINER_KEYPOINTS
    found = verify(query, stored)
    assert found is not None and not found.mirrored
    assert np.abs(_inset_corners(found.query_region) - np.array(box)).max() < 0.02


def test_the_finer_keypoints_verify_an_inset_the_standard_ones_miss() -> None:
    canvas, _ = small_inset(7, 5)
    gray = np.asarray(canvas.convert("L"))
    stored = extract(_gray(7)).compact()
    assert verify(extract(gray), stored) is None
    assert verify(extract(gray, finer=True), stored) is not None


@pytest.mark.parametrize(("photo", "background"), [(30, 0), (27, 0)])
def test_a_small_inset_meets_the_coarse_keypoints_a_compact_set_keeps(photo: int, background: int) -> None:
    """An inset at 30% of a composite holds its original's coarse scales only. A compact set
    chosen by corner strength alone held almost none (ORB's response is larger at the fine
    levels), so only the finer fallback verified these insets; a fifth chosen by strength within
    each level lets the standard keypoints verify them, at their place."""
    canvas, box = small_inset(photo, background)
    found = verify(extract(np.asarray(canvas.convert("L"))), extract(_gray(photo)).compact())
    assert found is not None and not found.mirrored
    assert np.abs(_inset_corners(found.query_region) - np.array(box)).max() < 0.02


def test_keypoints_are_ranked_within_their_level() -> None:
    response = np.array([5.0, 1.0, 0.2, 0.1, 3.0, 0.3], dtype=np.float32)
    level = np.array([0, 0, 1, 1, 0, 1])
    assert level_rank(response, level).tolist() == pytest.approx([1.0, 1 / 3, 2 / 3, 1 / 3, 2 / 3, 1.0])


def test_the_mixed_order_takes_its_share_from_the_levels_and_each_keypoint_once() -> None:
    by_strength, by_level = np.arange(6), np.arange(6)[::-1]
    assert scale_mixed_order(by_strength, by_level, 1 / 3).tolist() == [5, 0, 1, 4, 2, 3]
    rng = np.random.default_rng(3)
    merged = scale_mixed_order(rng.permutation(1000), rng.permutation(1000), SCALE_SHARE)
    assert sorted(merged.tolist()) == list(range(1000))


@pytest.mark.parametrize("other", [2, 9, 24])
def test_the_finer_keypoints_verify_no_photo_the_inset_does_not_show(other: int) -> None:
    canvas, _ = small_inset(30, 0)
    gray = np.asarray(canvas.convert("L"))
    assert (
        verify(
            extract(gray, finer=True), extract(_gray(other)).compact(), extract(mirrored(gray), finer=True)
        )
        is None
    )


def test_a_search_finds_the_small_inset_only_its_finer_keypoints_verify(tmp_path: Path) -> None:
    """What a user sees: `lookalike search composite --partial --json` answers the inset's
    original, verified by keypoints, at the place it was pasted."""
    from typer.testing import CliRunner

    from lookalike.cli.app import app

    canvas, box = small_inset(30, 0)
    canvas.save(tmp_path / "composite.jpg", quality=90)
    stored = [COMMITTED_PHOTOS[i] for i in (1, 2, 9, 30)]
    url = f"sqlite:///{tmp_path / 'index.db'}"
    runner = CliRunner()
    assert (
        runner.invoke(app, ["index", "add", *map(str, stored), "--index", url, "--workers", "1"]).exit_code
        == 0
    )
    result = runner.invoke(
        app, ["search", str(tmp_path / "composite.jpg"), "--index", url, "--partial", "--json"]
    )
    matches = json.loads(result.stdout.splitlines()[0])["matches"]
    assert [Path(m["key"]).name for m in matches] == [COMMITTED_PHOTOS[30].name]
    assert matches[0]["verified"] is True and matches[0]["where"]["by"] == "keypoints"
    xs = [x for x, _ in matches[0]["where"]["query_region"]]
    ys = [y for _, y in matches[0]["where"]["query_region"]]
    found = np.array(
        [min(xs) / canvas.width, min(ys) / canvas.height, max(xs) / canvas.width, max(ys) / canvas.height]
    )
    assert np.abs(found - np.array(box)).max() < 0.02


@pytest.mark.parametrize(("photo", "background", "share"), [(29, 5, 0.35), (33, 5, 0.3)])
def test_a_picture_shown_small_needs_less_agreement(photo: int, background: int, share: float) -> None:
    """An inset at a third of the composite has lost the finest scales its original's stored
    keypoints were found at: half its cells agree, and that is enough where the stored picture
    is shown at half its size or less."""
    canvas, box = small_inset(photo, background, share)
    found = verify(extract(np.asarray(canvas.convert("L")), finer=True), extract(_gray(photo)).compact())
    assert found is not None and found.scale >= SMALL_COPY_SCALE
    assert SMALL_COPY_COVERAGE <= found.agreement < MIN_COVERAGE
    corners = np.array([found.query_region.min(axis=0), found.query_region.max(axis=0)]).ravel()
    assert np.abs(corners - np.array(box)).max() < 0.02


def _small_object(photo: int, share: float) -> npt.NDArray[np.uint8]:
    """A committed photo at `share` of the width of a dark 1024 x 768 picture (a nebula in black
    sky, a product on a plain ground): all its keypoints lie in one small patch."""
    image = Image.open(COMMITTED_PHOTOS[photo]).convert("L")
    canvas = Image.new("L", (1024, 768), 8)
    width = int(1024 * share)
    height = int(width * image.height / image.width)
    canvas.paste(image.resize((width, height)), (563 - width // 2, 346 - height // 2))
    return np.asarray(canvas)


@pytest.mark.parametrize("photo", [0, 3, 6])
def test_a_crop_of_a_small_object_on_a_plain_ground_is_verified(photo: int) -> None:
    """The inliers' spread is measured against the part of the picture that has keypoints, not
    against the whole overlap: before, a crop of a small object on black (60-90 inliers, every
    cell with stored keypoints agreeing) was refused for covering under 2% of the frame."""
    picture = _small_object(photo, 0.12)
    crop = picture[77:714, 61:922]
    found = verify(extract(crop), extract(picture).compact())
    assert found is not None and found.inliers >= 50 and found.agreement > MIN_COVERAGE
    assert found.stored_region.min(axis=0) == pytest.approx([61 / 1024, 77 / 768], abs=0.02)


@pytest.mark.parametrize(("photo", "other"), [(14, 13), (14, 28), (18, 28), (0, 3)])
def test_two_small_pictures_at_one_place_on_one_ground_are_not_verified(photo: int, other: int) -> None:
    """The pasted pictures' frames share their corners and edges: 15-16 of 34-39 matches agree,
    bunched where the frames lie. Measured over the keypoints' hull they would pass; measured
    over the overlap, as where most matches disagree, they do not."""
    crop = _small_object(other, 0.12)[77:714, 61:922]
    assert verify(extract(crop), extract(_small_object(photo, 0.12)).compact()) is None


def test_the_agreement_needed_falls_with_the_scale_and_without_a_step() -> None:
    """Full agreement need up to full size, the small copy's from half size on, and between
    them one pyramid level's worth less for each 1.2x: no scale just under 2 that needs a
    third more agreement than a scale just over it."""
    scales = np.exp(np.linspace(np.log(0.5), np.log(4.0), 400))
    needed = np.array([agreement_needed(s) for s in scales])
    assert needed[scales <= 1.0] == pytest.approx(MIN_COVERAGE)
    assert needed[scales >= SMALL_COPY_SCALE] == pytest.approx(SMALL_COPY_COVERAGE)
    assert np.all(np.diff(needed) <= 1e-12) and np.abs(np.diff(needed)).max() < 0.002
    assert agreement_needed(1.2**2) == pytest.approx(
        MIN_COVERAGE - (MIN_COVERAGE - SMALL_COPY_COVERAGE) * 2 * np.log(1.2) / np.log(SMALL_COPY_SCALE)
    )


@pytest.mark.parametrize(("photo", "background"), [(30, 0), (5, 0), (27, 0)])
def test_a_small_insets_original_shares_the_most_descriptors_whatever_its_votes(
    photo: int, background: int
) -> None:
    """Votes over 24-bit keys rank an inset's original anywhere (a picture full of plain
    keypoints collects chance votes from every query); the descriptors the composite and each
    stored compact set share, mutually nearest and close, put the original first among every
    committed photo but the one it was pasted on, even where the votes put it last."""
    canvas, _ = small_inset(photo, background)
    gray = np.asarray(canvas.convert("L"))
    others = [i for i in range(len(COMMITTED_PHOTOS)) if i not in (photo, background)]
    voted = np.array([*others, photo], dtype=np.int64)
    stored = {i: (extract(_gray(i)).compact(), None) for i in voted.tolist()}
    rows, ids = by_shared_descriptors(
        np.zeros(len(voted), dtype=np.int64), voted, [(extract(gray), extract(mirrored(gray)))], stored, 1
    )
    assert rows.tolist() == [0] and ids.tolist() == [photo]


@pytest.mark.parametrize("compiled", [True, False])
def test_nearest_distances_are_the_brute_force_minimum(
    compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compiled kernel (FAISS) and OpenCV's matcher give every descriptor's distance to its
    nearest in the other set, as counting bits pair by pair does; blocks of the kernel's output
    join without a seam."""
    import lookalike.local.retrieval as retrieval

    if not compiled:
        monkeypatch.setattr(retrieval, "compiled_distances", lambda: None)
    monkeypatch.setattr(retrieval, "NEAREST_BLOCK", 7 * 50)  # several blocks, the last one short
    rng = np.random.default_rng(3)
    among = rng.integers(0, 256, (50, 32), dtype=np.uint8)
    points = np.concatenate([among[:20] ^ (rng.random((20, 32)) < 0.05), rng.integers(0, 256, (23, 32))])
    points = points.astype(np.uint8)
    bits = np.unpackbits(points[:, None, :] ^ among[None, :, :], axis=2).sum(axis=2)
    distances, which = nearest_distances(points, among)
    assert distances.tolist() == bits.min(axis=1).tolist()
    assert bits[np.arange(len(points)), which].tolist() == distances.tolist()
    assert nearest_distances(points[:0], among)[0].tolist() == []


@pytest.mark.parametrize("id_step", [1, 1 << 40], ids=["small ids, one array", "64-bit ids, sorted"])
def test_votes_are_the_summed_rarity_of_meetings_whose_signatures_agree(id_step: int) -> None:
    """Per query, the stored images whose meetings weigh at least MIN_SCORE, most weight first
    (ties by id), at most `top`: against a brute force over every posting, where a posting is a
    meeting only if its stored signature is within SIGNATURE_DISTANCE bits of its probe's (and
    a key's rarity counts meetings, not postings), on the dense per-cell path (SQLite's ids) and
    the sorting one (ClickHouse's 64-bit versions)."""
    from lookalike.local import retrieval

    rng = np.random.default_rng(5)
    probe_owners = rng.integers(0, 4, size=3000)
    probe_signatures = rng.integers(0, 2**63, size=3000, dtype=np.uint64)
    posting_probes = np.sort(rng.integers(0, 3000, size=6000) % rng.integers(1, 3000, size=6000))
    posting_ids = rng.integers(0, 40, size=6000) * id_step
    # each posting's signature its probe's with 0-16 bits flipped: about half of them meet
    flipped = rng.integers(0, 17, size=6000)
    masks = np.array([sum(1 << int(b) for b in rng.choice(64, f, replace=False)) for f in flipped], np.uint64)
    posting_signatures = probe_signatures[posting_probes] ^ masks
    posting_probes[:70] = 0  # one key held by COMMON_KEY keypoints: it weighs nothing
    common = np.bincount(posting_probes)[posting_probes] >= retrieval.COMMON_KEY
    assert common.sum() >= 70
    met = (flipped <= retrieval.SIGNATURE_DISTANCE) & ~common
    assert 0.3 < met.mean() < 0.7
    counts = np.bincount(posting_probes[met], minlength=3000)
    scores: dict[int, dict[int, float]] = {}
    for probe, entry in zip(posting_probes[met].tolist(), posting_ids[met].tolist(), strict=True):
        weight = max(np.log2(retrieval.COMMON_KEY / counts[probe]), 0.0)
        per_query = scores.setdefault(int(probe_owners[probe]), {})
        per_query[entry] = per_query.get(entry, 0.0) + weight
    expected = []
    for query in sorted(scores):
        ranked = sorted((-s, e) for e, s in scores[query].items() if s >= retrieval.MIN_SCORE - 1e-9)
        expected += [(query, e) for _, e in ranked[:5]]
    assert len(expected) > 4
    query, stored = retrieval.vote(
        (probe_owners, probe_signatures), (posting_probes, posting_ids, posting_signatures), top=5
    )
    assert list(zip(query.tolist(), stored.tolist(), strict=True)) == expected
