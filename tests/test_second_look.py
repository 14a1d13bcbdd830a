"""A search's second look: a heavy crop whose original's stored keypoints are too few is verified
against every keypoint of the original's file, when `index add` made the entry from that file and
the file is unchanged; no other file is ever opened."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import COMMITTED_PHOTOS
from lookalike import pipeline
from lookalike.hash import Hash
from lookalike.index import IndexItem, open_index
from lookalike.index.base import FROM_API, FROM_FILE
from lookalike.local.at_hand import indexed_file
from lookalike.local.features import extract, mirrored
from lookalike.local.second_look import NEAR_INLIERS
from lookalike.local.verify import near_inliers, verify
from lookalike.matcher import default_index_hashes
from lookalike.pipeline import hash_file

PHOTO = 16  # a hammer on white; the crop below keeps a third of it, off centre
BOX = (0.09, 0.15, 0.61, 0.78)  # left, top, right, bottom as shares of the side
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
    assert near_inliers(query, whole.compact(), query_mirrored) >= NEAR_INLIERS
    assert verify(query, whole, query_mirrored, min_inliers=10) is not None


@pytest.mark.parametrize("other", OTHERS)
def test_a_different_photo_does_not_come_close(other: int) -> None:
    with Image.open(COMMITTED_PHOTOS[PHOTO]) as image:
        query = extract(np.asarray(image.convert("L")), finer=True)
    with Image.open(COMMITTED_PHOTOS[other]) as image:
        stored = extract(np.asarray(image.convert("L"))).compact()
    assert near_inliers(query, stored) < NEAR_INLIERS


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
    monkeypatch.setattr(pipeline, "local_features_of_file", lambda path, limits=None: opened.append(path))
    assert _search(url, crop) == []
    assert opened == []
