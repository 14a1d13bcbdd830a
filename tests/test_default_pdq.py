"""PDQ is stored by default (with its quality): hex and hash-list searches work on a default index,
and an index built before PDQ was a default gains it on the next add."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

import lookalike
from conftest import COMMITTED_PHOTOS
from lookalike.cli.app import app
from lookalike.index import Index, open_index
from lookalike.matcher import default_index_hashes

runner = CliRunner()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Four photos and a half-size re-compressed copy of the first."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for photo in COMMITTED_PHOTOS[:4]:
        shutil.copy(photo, photos / photo.name)
    with Image.open(COMMITTED_PHOTOS[0]) as image:
        original = image.convert("RGB")
    original.resize((original.width // 2, original.height // 2)).save(photos / "small.jpg", quality=70)
    return photos


@pytest.fixture(params=["sqlite", "chdb"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Index]:
    url = f"sqlite:///{tmp_path / 'index.db'}" if request.param == "sqlite" else f"chdb://{tmp_path / 'chdb'}"
    with open_index(url) as opened:
        yield opened


def _paths(folder: Path) -> list[str]:
    return sorted(str(path) for path in folder.iterdir())


def test_pdq_is_among_the_default_index_hashes() -> None:
    assert "pdq" in default_index_hashes()


def test_a_default_add_stores_pdq_with_its_quality(folder: Path, index: Index) -> None:
    paths = _paths(folder)
    index.add_files(paths, workers=1)
    assert index.algorithm_bits()["pdq"] == 256
    for path in paths:
        entry = index.get(path)
        expected = lookalike.hash_file(path, ["pdq"])["pdq"]
        assert entry is not None and entry.hashes["pdq"] == expected
        assert entry.hashes["pdq"].quality == expected.quality is not None
    original = str(folder / COMMITTED_PHOTOS[0].name)
    query = lookalike.hash_file(original, ["pdq"])["pdq"]
    found = {match.key for match in index.range_search(query, "pdq", 31)}
    assert found >= {original, str(folder / "small.jpg")}


def test_an_index_made_without_pdq_gains_it_on_the_next_add(folder: Path, index: Index) -> None:
    paths = _paths(folder)
    before_pdq = [name for name in default_index_hashes() if name != "pdq"]  # the earlier default
    first = index.add_files(paths, before_pdq, workers=1)
    assert first.added == len(paths) and "pdq" not in index.algorithm_bits()
    second = index.add_files(paths, workers=1)
    assert second.updated == len(paths) and second.added == 0 and not second.failed
    for path in paths:
        entry = index.get(path)
        assert entry is not None and set(entry.hashes) >= set(default_index_hashes())
        assert entry.hashes["pdq"] == lookalike.hash_file(path, ["pdq"])["pdq"]
    third = index.add_files(paths, workers=1)
    assert third.unchanged == len(paths)


def test_pdq_hex_and_a_pdq_hash_list_search_a_default_cli_index(folder: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    added = runner.invoke(app, ["index", "add", str(folder), "--index", url, "--workers", "1"])
    assert added.exit_code == 0, added.output
    original = str(folder / COMMITTED_PHOTOS[0].name)
    pdq = str(lookalike.hash_file(original, ["pdq"])["pdq"])
    other = str(lookalike.hash_file(folder / COMMITTED_PHOTOS[2].name, ["pdq"])["pdq"])
    hash_list = [f"pdq={pdq}", other]  # a named and a bare 64-digit PDQ hex, as lists carry them
    result = runner.invoke(app, ["search", *hash_list, "--index", url, "--json", "--max-distance", "31"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [line["query"] for line in lines] == hash_list
    first = {match["key"] for match in lines[0]["matches"]}
    assert first >= {original, str(folder / "small.jpg")}
    assert lines[1]["matches"][0]["key"] == str(folder / COMMITTED_PHOTOS[2].name)
    assert lines[1]["matches"][0]["distances"]["pdq"] == 0
