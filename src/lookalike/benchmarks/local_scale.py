"""Partial-copy retrieval at collection scale: which stored images a copy's local features nominate
among N stored ones, how fast, and whether its original is among them.

An index of a million photos holds 112 million stored keypoints; `lookalike.local.retrieval`'s
votes must find a picture in picture's original among them. Real photos give the planted
originals (`../shared/photos`, each stored as an index stores it) and their real copies are the
queries (the partial-copy families of the accuracy corpus, each with a search's 1,000 keypoints,
its finer set and its mirror image, as `lookalike search` computes them). The rest of the
collection is synthetic: each synthetic image is a real photo's stored compact set (another
photo's than any query's) with a share of every descriptor's bits flipped (`synthetic_sets`),
its keypoints where they were. The key tables hold every stored descriptor as an index holds them
(`local.keypoint_tables.KeypointTables`: keys and signatures), and each query runs the production
candidate stage (`candidates.stage.local_candidates`) against them, then geometric verification
of what it nominated (`local.verify.verify_near`).

Reported per N: the query's retrieval time (median and 95th percentile), the postings its probes
enumerate, the share of copies whose original is nominated (candidate recall) and verified
(recall), per family, and verified matches that are neither the original nor a photo the copy
shows (wrong matches).
"""

from __future__ import annotations

import functools
import hashlib
import pickle
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lookalike.benchmarks import corpus
from lookalike.benchmarks import transforms as transform_registry
from lookalike.benchmarks.accuracy import other_half
from lookalike.benchmarks.scale import splitmix
from lookalike.local.features import LOCAL_REVISION, STORED_KEYPOINTS, LocalFeatures

Ids = npt.NDArray[np.int64]
Sides = tuple[LocalFeatures | None, LocalFeatures | None]

FAMILY_TRANSFORMS = ("pip", "crop_uneven_heavy", "screenshot_chat", "screenshot", "collage")
SYNTHETIC_FLIP = 0.3125  # share of a synthetic descriptor's bits flipped from its source's
SYNTHETIC_BASE = 1 << 20  # synthetic ids start here, real ones below
CHUNK = 8192  # synthetic images made at a time


@dataclass(frozen=True)
class RealSet:
    """Stored compact sets of real photos (by photo number), and copies as queries."""

    stored: dict[int, tuple[LocalFeatures, LocalFeatures | None]]
    detected: dict[int, LocalFeatures]  # every photo's keypoints as a query has them (1,000)
    queries: list[Sides]
    query_photos: list[tuple[int, ...]]  # the photo each copy shows first, then its donors
    query_families: list[str]


def real_set(
    photos_dir: Path,
    cache_dir: Path,
    sample: int,
    transform_names: Sequence[str] = FAMILY_TRANSFORMS,
    seed: int = 1,
    workers: int = 2,
) -> RealSet:
    """Every photo's stored compact set and a sample's copies as queries, hashed once and kept
    in the accuracy cache (`local-scale-*.pkl`, named by what made it)."""
    from lookalike.pipeline import hash_files

    photos = corpus.find_photos(photos_dir)
    tune, test = corpus.split_photos(photos)
    chosen = transform_registry.select(transform_names)
    layout = corpus.CorpusLayout(cache_dir, 512, "jpeg")
    images = corpus.build_corpus(photos, layout, chosen, workers, donor_pool=other_half(tune, test))
    picked = set(
        np.random.default_rng(seed).choice(sorted(test), min(sample, len(test)), replace=False).tolist()
    )
    originals = [i for i in images if i.transform is None]
    copies = [i for i in images if i.transform is not None and i.photo in picked]
    signature = repr((2, LOCAL_REVISION, sorted(transform_names), sample, seed, len(originals), len(copies)))
    memo = layout.folder / f"local-scale-{hashlib.sha1(signature.encode()).hexdigest()[:12]}.pkl"
    if memo.exists():
        loaded: RealSet = pickle.loads(memo.read_bytes())
        return loaded
    stored: dict[int, tuple[LocalFeatures, LocalFeatures | None]] = {}
    detected: dict[int, LocalFeatures] = {}
    photo_of = {str(i.path): i.photo for i in originals}
    for path, result in hash_files(list(photo_of), ("ahash",), local=True, dihedral=True, workers=workers):
        if not isinstance(result, Exception) and result.local is not None:
            mirrored = None if result.local_mirrored is None else result.local_mirrored.compact()
            stored[photo_of[path]] = (result.local.compact(), mirrored)
            detected[photo_of[path]] = result.local
    queries: list[Sides] = []
    shown: list[tuple[int, ...]] = []
    families: list[str] = []
    family_of = {t.name: t.family for t in chosen}
    copy_of = {str(i.path): i for i in copies}
    for path, result in hash_files(list(copy_of), ("ahash",), local="query", dihedral=True, workers=workers):
        if isinstance(result, Exception) or result.local is None:
            continue
        image = copy_of[path]
        queries.append((result.local, result.local_mirrored))
        shown.append((image.photo, *image.donors))
        families.append(family_of[str(image.transform)])
    found = RealSet(stored, detected, queries, shown, families)
    memo.write_bytes(pickle.dumps(found))
    return found


