"""The hash cache: a second run over unchanged files decodes nothing; any change is a miss."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import lookalike
import lookalike.pipeline
from conftest import COMMITTED_PHOTOS
from lookalike.errors import ImageError
from lookalike.hash_cache import CacheKey, HashCache, default_cache_path
from lookalike.pipeline import HashOptions, HashResult


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    photos = tmp_path / "photos"
    photos.mkdir()
    for source in COMMITTED_PHOTOS[:6]:
        shutil.copy2(source, photos / source.name)
    return photos


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the images decoded in this process (hash_files with workers=1 runs in-process)."""
    seen: list[str] = []
    real: Callable[..., Any] = lookalike.pipeline.decode

    def counting(source: Any, **kwargs: Any) -> Any:
        seen.append(str(kwargs.get("name")))
        return real(source, **kwargs)

    monkeypatch.setattr(lookalike.pipeline, "decode", counting)
    return seen


def run(folder: Path, cache: HashCache, **options: Any) -> dict[str, HashResult | ImageError]:
    paths = sorted(str(p) for p in folder.iterdir())
    return dict(
        lookalike.hash_files(
            paths,
            options.pop("hashes", ["ahash", "colorhash"]),
            cache=cache,
            workers=options.pop("workers", 1),
            **options,
        )
    )


def test_second_run_over_an_unchanged_folder_decodes_nothing(
    folder: Path, tmp_path: Path, decodes: list[str]
) -> None:
    with HashCache(tmp_path / "cache.sqlite") as cache:
        first = run(folder, cache)
    assert len(decodes) == 6 and not any(r.cached for r in first.values() if isinstance(r, HashResult))
    decodes.clear()
    with HashCache(tmp_path / "cache.sqlite") as cache:
        second = run(folder, cache)
        assert cache.hits == 6 and cache.misses == 0
    assert decodes == []
    for path, result in second.items():
        assert isinstance(result, HashResult) and result.cached
        before = first[path]
        assert isinstance(before, HashResult)
        assert dict(result) == dict(before)
        assert (result.sha256, result.width, result.height, result.format, result.byte_size) == (
            before.sha256,
            before.width,
            before.height,
            before.format,
            before.byte_size,
        )


