"""A search's second look: a heavy crop whose original's stored keypoints are too few is verified
against every keypoint of the original's file, when `index add` made the entry from that file and
the file is unchanged; no other file is ever opened."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from conftest import COMMITTED_PHOTOS
from lookalike import pipeline
from lookalike.hash import Hash
from lookalike.index import IndexItem, open_index
from lookalike.index.base import FROM_API, FROM_FILE
from lookalike.local.at_hand import indexed_file
from lookalike.local.features import LocalFeatures, extract, mirrored
from lookalike.local.second_look import NEAR_INLIERS, SecondLook, worth_a_look
from lookalike.local.verify import NearMiss, verify, verify_near
from lookalike.matcher import default_index_hashes
from lookalike.pipeline import hash_file
from tests_support import chat_screenshot

PHOTO = 16  # a hammer on white; the crop below keeps a third of it, off centre
BOX = (0.4, 0.35, 0.95, 0.9)  # left, top, right, bottom as shares of the side
OTHERS = (1, 2, 9, 30)


def _crop(path: Path, into: Path) -> Path:
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    width, height = rgb.size
    box = (round(BOX[0] * width), round(BOX[1] * height), round(BOX[2] * width), round(BOX[3] * height))
    rgb.crop(box).save(into, quality=90)
    return into


@pytest.fixture(params=["sqlite", "chdb"])
def library(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, Path, Path]:
    """An index of five photos added from their files (each backend), the crop of one of them,
    and its file."""
    folder = tmp_path / "photos"
    folder.mkdir()
    paths = [Path(shutil.copy(COMMITTED_PHOTOS[i], folder)) for i in (PHOTO, *OTHERS)]
    url = f"sqlite:///{tmp_path / 'index.db'}" if request.param == "sqlite" else f"chdb://{tmp_path / 'ch'}"
    with open_index(url) as index:
        index.add_files([str(p) for p in paths], local=True, dihedral=True, workers=1)
    return url, paths[0], _crop(paths[0], tmp_path / "crop.jpg")


def _search(url: str, crop: Path) -> list[dict[str, object]]:
    from typer.testing import CliRunner

    from lookalike.cli.app import app

    result = CliRunner().invoke(app, ["search", str(crop), "--index", url, "--partial", "--json"])
    assert result.exit_code == 0, result.output
    matches: list[dict[str, object]] = json.loads(result.stdout.splitlines()[0])["matches"]
    return matches


def test_the_stored_keypoints_alone_miss_the_crop_but_come_close() -> None:
    with Image.open(COMMITTED_PHOTOS[PHOTO]) as image:
        gray = np.asarray(image.convert("L"))
    height, width = gray.shape
    crop = np.ascontiguousarray(
        gray[round(BOX[1] * height) : round(BOX[3] * height), round(BOX[0] * width) : round(BOX[2] * width)]
    )
    query, query_mirrored = extract(crop, finer=True), extract(mirrored(crop), finer=True)
    whole = extract(gray)
    assert verify(query, whole.compact(), query_mirrored, min_inliers=10) is None
    assert (
        verify_near(query, whole.compact(), query_mirrored, near_from=NEAR_INLIERS)[1].inliers >= NEAR_INLIERS
    )
    assert verify(query, whole, query_mirrored, min_inliers=10) is not None


@pytest.mark.parametrize("other", OTHERS)
def test_a_different_photo_does_not_come_close(other: int) -> None:
    with Image.open(COMMITTED_PHOTOS[PHOTO]) as image:
        query = extract(np.asarray(image.convert("L")), finer=True)
    with Image.open(COMMITTED_PHOTOS[other]) as image:
        stored = extract(np.asarray(image.convert("L"))).compact()
    assert verify_near(query, stored, near_from=NEAR_INLIERS)[1].inliers < NEAR_INLIERS


def _chat_screenshot(photo: int) -> np.ndarray:
    """A phone screenshot of a chat: the app's bars and bubbles, and one committed photo."""
    with Image.open(COMMITTED_PHOTOS[photo]) as image:
        page = chat_screenshot(image.convert("RGB").resize((480, 360)))
    return np.asarray(page.convert("L"))


