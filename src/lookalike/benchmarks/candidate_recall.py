"""Candidate recall on the accuracy corpus: of the pairs a rule's exact plan accepts, how many the
candidate stage's keys find too.

Each half of the accuracy benchmark's photos (originals and their edited copies) is stored in an
index with the hashes the rule reads; every image is then searched for with its variants, once
through the candidate keys and once through the exact plan (range searches at the rule's radii),
and the two sets of accepted pairs are compared, overall and per edit family.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lookalike.benchmarks import transforms as transform_registry
from lookalike.benchmarks.corpus import CorpusLayout, build_corpus, find_photos, split_photos
from lookalike.benchmarks.hashers import HashTable
from lookalike.benchmarks.hashing import hash_all
from lookalike.benchmarks.scoring import make_pair_set
from lookalike.candidates.batch import QueryBatch, QueryHashes
from lookalike.candidates.judge import judge
from lookalike.candidates.keys import KeyLayout
from lookalike.candidates.plan import KeyProbe, probes_for
from lookalike.candidates.stage import candidate_pairs, probe_words
from lookalike.dedupe.pairs import rule_pairs
from lookalike.index.base import Index, open_index
from lookalike.matcher import Matcher

BATCH = 2000


@dataclass
class HalfResult:
    """One half of the corpus: accepted pairs by each plan and the time each took."""

    images: int
    exact_pairs: int
    found_pairs: int
    extra_pairs: int  # accepted through keys but not by the exact plan (should be 0)
    exact_seconds: float
    keys_seconds: float
    probes: int = 0  # key probes of every query (variants x key tables)
    candidates: int = 0  # (query, stored image) pairs the keys nominate, judged by the rule
    missed_by_family: dict[str, int] = field(default_factory=dict)
    exact_by_family: dict[str, int] = field(default_factory=dict)


@dataclass
class Corpus:
    """The accuracy corpus's images and the rule's hashes of each (row i = image i)."""

    tables: dict[str, HashTable]
    photo_of: list[int]
    transform_of: list[str]
    family_of: dict[str, str]  # transform name -> edit family
    halves: list[npt.NDArray[np.intp]]  # the rows of each half of the photos
    paths: list[str]


def load_corpus(
    photos_dir: Path,
    cache_dir: Path,
    rule: Matcher,
    *,
    max_side: int = 512,
    workers: int = 2,
    limit: int | None = None,
    log: Callable[[str], None] = print,
) -> Corpus:
    """The accuracy corpus (built and hashed on the first run, cached after)."""
    photos = find_photos(photos_dir)
    if limit:
        photos = photos[:limit]
    chosen = transform_registry.select(None)
    layout = CorpusLayout(cache_dir, max_side, "jpeg")
    images = build_corpus(photos, layout, chosen, workers)
    paths = [str(image.path) for image in images]
    tables, failures = hash_all(paths, layout.folder / "hashes", list(rule.algorithms), [], False, workers)
    for failure in failures:
        log(failure)
    tables = {name.partition(":")[2]: table for name, table in tables.items()}
    photo_of = [image.photo for image in images]
    transform_of = [image.transform or "" for image in images]
    halves = [make_pair_set(photo_of, transform_of, half).rows for half in split_photos(photos)]
    return Corpus(tables, photo_of, transform_of, {t.name: t.family for t in chosen}, halves, paths)


def measure(
    photos_dir: Path,
    cache_dir: Path,
    *,
    preset: str = "near-duplicate",
    backend: str = "sqlite",
    max_side: int = 512,
    workers: int = 2,
    limit: int | None = None,
    log: Callable[[str], None] = print,
) -> list[HalfResult]:
    """Candidate recall of `preset` on both halves of the accuracy corpus."""
    rule = Matcher.preset(preset)
    corpus = load_corpus(
        photos_dir, cache_dir, rule, max_side=max_side, workers=workers, limit=limit, log=log
    )
    results = []
    for rows in corpus.halves:
        with tempfile.TemporaryDirectory() as folder:
            url = f"{folder}/index.db" if backend == "sqlite" else f"chdb://{folder}/index"
            with open_index(url) as index:
                result = _measure_half(
                    index, rule, corpus.tables, rows, corpus.photo_of, corpus.transform_of, corpus.family_of
                )
        log(
            f"{result.images} images: exact plan {result.exact_pairs} pairs in {result.exact_seconds:.1f} s,"
            f" keys {result.found_pairs} ({_percent(result)}) in {result.keys_seconds:.1f} s,"
            f" extra {result.extra_pairs}"
        )
        results.append(result)
    return results


@dataclass
class DirectedPairs:
    """Pairs the rule accepts in one direction: query image `query[i]` (with its variants) against
    stored image `stored[i]` (rows of the corpus), with each algorithm's distance (-1: none)."""

    query: npt.NDArray[np.intp]
    stored: npt.NDArray[np.intp]
    distances: dict[str, npt.NDArray[np.int64]]


