"""Duplicate search with variants on chDB stays within a memory ceiling and finds what SQLite finds.

Before the candidate stage, a batch search put every query variant into constant arrays that
ClickHouse materialised per block: 1,000 queries with variants over 5,000 stored entries asked for
23 GB. Here 4,000 photo-like images (real photos' hashes and variants, and synthetic images made
from them with 35% of their bits flipped, as `bench/scale.py` makes them) are searched with their
variants on chDB and on SQLite, each in a fresh process whose peak resident memory is its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import ImageOps

import lookalike
from conftest import COMMITTED_PHOTOS, committed_rgb
from lookalike.benchmarks.scale import RealHashes, make_collection
from lookalike.matcher import PRESETS, Matcher

RULE = PRESETS["near-duplicate"].split(" or local")[0]  # what the hashes decide, at scale
IMAGES = 4000
PLANTED_PHOTOS = 20
# The bound for 100,000 images (2 GB); here 4,000 peak at 0.6-0.8 GB on 2 cores, 1.7 GB
# once on a larger CI machine. chDB's library alone is a few hundred MB; the old search needed 23 GB.
CEILING_MB = 2000


def real_hashes(folder: Path) -> RealHashes:
    """The rule's hashes and variants of the committed photos and two copies of each."""
    algorithms = Matcher.parse(RULE).algorithms
    results, photo, original = [], [], []
    for number, path in enumerate(COMMITTED_PHOTOS):
        picture = committed_rgb(path, 480)
        copies = {"": picture, "-mirrored": ImageOps.mirror(picture)}
        copies["-small"] = picture.resize((picture.width // 2, picture.height // 2))
        for suffix, image in copies.items():
            saved = folder / f"{path.stem}{suffix}.jpg"
            image.save(saved, quality=90)
            results.append(lookalike.hash_file(saved, algorithms, dihedral=True))
            photo.append(number)
            original.append(suffix == "")
    words, variants, quality = {}, {}, {}
    for algorithm in algorithms:
        hashes = [result[algorithm] for result in results]
        words[algorithm] = np.stack([h.words() for h in hashes])
        variants[algorithm] = np.stack([np.stack([v.words() for v in h.variants or (h,)]) for h in hashes])
        quality[algorithm] = np.array(
            [np.nan if h.quality is None else h.quality for h in hashes], np.float32
        )
    return RealHashes(
        tuple(algorithms), words, variants, quality, np.array(photo), np.array(original, dtype=bool)
    )


def search_in_fresh_process(backend: str, hashes: Path, folder: Path) -> dict[str, object]:
    """Run `_search` in a new interpreter: its peak resident memory is the search's alone."""
    here = Path(__file__)
    script = f"import sys; sys.path.insert(0, {str(here.parent)!r}); import {here.stem} as t; t._search()"
    done = subprocess.run(
        [sys.executable, "-c", script, backend, str(hashes), str(folder)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _search() -> None:
    """The child's job: fill an index with the collection, search it with variants, report pairs
    and peak memory."""
    import resource

    from lookalike.dedupe.pairs import rule_pairs
    from lookalike.index import open_index

    backend, hashes, folder = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    with np.load(hashes) as saved:
        algorithms = tuple(str(a) for a in saved["algorithms"])
        real = RealHashes(
            algorithms,
            {a: saved[f"words-{a}"] for a in algorithms},
            {a: saved[f"variants-{a}"] for a in algorithms},
            {a: saved[f"quality-{a}"] for a in algorithms},
            saved["photo"],
            saved["original"],
        )
    collection = make_collection(real, IMAGES, PLANTED_PHOTOS)
    url = f"sqlite:///{folder / 'index.db'}" if backend == "sqlite" else f"chdb://{folder / 'chdb'}"
    with open_index(url) as index:
        keys = collection.keys(0, IMAGES)
        for algorithm, (words, quality) in collection.hashes(0, IMAGES, False).items():
            scores = [None if q != q else int(q) for q in quality.tolist()]
            index.add_words(keys, algorithm, words, words.shape[1] * 64, scores)
        found = index.ids_by_key(keys)
        ids = np.array([found[key] for key in keys], dtype=np.int64)
        pairs = rule_pairs(index, RULE, queries=collection.batches(1000, True, ids))
        named = sorted(
            sorted((pairs.entries[a].key, pairs.entries[b].key))
            for a, b in zip(pairs.first.tolist(), pairs.second.tolist(), strict=True)
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"pairs": named, "peak_mb": peak}))


@pytest.mark.slow
def test_duplicate_search_with_variants_on_chdb_stays_under_a_memory_ceiling(tmp_path: Path) -> None:
    real = real_hashes(tmp_path)
    saved = tmp_path / "real.npz"
    arrays = {"algorithms": np.array(real.algorithms), "photo": real.photo, "original": real.original}
    for algorithm in real.algorithms:
        arrays[f"words-{algorithm}"] = real.words[algorithm]
        arrays[f"variants-{algorithm}"] = real.variants[algorithm]
        arrays[f"quality-{algorithm}"] = real.quality[algorithm]
    np.savez(saved, **arrays)  # type: ignore[arg-type]
    for part in ("c", "s"):
        (tmp_path / part).mkdir()
    on_chdb = search_in_fresh_process("chdb", saved, tmp_path / "c")
    on_sqlite = search_in_fresh_process("sqlite", saved, tmp_path / "s")
    assert on_chdb["pairs"] == on_sqlite["pairs"]
    planted = {tuple(p) for p in on_sqlite["pairs"]}  # type: ignore[union-attr]
    assert len(planted) >= 2 * PLANTED_PHOTOS  # the copies were found (3 images a photo: 3 pairs)
    assert float(on_chdb["peak_mb"]) < CEILING_MB, on_chdb  # type: ignore[arg-type]