def test_two_screenshots_in_one_app_come_close_in_place_and_get_no_second_look() -> None:
    """What two different photos' screenshots share is the app's bars and text, at the same
    place in both: close, but not worth reading their files (a duplicate search read thousands
    of such pairs and verified next to none)."""
    shots = {photo: extract(_chat_screenshot(photo)).compact() for photo in (PHOTO, *OTHERS)}
    for first, second in [(PHOTO, other) for other in OTHERS] + [(OTHERS[0], OTHERS[1])]:
        alignment, near = verify_near(shots[first], shots[second], near_from=NEAR_INLIERS)
        assert alignment is None and near.inliers >= NEAR_INLIERS
        assert near.in_place and not worth_a_look(near)


def test_a_search_verifies_the_crop_against_the_original_file_where_it_was_cut(
    library: tuple[str, Path, Path],
) -> None:
    url, original, crop = library
    matches = _search(url, crop)
    assert [m["key"] for m in matches] == [str(original)]
    where = matches[0]["where"]
    assert matches[0]["verified"] is True and isinstance(where, dict) and where["by"] == "keypoints"
    corners = np.array(where["stored_region"], dtype=np.float64)
    with Image.open(original) as image:
        size = np.array(image.size, dtype=np.float64)
    found = np.concatenate([corners.min(axis=0) / size, corners.max(axis=0) / size])
    assert np.abs(found - np.array(BOX)).max() < 0.03


def test_the_service_answers_the_crop_as_the_command_line_does(library: tuple[str, Path, Path]) -> None:
    from fastapi.testclient import TestClient

    from lookalike.server import ServerConfig, create_app

    url, original, crop = library
    folder = str(crop.parent / "server")
    app = create_app(ServerConfig(index_url=url, api_keys=("test-key-0123456789abcdef",), banks_dir=folder))
    with TestClient(base_url="http://localhost", app=app) as client:
        upload = {"file": ("crop.jpg", crop.read_bytes(), "application/octet-stream")}
        response = client.post("/v1/search", files=upload, data={"preset": "partial-copy"})
    assert response.status_code == 200, response.text
    assert [m["id"] for m in response.json()["matches"]] == [m["key"] for m in _search(url, crop)]
    assert [m["id"] for m in response.json()["matches"]] == [str(original)]


def test_a_changed_file_is_not_read(library: tuple[str, Path, Path]) -> None:
    """The same search after the original changed on disk (its mtime moved): the index's stored
    keypoints are all there is, and they do not verify the crop."""
    url, original, crop = library
    stat = original.stat()
    os.utime(original, (stat.st_atime, stat.st_mtime + 10))
    assert _search(url, crop) == []