def exact_pairs(
    corpus: Corpus,
    rule: Matcher,
    rows: npt.NDArray[np.intp],
    cache: Path | None = None,
    log: Callable[[str], None] = print,
) -> DirectedPairs:
    """Every directed pair of `rows` the exact plan accepts on its hashes (range searches at the
    rule's radii), from `cache` when it holds them for the same rule and images."""
    digest = hashlib.sha256(json.dumps([str(rule), corpus.paths, rows.tolist()]).encode()).hexdigest()[:16]
    path = None if cache is None else cache / f"exact-pairs-{digest}.npz"
    if path is not None and path.is_file():
        with np.load(path) as saved:
            return DirectedPairs(
                saved["query"],
                saved["stored"],
                {name[9:]: saved[name] for name in saved.files if name.startswith("distance:")},
            )
    started = time.perf_counter()
    queries: list[npt.NDArray[np.intp]] = []
    stored: list[npt.NDArray[np.intp]] = []
    distances: dict[str, list[npt.NDArray[np.int64]]] = {}
    with tempfile.TemporaryDirectory() as folder, open_index(f"{folder}/index.db") as index:
        entry_ids, row_of_id = _store(index, rule, corpus.tables, rows)
        for batch in _batches(rule, corpus.tables, rows, entry_ids):
            found_rows, found_ids = candidate_pairs(index, batch, rule, exact=True)
            judged = judge(batch, found_rows, found_ids, rule, index.stored_hashes_many)
            accepted = judged.evaluation.accepted
            assert batch.ids is not None
            queries.append(row_of_id[batch.ids[judged.rows[accepted]]])
            stored.append(row_of_id[judged.ids[accepted]])
            for name, value in judged.distances.items():
                distances.setdefault(name, []).append(value[accepted])
    pairs = DirectedPairs(
        np.concatenate(queries), np.concatenate(stored), {k: np.concatenate(v) for k, v in distances.items()}
    )
    seconds = time.perf_counter() - started
    log(f"exact plan: {len(pairs.query)} directed pairs of {len(rows)} images in {seconds:.0f} s")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, npt.NDArray[np.generic]] = {"query": pairs.query, "stored": pairs.stored}
        arrays.update({f"distance:{k}": v for k, v in pairs.distances.items()})
        np.savez(path, **arrays)  # type: ignore[arg-type]
    return pairs


def _store(
    index: Index, rule: Matcher, tables: dict[str, HashTable], rows: npt.NDArray[np.intp]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.intp]]:
    """Store the images of `rows` with the rule's hashes: their entry ids, and the corpus row of
    each entry id."""
    keys = [str(int(row)) for row in rows]
    for algorithm in rule.algorithms:
        table = tables[algorithm]
        assert table.words is not None
        quality = None if table.quality is None else [None if q != q else int(q) for q in table.quality[rows]]
        index.add_words(keys, algorithm, table.words[rows], table.words.shape[1] * 64, quality)
    ids = index.ids_by_key(keys)
    entry_ids = np.array([ids[key] for key in keys], dtype=np.int64)
    row_of_id = np.full(int(entry_ids.max()) + 1, -1, dtype=np.intp)
    row_of_id[entry_ids] = rows
    return entry_ids, row_of_id


def _batches(
    rule: Matcher, tables: dict[str, HashTable], rows: npt.NDArray[np.intp], entry_ids: npt.NDArray[np.int64]
) -> Iterator[QueryBatch]:
    """The images of `rows` as queries with their variants, in batches."""
    for start in range(0, len(rows), BATCH):
        yield _batch(rule, tables, rows[start : start + BATCH], entry_ids[start : start + BATCH])