def _flip_masks(counters: npt.NDArray[np.uint64], flip: float) -> npt.NDArray[np.uint64]:
    """Random 64-bit masks with about `flip` of their bits set, from independent draws combined
    bit by bit (x & (y | z & w) sets 5/16 of them, x & y a quarter, ...)."""
    draws = [splitmix(counters * np.uint64(5) + np.uint64(k)) for k in range(4)]
    if flip == 0.3125:
        return draws[0] & (draws[1] | (draws[2] & draws[3]))
    if flip == 0.25:
        return draws[0] & draws[1]
    if flip == 0.375:
        return draws[0] & (draws[1] | draws[2])
    if flip == 0.125:
        return draws[0] & draws[1] & draws[2]
    if flip == 0.0625:
        return draws[0] & draws[1] & draws[2] & draws[3]
    if flip == 0.5:
        return draws[0]
    raise ValueError(f"flip must be one of 0.0625, 0.125, 0.25, 0.3125, 0.375, 0.5, not {flip}")


@dataclass(frozen=True)
class SyntheticSets:
    """Synthetic stored images made from real sources, each id again from its id alone: a
    source's compact set (its first STORED_KEYPOINTS keypoints, `mixed=False`), or as many
    descriptors drawn from every keypoint of every source (`mixed=True`: the real descriptors'
    distribution, without a whole photo's likeness), `flip` of each descriptor's bits flipped;
    keypoints where the source's compact set has them."""

    sources: list[LocalFeatures]
    flip: float = SYNTHETIC_FLIP
    seed: int = 1
    mixed: bool = False

    @functools.cached_property
    def _pool(self) -> tuple[Ids, Ids, npt.NDArray[np.uint64]]:
        """Every source's keypoint count, first row, and all their descriptors as words."""
        from lookalike.local.retrieval import descriptor_words

        source_words = [descriptor_words(s) for s in self.sources]
        sizes = np.array([len(w) for w in source_words], dtype=np.int64)
        return sizes, np.concatenate([[0], np.cumsum(sizes)]), np.concatenate(source_words)

    def _source_of(self, ids: Ids) -> Ids:
        salt = np.uint64(self.seed) << np.uint64(40)
        picked: Ids = (splitmix(ids.astype(np.uint64) ^ salt) % np.uint64(len(self.sources))).astype(np.int64)
        return picked

    def words(self, ids: Ids, words: int = 4) -> tuple[Ids, npt.NDArray[np.uint64]]:
        """(owner id, first `words` big-endian descriptor words) of every keypoint of these ids,
        the layout the key tables read (two words hold the three keys)."""
        sizes, starts, whole = self._pool
        pool = whole[:, :words]
        chosen = self._source_of(ids)
        counts = np.minimum(sizes[chosen], STORED_KEYPOINTS)
        owners = np.repeat(ids, counts)
        keypoint = np.arange(len(owners)) - np.repeat(np.cumsum(counts) - counts, counts)
        counter = (owners.astype(np.uint64) << np.uint64(8)) | keypoint.astype(np.uint64)
        counter = (counter << np.uint64(3)) + (np.uint64(self.seed) << np.uint64(58))
        if self.mixed:
            rows = (splitmix(counter + np.uint64(7)) % np.uint64(len(pool))).astype(np.int64)
        else:
            rows = np.repeat(starts[chosen], counts) + keypoint
        taken = pool[rows]
        if self.flip:
            for word in range(words):
                taken[:, word] ^= _flip_masks(counter + np.uint64(word), self.flip)
        return owners, taken

    def features(self, ids: Ids) -> dict[int, LocalFeatures]:
        """The whole synthetic compact sets of these ids."""
        owners, words = self.words(ids)
        descriptors = words.astype(">u8").view(np.uint8).reshape(-1, 32)
        found: dict[int, LocalFeatures] = {}
        sources = self._source_of(ids)
        for identity, source in zip(ids.tolist(), sources.tolist(), strict=True):
            chosen = owners == identity
            base = self.sources[source].compact()
            found[identity] = LocalFeatures(base.points, np.ascontiguousarray(descriptors[chosen]), base.size)
        return found