def test_a_changed_file_is_decoded_again_and_only_that_one(
    folder: Path, tmp_path: Path, decodes: list[str]
) -> None:
    with HashCache(tmp_path / "cache.sqlite") as cache:
        run(folder, cache)
    changed = sorted(folder.iterdir())[2]
    info = changed.stat()
    os.utime(changed, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
    decodes.clear()
    with HashCache(tmp_path / "cache.sqlite") as cache:
        run(folder, cache)
    assert decodes == [str(changed)]


@pytest.mark.parametrize(
    "change",
    [
        {"mode": "exact"},
        {"orientation": False},
        {"dihedral": True},
        {"hashes": ["ahash", "colorhash", "phash"]},
        {"hashes": ["ahash:16", "colorhash"]},
    ],
    ids=str,
)
def test_other_settings_miss_the_cache(
    folder: Path, tmp_path: Path, decodes: list[str], change: dict[str, Any]
) -> None:
    with HashCache(tmp_path / "cache.sqlite") as cache:
        run(folder, cache)
        decodes.clear()
        run(folder, cache, **dict(change))
    assert len(decodes) == 6


def test_aliases_share_entries_and_results_keep_the_callers_names(
    folder: Path, tmp_path: Path, decodes: list[str]
) -> None:
    with HashCache(tmp_path / "cache.sqlite") as cache:
        run(folder, cache, hashes=["ahash", "colorhash"])
        decodes.clear()
        again = run(folder, cache, hashes=["average_hash", "colour_hash"])
    assert decodes == []
    assert all(
        isinstance(r, HashResult) and set(r) == {"average_hash", "colour_hash"} for r in again.values()
    )


def test_variants_quality_and_crop_resistant_hashes_survive_the_cache(folder: Path, tmp_path: Path) -> None:
    hashes = ["phash", "crop_resistant"]
    with HashCache(tmp_path / "cache.sqlite") as cache:
        fresh = run(folder, cache, hashes=hashes, dihedral=True)
    with HashCache(tmp_path / "cache.sqlite") as cache:
        cached = run(folder, cache, hashes=hashes, dihedral=True)
    for path, result in cached.items():
        before = fresh[path]
        assert isinstance(result, HashResult) and isinstance(before, HashResult) and result.cached
        assert result["phash"] == before["phash"]
        assert result["phash"].variants == before["phash"].variants  # type: ignore[union-attr]
        assert str(result["crop_resistant"]) == str(before["crop_resistant"])


def test_worker_processes_answer_from_the_cache_too(folder: Path, tmp_path: Path) -> None:
    with HashCache(tmp_path / "cache.sqlite") as cache:
        first = run(folder, cache, workers=2)
    with HashCache(tmp_path / "cache.sqlite") as cache:
        second = run(folder, cache, workers=2)
        assert cache.hits == 6
    assert all(isinstance(r, HashResult) and r.cached and r.cpu_seconds is None for r in second.values())
    assert {p: dict(r) for p, r in first.items() if isinstance(r, HashResult)} == {
        p: dict(r) for p, r in second.items() if isinstance(r, HashResult)
    }


def test_failures_are_not_cached(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_text("no image here")
    with HashCache(tmp_path / "cache.sqlite") as cache:
        list(lookalike.hash_files([str(bad)], workers=1, cache=cache))
        assert len(cache) == 0


def test_key_is_the_absolute_path_size_mtime_and_settings(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(folder)
    name = sorted(os.listdir(folder))[0]
    key = CacheKey.for_file(name, HashOptions.build(["ahash"]))
    assert key is not None
    info = os.stat(folder / name)
    assert (key.path, key.size, key.mtime_ns) == (str(folder / name), info.st_size, info.st_mtime_ns)
    assert "fast" in key.settings and "ahash" in key.settings
    assert CacheKey.for_file("missing.jpg", HashOptions.build(["ahash"])) is None


def test_default_location_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LOOKALIKE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_path() == tmp_path / "xdg" / "lookalike" / "hashes.sqlite"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_path() == tmp_path / "home" / ".cache" / "lookalike" / "hashes.sqlite"
    monkeypatch.setenv("LOOKALIKE_CACHE_DIR", str(tmp_path / "mine"))
    assert default_cache_path() == tmp_path / "mine" / "hashes.sqlite"


class DictStore:
    """A ResultStore of one's own (as an index may keep results), remembering by path."""

    def __init__(self) -> None:
        self.results: dict[str, HashResult] = {}
        self.closed = 0

    def lookup(self, path: str) -> HashResult | None:
        return self.results.get(path)

    def store(self, path: str, result: HashResult) -> None:
        self.results[path] = result

    def forget(self, path: str) -> None:
        pass

    def close(self) -> None:
        self.closed += 1


def test_any_result_store_can_serve_as_the_cache(folder: Path, decodes: list[str]) -> None:
    store = DictStore()
    paths = sorted(str(p) for p in folder.iterdir())
    first = dict(lookalike.hash_files(paths, ["ahash"], workers=1, cache=store))
    assert len(decodes) == 6 and set(store.results) == set(paths) and store.closed == 1
    decodes.clear()
    second = dict(lookalike.hash_files(paths, ["ahash"], workers=1, cache=store))
    assert decodes == [] and second == first


def test_a_revised_algorithm_misses_entries_made_before_its_revision() -> None:
    """An algorithm whose output changed (a higher `revision`) must not be served stale hashes."""
    import dataclasses

    from lookalike.algorithms.registry import get_algorithm
    from lookalike.hash_cache import settings_fingerprint

    options = HashOptions.build(["phash", "ahash"])
    specs = tuple(
        dataclasses.replace(spec, algorithm=dataclasses.replace(spec.algorithm, revision=7))
        if spec.key == "phash"
        else spec
        for spec in options.specs
    )
    revised = settings_fingerprint(dataclasses.replace(options, specs=specs))
    assert revised != settings_fingerprint(options) and "phash#r7" in revised
    crops = f"phash_eq_crops#r{get_algorithm('phash_eq_crops').revision}"
    assert crops in settings_fingerprint(HashOptions.build(["phash_eq_crops"]))


def test_a_duplicate_search_after_index_add_decodes_nothing(
    folder: Path, tmp_path: Path, decodes: list[str]
) -> None:
    """`lookalike index add` then `lookalike dupes --index`: the search needs each image's
    variants, which the index does not store; they come from what `index add` cached, although
    the preset reads fewer algorithms than the index stores."""
    from lookalike.dedupe.collection import complete_queries
    from lookalike.matcher import DEFAULT_PRESET, Matcher, default_index_hashes

    rule = Matcher.preset(DEFAULT_PRESET)
    assert set(rule.algorithms) < set(default_index_hashes())
    paths = sorted(str(p) for p in folder.iterdir())
    with lookalike.open_index(tmp_path / "i.db") as index, HashCache(tmp_path / "c.sqlite") as cache:
        index.add_files(paths, default_index_hashes(), workers=1, cache=cache, dihedral=True)
        assert len(decodes) == len(paths)
        decodes.clear()
        queries: dict[str, Any] = {}
        assert complete_queries(index, paths, queries, list(rule.algorithms), workers=1, cache=cache) == []
        assert decodes == [] and set(queries) == set(paths)
        for path in paths:  # the queries are the stored hashes, with their variants
            stored = index.get(path)
            assert stored is not None and queries[path]["phash_eq"] == stored.hashes["phash_eq"]
            assert queries[path]["phash_eq_crops"].variants


def test_the_pictures_found_inside_an_image_survive_the_cache(tmp_path: Path) -> None:
    """A stored composite says where an original lies in it from the boxes of its pictures, so a
    cached result must carry them as a fresh one does; a record made before they were kept is a
    miss for `phash_eq_regions`."""
    from lookalike.benchmarks.partial import collage
    from lookalike.hash_cache import decode_result, encode_result

    photos = [Image.open(path).convert("RGB").resize((480, 360)) for path in COMMITTED_PHOTOS[:4]]
    folder = tmp_path / "composites"
    folder.mkdir()
    collage(photos[0], 3, photos[1:]).save(folder / "collage.png")
    with HashCache(tmp_path / "cache.sqlite") as cache:
        fresh = run(folder, cache, hashes=["phash_eq_regions"], dihedral=True)
    with HashCache(tmp_path / "cache.sqlite") as cache:
        cached = run(folder, cache, hashes=["phash_eq_regions"], dihedral=True)
    (path, result), before = next(iter(cached.items())), next(iter(fresh.values()))
    assert isinstance(result, HashResult) and isinstance(before, HashResult) and result.cached
    assert len(before.regions) >= 4 and result.regions == before.regions
    options = HashOptions.build(["phash_eq_regions"], dihedral=True)
    text = encode_result(before, options).replace('"regions":', '"older":')
    assert decode_result(text, path, options) is None


def test_a_searchs_keypoints_survive_the_cache_whole_and_an_index_gets_its_compact_set(
    folder: Path, tmp_path: Path, decodes: list[str]
) -> None:
    """`local="query"` results keep all their keypoints and the finer set; `local=True` (what an
    index stores) keeps the compact 96; neither answers for the other."""
    import numpy as np

    from lookalike.local.features import STORED_KEYPOINTS

    with HashCache(tmp_path / "cache.sqlite") as cache:
        fresh = run(folder, cache, hashes=["phash"], local="query")
        run(folder, cache, hashes=["phash"], local=True)
        assert len(decodes) == 12  # the two settings do not share entries
        decodes.clear()
        cached = run(folder, cache, hashes=["phash"], local="query")
        stored = run(folder, cache, hashes=["phash"], local=True)
        assert decodes == []
    for path, result in cached.items():
        before, compact = fresh[path], stored[path]
        assert isinstance(result, HashResult) and isinstance(before, HashResult) and result.cached
        assert isinstance(compact, HashResult) and compact.local is not None and compact.local.finer is None
        assert len(compact.local) <= STORED_KEYPOINTS
        assert result.local is not None and before.local is not None and before.local.finer is not None
        assert np.array_equal(result.local.descriptors, before.local.descriptors)
        assert result.local.finer is not None
        assert np.array_equal(result.local.finer.descriptors, before.local.finer.descriptors)
        assert len(result.local.finer) > len(result.local) > STORED_KEYPOINTS