def _batch(
    rule: Matcher, tables: dict[str, HashTable], rows: npt.NDArray[np.intp], entry_ids: npt.NDArray[np.int64]
) -> QueryBatch:
    """The images of `rows` (entry ids `entry_ids`) as one batch of queries with their variants."""
    hashes = {}
    for algorithm in rule.algorithms:
        table = tables[algorithm]
        assert table.words is not None
        words = table.variants[rows] if table.variants is not None else table.words[rows][:, None]
        quality = (
            np.full(len(rows), np.nan, np.float32)
            if table.quality is None
            else table.quality[rows].astype(np.float32)
        )
        present = np.ones(len(rows), dtype=bool)
        hashes[algorithm] = QueryHashes(words.shape[2] * 64, words, quality, present)
    return QueryBatch(len(rows), hashes, entry_ids)


def _percent(result: HalfResult) -> str:
    if not result.exact_pairs:
        return "-"
    return f"{100 * (result.found_pairs - result.extra_pairs) / result.exact_pairs:.2f}%"


def _measure_half(
    index: Index,
    rule: Matcher,
    tables: dict[str, HashTable],
    rows: npt.NDArray[np.intp],
    photo_of: Sequence[int],
    transform_of: Sequence[str],
    family_of: dict[str, str],
) -> HalfResult:
    entry_ids, _ = _store(index, rule, tables, rows)
    row_of_id = dict(zip(entry_ids.tolist(), rows.tolist(), strict=True))

    def batches() -> Iterator[QueryBatch]:
        return _batches(rule, tables, rows, entry_ids)

    started = time.perf_counter()
    exact = rule_pairs(index, rule, queries=batches(), exact=True)
    exact_seconds = time.perf_counter() - started

    def queries_by_id(wanted: npt.NDArray[np.int64]) -> QueryBatch:
        chosen = np.array([row_of_id[int(i)] for i in wanted], dtype=np.intp)
        return _batch(rule, tables, chosen, wanted)

    started = time.perf_counter()
    found = rule_pairs(index, rule, queries=batches(), queries_by_id=queries_by_id)
    keys_seconds = time.perf_counter() - started
    probes, candidates = _probe_cost(index, rule, batches())
    exact_set = set(zip(exact.first.tolist(), exact.second.tolist(), strict=True))
    found_set = set(zip(found.first.tolist(), found.second.tolist(), strict=True))
    result = HalfResult(
        len(rows),
        len(exact_set),
        len(found_set),
        len(found_set - exact_set),
        exact_seconds,
        keys_seconds,
        probes,
        candidates,
    )
    for a, b in exact_set:
        family = _family(row_of_id[a], row_of_id[b], photo_of, transform_of, family_of)
        result.exact_by_family[family] = result.exact_by_family.get(family, 0) + 1
        if (a, b) not in found_set:
            result.missed_by_family[family] = result.missed_by_family.get(family, 0) + 1
    return result


def _probe_cost(index: Index, rule: Matcher, batches: Iterable[QueryBatch]) -> tuple[int, int]:
    """Key probes and nominated candidates of every query: what the keys path costs."""
    widths = index.algorithm_bits()
    probes = candidates = 0
    for batch in batches:
        for probe in probes_for(rule, widths):
            if isinstance(probe, KeyProbe):
                words, _ = probe_words(batch, probe.algorithms, probe.layout.nbits)
                probes += len(words) * probes_per_hash(probe.layout)
        candidates += len(candidate_pairs(index, batch, rule)[0])
    return probes, candidates


def _family(
    a: int, b: int, photo_of: Sequence[int], transform_of: Sequence[str], family_of: dict[str, str]
) -> str:
    """The edit family of a pair of one photo's images ("other photo" for a false pair)."""
    if photo_of[a] != photo_of[b]:
        return "different photos"
    edits = sorted(family_of.get(transform_of[i], "original") for i in (a, b) if transform_of[i])
    return " + ".join(edits) if edits else "original"