def _stored_keypoints(
    real: dict[int, tuple[LocalFeatures, LocalFeatures | None]], synthetic: SyntheticSets, n: int, chunk: int
) -> Iterator[tuple[Ids, npt.NDArray[np.uint32], npt.NDArray[np.uint64]]]:
    """(owner id, (m, tables) descriptor keys, signatures) of every stored keypoint: the real
    photos', then N synthetic images' `chunk` images at a time (only the three words the keys
    and signatures read are made)."""
    from lookalike.local.retrieval import DESCRIPTOR_LAYOUT, descriptor_signatures, descriptor_words

    ids = np.array(sorted(real), dtype=np.int64)
    words = [descriptor_words(real[i][0]) for i in ids.tolist()]
    whole = np.concatenate(words)
    yield np.repeat(ids, [len(w) for w in words]), DESCRIPTOR_LAYOUT.keys(whole), descriptor_signatures(whole)
    for start in range(0, n, chunk):
        made = np.arange(start, min(n, start + chunk), dtype=np.int64) + SYNTHETIC_BASE
        owners, first_words = synthetic.words(made, words=3)
        padded = np.zeros((len(first_words), 4), dtype=np.uint64)
        padded[:, :3] = first_words
        yield owners, DESCRIPTOR_LAYOUT.keys(padded), descriptor_signatures(padded)


class ScaledSource:
    """The candidate stage's view of a collection: real photos (ids below SYNTHETIC_BASE) and N
    synthetic images, every stored descriptor in key tables as an index holds them."""

    index: Any = None  # a chDB index holding the rows instead of `tables` (`on_chdb`)

    def __init__(
        self, real: dict[int, tuple[LocalFeatures, LocalFeatures | None]], synthetic: SyntheticSets, n: int
    ):
        from lookalike.local.keypoint_tables import KeypointTables

        self.real = real
        self.synthetic = synthetic
        self.n = n
        self.tables = KeypointTables()
        parts = list(_stored_keypoints(real, synthetic, n, CHUNK))
        owners = np.concatenate([part[0] for part in parts])
        keys = np.concatenate([part[1] for part in parts])
        signatures = np.concatenate([part[2] for part in parts])
        del parts
        self.tables.add_keys(owners, keys, signatures)  # one sort, as a snapshot's rebuild does

    @classmethod
    def on_chdb(
        cls,
        real: dict[int, tuple[LocalFeatures, LocalFeatures | None]],
        synthetic: SyntheticSets,
        n: int,
        folder: Path,
    ) -> ScaledSource:
        """The same collection with its keypoint rows in a chDB index's `local_keypoints` (ids as row
        versions), probed by `ClickHouseIndex.nominate_local`: ClickHouse's own read of the keys."""
        from lookalike.index import open_index
        from lookalike.index.clickhouse import ClickHouseIndex
        from lookalike.index.clickhouse.index import keypoint_rows
        from lookalike.index.clickhouse.schema import LOCAL_KEY_TYPES

        source = cls.__new__(cls)
        source.real, source.synthetic, source.n = real, synthetic, n
        index = open_index(f"chdb://{folder}")
        assert isinstance(index, ClickHouseIndex)
        source.index = index
        for owners, keys, signatures in _stored_keypoints(real, synthetic, n, CHUNK * 8):
            index._insert(
                index._tables.local_keys(), keypoint_rows(owners, keys, signatures), LOCAL_KEY_TYPES
            )
        index._connection.execute(f"OPTIMIZE TABLE {index._tables.local_keys(True)} FINAL")
        return source

    def nominate_local(
        self, keys: npt.NDArray[np.uint32], tables: Ids, limit: int | None = None
    ) -> tuple[Ids, Ids, npt.NDArray[np.uint64]]:
        if self.index is not None:
            found: tuple[Ids, Ids, npt.NDArray[np.uint64]] = self.index.nominate_local(keys, tables, limit)
            return found
        return self.tables.probe_keys(keys, tables, limit)

    def stored_local(self, ids: Ids) -> dict[int, tuple[LocalFeatures, LocalFeatures | None]]:
        found = {int(i): self.real[int(i)] for i in ids.tolist() if int(i) in self.real}
        made = self.synthetic.features(ids[ids >= SYNTHETIC_BASE])
        found.update({i: (f, None) for i, f in made.items()})
        return found

    def local_at_hand(self, *args: object) -> None:
        return None


@dataclass(frozen=True)
class Outcome:
    """One query's retrieval: seconds, postings enumerated, and what it nominated and verified."""

    seconds: float
    verify_seconds: float  # verifying what it nominated (the same at any N)
    postings: int
    other_real: float  # postings per other real photo stored (not the query's), and per synthetic image
    per_synthetic: float
    nominated: bool
    verified: bool
    wrong: int