def test_only_entries_made_from_their_unchanged_files_are_opened(
    library: tuple[str, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, original, crop = library
    with open_index(url) as index:
        entry = index.get(str(original))
        assert entry is not None and entry.origin == FROM_FILE
        assert indexed_file(entry) == str(original)
        assert indexed_file(replace(entry, origin=FROM_API)) is None  # a key a client chose
        assert indexed_file(replace(entry, origin=None)) is None
        assert indexed_file(replace(entry, byte_size=(entry.byte_size or 0) + 1)) is None
        # the same picture stored over the API under the file's key: searched, never opened
        stored = hash_file(original, default_index_hashes(), local=True, dihedral=True)
        hashes = {name: value for name, value in stored.items() if isinstance(value, Hash)}
        item = IndexItem(
            str(original), hashes, origin=FROM_API, local=stored.local, local_mirrored=stored.local_mirrored
        )
        index.add([item])
    opened: list[str] = []
    monkeypatch.setattr(pipeline, "local_features_of_file", lambda path, *_, **__: opened.append(path))
    assert _search(url, crop) == []
    assert opened == []


def _dupes(*args: str) -> list[set[str]]:
    """The groups `lookalike dupes --partial` prints, as sets of paths."""
    from typer.testing import CliRunner

    from lookalike.cli.app import app

    result = CliRunner().invoke(app, ["dupes", *args, "--partial", "--json", "--no-progress"])
    assert result.exit_code == 0, result.output
    groups = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return [{str(member["path"]) for member in group["members"]} for group in groups]


def test_a_duplicate_search_finds_the_crop_from_both_files(library: tuple[str, Path, Path]) -> None:
    """Both pictures stored: neither side's stored keypoints verify the pair, both files do; once
    either file has changed on disk, the pair is not found."""
    url, original, crop = library
    with open_index(url) as index:
        index.add_files([str(crop)], local=True, dihedral=True, workers=1)
    assert _dupes("--index", url) == [{str(original), str(crop)}]
    stat = crop.stat()
    os.utime(crop, (stat.st_atime, stat.st_mtime + 10))
    assert _dupes("--index", url) == []


def test_a_folder_checked_without_an_index_finds_the_crop(library: tuple[str, Path, Path]) -> None:
    _, original, crop = library
    moved = Path(shutil.move(crop, original.parent / "crop.jpg"))
    assert _dupes(str(original.parent)) == [{str(original), str(moved)}]


INSET, BACKDROP, INSET_SCALE = 26, 22, 0.45  # a photo pasted at 45% of its size into another


def _picture_in_picture(into: Path) -> Path:
    """Photo INSET at INSET_SCALE of its size, pasted into photo BACKDROP near its top left with
    soft edges (no border for region proposals to find: only keypoints can)."""
    with Image.open(COMMITTED_PHOTOS[INSET]) as image:
        photo = image.convert("RGB")
    with Image.open(COMMITTED_PHOTOS[BACKDROP]) as image:
        canvas = image.convert("RGB").resize(photo.size)
    inset = photo.resize((round(photo.width * INSET_SCALE), round(photo.height * INSET_SCALE)))
    edge = max(4, inset.width // 12)
    mask = Image.new("L", inset.size, 0)
    mask.paste(255, (edge, edge, inset.width - edge, inset.height - edge))
    mask = mask.filter(ImageFilter.GaussianBlur(edge / 2))
    canvas.paste(inset, (round(photo.width * 0.1), round(photo.height * 0.15)), mask)
    canvas.save(into, quality=92)
    return into


def test_a_picture_in_picture_fits_on_its_files_and_not_even_nearly_on_compact_keypoints(
    tmp_path: Path,
) -> None:
    """The premise of a wide duplicate search's look: 112 keypoints spread over each frame hold
    too few of the inset's, at its scale, to come near (no second look for a near miss), while
    every keypoint of both files fits."""
    copy = _picture_in_picture(tmp_path / "pip.jpg")
    with Image.open(copy) as image:
        composite = extract(np.asarray(image.convert("L")))
    with Image.open(COMMITTED_PHOTOS[INSET]) as image:
        photo = extract(np.asarray(image.convert("L")))
    for query, stored in ((composite.compact(), photo.compact()), (photo.compact(), composite.compact())):
        near = verify_near(query, stored, near_from=NEAR_INLIERS)[1]
        assert near is None or not worth_a_look(near)
    assert verify(composite, photo, min_inliers=10) is not None


def test_a_partial_duplicate_search_groups_a_picture_in_picture_through_its_files(tmp_path: Path) -> None:
    """`lookalike dupes --partial` looks at each picture's pair that shares most descriptors
    with it, on the files, when its compact keypoints fit none: the inset's photo and the
    composite are one group, the other photos none."""
    folder = tmp_path / "photos"
    folder.mkdir()
    photo = Path(shutil.copy(COMMITTED_PHOTOS[INSET], folder))
    for other in (1, 9, 30):
        shutil.copy(COMMITTED_PHOTOS[other], folder)
    copy = _picture_in_picture(folder / "pip.jpg")
    assert _dupes(str(folder)) == [{str(photo), str(copy)}]


def _counted_files() -> tuple[Callable[..., dict[int, tuple[LocalFeatures, None]]], list[int]]:
    """Files at hand that all hold PHOTO's keypoints, and the list of entries read, in order."""
    with Image.open(COMMITTED_PHOTOS[PHOTO]) as image:
        full = extract(np.asarray(image.convert("L")))
    read: list[int] = []

    def at_hand(ids: np.ndarray, *, mirrored: bool = False) -> dict[int, tuple[LocalFeatures, None]]:
        read.append(int(ids[0]))
        return {int(ids[0]): (full, None)}

    return at_hand, read


def test_a_look_for_a_pair_without_a_near_miss_keeps_to_the_budget() -> None:
    at_hand, read = _counted_files()

    looks = SecondLook(at_hand, budget=1)
    assert looks.look_stored(0, 1, 2, False, 10) is not None
    assert looks.look_stored(1, 3, 4, False, 10) is None  # over the batch's budget: nothing read
    assert read == [1, 2]


def test_a_duplicate_searchs_batch_takes_no_more_looks_than_its_budget() -> None:
    at_hand, read = _counted_files()

    close = NearMiss(NEAR_INLIERS)
    looks = SecondLook(at_hand, budget=1)
    assert looks.verify_stored(0, 1, 2, close, 10) is not None  # both files read, the pair verified
    assert looks.verify_stored(1, 3, 4, close, 10) is None  # over the batch's budget: nothing read
    assert read == [1, 2]
    assert SecondLook(at_hand).verify_stored(0, 5, 6, NearMiss(40, in_place=True), 10) is None
    assert SecondLook(at_hand).verify_stored(0, 5, 6, NearMiss(NEAR_INLIERS - 1), 10) is None
    assert read == [1, 2]


def test_a_verified_crop_has_moved_and_two_screenshots_verified_on_their_bars_lie_in_place() -> None:
    """A verified alignment says whether its inliers lie in place: a crop's never do; two
    screenshots of different photos in one app can verify on the app's bars, in place, and are
    then not taken as partial copies (`stage.verify_near_misses`)."""
    with Image.open(COMMITTED_PHOTOS[PHOTO]) as image:
        gray = np.asarray(image.convert("L"))
    height, width = gray.shape
    crop = gray[
        round(BOX[1] * height) : round(BOX[3] * height), round(BOX[0] * width) : round(BOX[2] * width)
    ]
    of_crop = verify(extract(np.ascontiguousarray(crop)), extract(gray), min_inliers=10)
    assert of_crop is not None and not of_crop.in_place
    of_bars = verify(extract(_chat_screenshot(9)), extract(_chat_screenshot(PHOTO)), min_inliers=10)
    assert of_bars is not None and of_bars.in_place


def test_each_file_is_read_once_a_batch_and_not_when_the_other_is_missing() -> None:
    with Image.open(COMMITTED_PHOTOS[PHOTO]) as image:
        full = extract(np.asarray(image.convert("L")))
    read: list[tuple[int, bool]] = []

    def at_hand(ids: np.ndarray, *, mirrored: bool = False) -> dict[int, tuple[LocalFeatures, None]]:
        read.append((int(ids[0]), mirrored))
        return {} if int(ids[0]) == 9 else {int(ids[0]): (full, None)}

    looks = SecondLook(at_hand)
    assert looks.verify_stored(0, 1, 2, NearMiss(NEAR_INLIERS, mirrored=True), 10) is not None
    assert looks.verify_stored(1, 2, 1, NearMiss(NEAR_INLIERS), 10) is not None  # both read already
    assert looks.verify_stored(2, 9, 3, NearMiss(NEAR_INLIERS), 10) is None  # its own file is gone
    assert read == [(1, True), (2, False), (9, False)]


def test_the_services_duplicate_search_groups_the_crop_as_the_command_line_does(
    library: tuple[str, Path, Path],
) -> None:
    from fastapi.testclient import TestClient

    from lookalike.server import ServerConfig, create_app

    url, original, crop = library
    with open_index(url) as index:
        index.add_files([str(crop)], local=True, dihedral=True, workers=1)
    folder = str(crop.parent / "server")
    app = create_app(ServerConfig(index_url=url, api_keys=("test-key-0123456789abcdef",), banks_dir=folder))
    with TestClient(base_url="http://localhost", app=app) as client:
        response = client.get("/v1/duplicates", params={"preset": "partial-copy"})
    assert response.status_code == 200, response.text
    groups = [{str(member["id"]) for member in group["members"]} for group in response.json()["groups"]]
    assert groups == _dupes("--index", url) == [{str(original), str(crop)}]