def offline_found(
    corpus: Corpus, rule: Matcher, pairs: DirectedPairs, layout: KeyLayout, chunk: int = 4000
) -> npt.NDArray[np.bool_]:
    """Which directed exact-plan pairs the key tables of `layout` would nominate, without an
    index: a pair is found when some probed query hash (a variant of an algorithm of a keyed
    family, or its one-bit neighbour at `layout.neighbours`) and some stored hash of the same
    family agree on every bit of some table's key. Fast enough to compare layouts on the whole
    accuracy corpus in seconds."""
    masks = _table_masks(layout)  # (tables, words)
    flips = np.zeros(masks.shape[1], dtype=np.uint64)
    for position in layout.neighbours:
        flips[position // 64] |= np.uint64(1 << (63 - position % 64))
    used = np.flatnonzero(masks.any(axis=0))
    widths = {a: layout.nbits for a in rule.algorithms}
    found = np.zeros(len(pairs.query), dtype=bool)
    for probe in probes_for(rule, widths):
        if not isinstance(probe, KeyProbe):
            continue
        members = [a for a in probe.algorithms if a in corpus.tables]
        query = np.concatenate([_variants(corpus.tables[a]) for a in members], axis=1)[:, :, used]
        stored = np.stack([_words(corpus.tables[a]) for a in members], axis=1)[:, :, used]
        for start in range(0, len(found), chunk):
            part = slice(start, start + chunk)
            xor = query[pairs.query[part]][:, :, None] ^ stored[pairs.stored[part]][:, None]
            xor = xor.reshape(len(xor), -1, len(used))
            hit = found[part]
            for mask in masks[:, used]:
                todo = ~hit
                if not todo.any():
                    break
                differ = xor[todo] & mask
                count = np.bitwise_count(differ).sum(axis=2)
                outside = (differ & ~flips[used]).any(axis=2)
                hit[todo] |= ((count == 0) | ((count == 1) & ~outside)).any(axis=1)
            found[part] = hit
    return found


def undirected(
    pairs: DirectedPairs, found: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """The unordered pairs (a < b) of `pairs` and whether either direction was found."""
    a, b = np.minimum(pairs.query, pairs.stored), np.maximum(pairs.query, pairs.stored)
    packed, inverse = np.unique(a.astype(np.int64) << 32 | b, return_inverse=True)
    either = np.zeros(len(packed), dtype=bool)
    np.logical_or.at(either, inverse, found)
    return (packed >> 32).astype(np.intp), (packed & 0xFFFFFFFF).astype(np.intp), either


def probes_per_hash(layout: KeyLayout) -> int:
    """Table probes of one query hash: one per table, and one per table holding a flipped bit."""
    masks = _table_masks(layout)
    flipped = sum(
        int((masks[:, position // 64] & np.uint64(1 << (63 - position % 64))).astype(bool).sum())
        for position in layout.neighbours
    )
    return layout.table_count + flipped


def _table_masks(layout: KeyLayout) -> npt.NDArray[np.uint64]:
    """Each table's key bits as a mask over the hash's words."""
    masks = np.zeros((layout.table_count, layout.nbits // 64), dtype=np.uint64)
    for number, table in enumerate(layout.tables):
        for byte in table:
            for position in layout.byte_bits(byte):
                masks[number, position // 64] |= np.uint64(1 << (63 - position % 64))
    return masks


def _variants(table: HashTable) -> npt.NDArray[np.uint64]:
    assert table.words is not None
    return table.variants if table.variants is not None else table.words[:, None]


def _words(table: HashTable) -> npt.NDArray[np.uint64]:
    assert table.words is not None
    return table.words


def grouped(first: npt.NDArray[np.intp], second: npt.NDArray[np.intp], found: npt.NDArray[np.bool_]) -> int:
    """How many of the pairs (first[i], second[i]) end in one duplicate group (a connected
    component of the found pairs, as `lookalike.dedupe.grouping` makes them): a missed pair of two
    copies is still grouped when both copies pair with their original."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    size = int(max(first.max(initial=0), second.max(initial=0))) + 1
    graph = coo_matrix((np.ones(int(found.sum())), (first[found], second[found])), shape=(size, size))
    _, labels = connected_components(graph, directed=False)
    return int((labels[first] == labels[second]).sum())


def second_hop_found(
    first: npt.NDArray[np.intp], second: npt.NDArray[np.intp], found: npt.NDArray[np.bool_]
) -> tuple[int, int]:
    """How many of the exact-plan pairs (first[i] < second[i]) a duplicate search finds when the
    found pairs' second hops (`candidates.expansion.second_hop_pairs`) are judged too (the rule
    accepts every exact-plan pair), and how many second-hop pairs it judges."""
    from lookalike.candidates.expansion import second_hop_pairs

    more_a, more_b = second_hop_pairs(first[found].astype(np.int64), second[found].astype(np.int64))
    packed = first.astype(np.int64) << 32 | second
    joined = found | np.isin(packed, more_a << 32 | more_b)
    return int(joined.sum()), len(more_a)