def run_queries(
    source: ScaledSource, real: RealSet, breadth: int, min_inliers: int, every_key: bool = False
) -> list[Outcome]:
    """Each copy through the candidate stage alone (no hash candidates), then verified. With
    `every_key`, keys held by COMMON_KEY keypoints are read too (the same candidates, slower):
    the postings then say how crowded the stored descriptors are, real and synthetic."""
    from lookalike.candidates.batch import QueryBatch
    from lookalike.candidates.stage import frames_coincide, local_candidates
    from lookalike.local.verify import verify_near

    empty = np.zeros(0, dtype=np.int64)
    counted = _CountingSource(source, every_key)
    outcomes: list[Outcome] = []
    for sides, shown in zip(real.queries, real.query_photos, strict=True):
        batch = QueryBatch(1, {}, None, [sides])
        counted.postings, counted.found = 0, []
        started = time.perf_counter()
        _, ids, stored = local_candidates(counted, batch, empty, empty, breadth)  # type: ignore[arg-type]
        seconds = time.perf_counter() - started
        verified: set[int] = set()
        started = time.perf_counter()
        query, mirrored = sides
        for entry in ids.tolist():
            held = stored.get(entry)
            if query is None or held is None:
                continue
            alignment, _ = verify_near(query, held[0], mirrored, min_inliers=min_inliers)
            if alignment is not None and not frames_coincide(alignment) and not alignment.in_place:
                verified.add(entry)
        verify_seconds = time.perf_counter() - started
        met = np.concatenate(counted.found) if counted.found else empty
        others = (met < SYNTHETIC_BASE) & ~np.isin(met, shown)
        synthetic = int((met >= SYNTHETIC_BASE).sum())
        outcomes.append(
            Outcome(
                seconds,
                verify_seconds,
                counted.postings,
                int(others.sum()) / max(1, len(set(source.real) - set(shown))),
                synthetic / max(1, source.n),
                shown[0] in set(ids.tolist()),
                shown[0] in verified,
                len(verified - set(shown)),
            )
        )
    return outcomes


class _CountingSource:
    """A source that counts the postings its key probes return."""

    def __init__(self, source: ScaledSource, every_key: bool) -> None:
        self.source = source
        self.every_key = every_key
        self.postings = 0
        self.found: list[Ids] = []

    def nominate_local(
        self, keys: npt.NDArray[np.uint32], tables: Ids, limit: int | None = None
    ) -> tuple[Ids, Ids, npt.NDArray[np.uint64]]:
        found = self.source.nominate_local(keys, tables, None if self.every_key else limit)
        self.postings += len(found[0])
        self.found.append(found[1])
        return found

    def stored_local(self, ids: Ids) -> dict[int, tuple[LocalFeatures, LocalFeatures | None]]:
        return self.source.stored_local(ids)


def summary(
    n: int, real: RealSet, outcomes: Sequence[Outcome], build_seconds: float, table_bytes: int
) -> str:
    """One markdown row: N, build, memory, time, postings, candidate recall, recall per family, wrong."""
    seconds = np.array([o.seconds for o in outcomes])
    postings = np.array([o.postings for o in outcomes])
    families = list(dict.fromkeys(real.query_families))
    cells = [
        f"{1000 * np.mean([o.other_real for o in outcomes]):,.0f}",
        f"{1000 * np.mean([o.per_synthetic for o in outcomes]):,.0f}",
    ]
    for family in families:
        chosen = [o for o, f in zip(outcomes, real.query_families, strict=True) if f == family]
        nominated = 100 * np.mean([o.nominated for o in chosen])
        verified = 100 * np.mean([o.verified for o in chosen])
        cells.append(f"{nominated:.1f} / {verified:.1f}")
    return (
        f"| {n:,} | {build_seconds:.0f} | {table_bytes / 2**20:,.0f} | {1000 * np.median(seconds):.0f} "
        f"| {1000 * np.percentile(seconds, 95):.0f} "
        f"| {1000 * np.median([o.verify_seconds for o in outcomes]):.0f} | {np.median(postings):,.0f} | "
        + " | ".join(cells)
        + f" | {sum(o.wrong for o in outcomes)} |"
    )


def header(real: RealSet) -> str:
    families = list(dict.fromkeys(real.query_families))
    return (
        "| stored images | build (s) | key tables (MB) | retrieval p50 (ms) | p95 (ms) "
        + "| verification p50 (ms) | postings p50 "
        + "| postings per 1,000 real | per 1,000 synthetic | "
        + " | ".join(f"{f}: nominated / verified (%)" for f in families)
        + " | wrong |\n|"
        + " ---: |" * (len(families) + 10)
    )


__all__ = ["STORED_KEYPOINTS", "RealSet", "ScaledSource", "SyntheticSets", "real_set"]
