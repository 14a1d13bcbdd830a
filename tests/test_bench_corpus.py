"""The benchmark's corpus builder: composites get other photos of the corpus, chosen the same way in
every run, never the photo itself, and their copies are reused only with the same donors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import COMMITTED_PHOTOS
from lookalike.benchmarks.corpus import CorpusLayout, build_corpus, choose_donors, find_photos
from lookalike.benchmarks.transforms import select


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for source in COMMITTED_PHOTOS[:6]:
        shutil.copy(source, folder / source.name)
    return folder


def test_donors_are_drawn_from_the_pool_never_the_photo_itself_and_the_same_each_time() -> None:
    pool = range(10)
    drawn = {choose_donors(pool, 4, 3, seed) for seed in range(40)}
    assert all(len(d) == 3 and len(set(d)) == 3 and 4 not in d for d in drawn)
    assert len(drawn) > 20  # each photo and transform gets its own draw
    assert choose_donors(pool, 4, 3, 7) == choose_donors(range(9, -1, -1), 4, 3, 7)  # pool order aside
    assert choose_donors([4, 5], 4, 3, 0) == (5,)  # too few: what there is


def test_composites_take_photos_of_the_pool_and_their_copies_are_reused(photo_folder, tmp_path) -> None:
    photos = find_photos(photo_folder)
    layout = CorpusLayout(tmp_path, max_side=96)
    chosen = select(["jpeg_50", "pip", "collage"])
    halves = ({0, 1, 2}, {3, 4, 5})

    def other_half(index: int) -> set[int]:
        return halves[1] if index in halves[0] else halves[0]

    skipped: list[str] = []
    images = build_corpus(photos, layout, chosen, on_skip=skipped.append, donor_pool=other_half)
    assert not skipped and len(images) == 6 * 4
    assert [i.transform for i in images[:4]] == [None, "jpeg_50", "pip", "collage"]
    for image in images:
        assert image.path.is_file()
        expected = {"pip": 1, "collage": 3}.get(image.transform or "", 0)
        assert len(image.donors) == expected and len(set(image.donors)) == expected
        assert set(image.donors) <= other_half(image.photo)
        assert ("~" in image.path.name) == bool(image.donors)  # a composite's file names its donors
    stamps = {image.path: image.path.stat().st_mtime_ns for image in images}
    again = build_corpus(photos, layout, chosen, on_skip=skipped.append, donor_pool=other_half)
    assert again == images and all(i.path.stat().st_mtime_ns == stamps[i.path] for i in again)
    anywhere = build_corpus(photos, layout, chosen, on_skip=skipped.append)  # default pool: every other photo
    assert [i.path for i in anywhere if not i.donors] == [i.path for i in images if not i.donors]
    assert all(i.photo not in i.donors for i in anywhere)


def test_a_composite_that_finds_too_few_photos_is_left_out_and_said(photo_folder, tmp_path) -> None:
    photos = find_photos(photo_folder)[:3]
    skipped: list[str] = []
    images = build_corpus(
        photos, CorpusLayout(tmp_path, 96), select(["pip", "collage"]), on_skip=skipped.append
    )
    assert [i.transform for i in images if i.photo == 0] == [None, "pip"]
    assert len(skipped) == 3 and all("collage" in s and "needs 3 other photos" in s for s in skipped)
