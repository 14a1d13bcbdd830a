"""Candidate recall on the accuracy corpus: of the pairs a rule's exact plan accepts, how many the
candidate stage's keys find too.

Each half of the accuracy benchmark's photos (originals and their edited copies) is stored in an
index with the hashes the rule reads; every image is then searched for with its variants, once
through the candidate keys and once through the exact plan (range searches at the rule's radii),
and the two sets of accepted pairs are compared, overall and per edit family.
"""

from __future__ import annotations

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
    family_of = {t.name: t.family for t in chosen}
    photo_of = [image.photo for image in images]
    transform_of = [image.transform or "" for image in images]
    results = []
    for half in split_photos(photos):
        pairs = make_pair_set(photo_of, transform_of, half)
        rows = pairs.rows
        with tempfile.TemporaryDirectory() as folder:
            url = f"{folder}/index.db" if backend == "sqlite" else f"chdb://{folder}/index"
            with open_index(url) as index:
                result = _measure_half(index, rule, tables, rows, photo_of, transform_of, family_of)
        log(
            f"{result.images} images: exact plan {result.exact_pairs} pairs in {result.exact_seconds:.1f} s,"
            f" keys {result.found_pairs} ({_percent(result)}) in {result.keys_seconds:.1f} s,"
            f" extra {result.extra_pairs}"
        )
        results.append(result)
    return results


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
    keys = [str(int(row)) for row in rows]
    for algorithm in rule.algorithms:
        table = tables[algorithm]
        assert table.words is not None
        quality = None if table.quality is None else [None if q != q else int(q) for q in table.quality[rows]]
        index.add_words(keys, algorithm, table.words[rows], table.words.shape[1] * 64, quality)
    ids = index.ids_by_key(keys)
    entry_ids = np.array([ids[key] for key in keys], dtype=np.int64)
    row_of_id = dict(zip(entry_ids.tolist(), rows.tolist(), strict=True))

    def batches() -> Iterator[QueryBatch]:
        for start in range(0, len(rows), BATCH):
            chosen = rows[start : start + BATCH]
            hashes = {}
            for algorithm in rule.algorithms:
                table = tables[algorithm]
                assert table.words is not None
                words = table.variants[chosen] if table.variants is not None else table.words[chosen][:, None]
                quality = (
                    np.full(len(chosen), np.nan, np.float32)
                    if table.quality is None
                    else table.quality[chosen].astype(np.float32)
                )
                present = np.ones(len(chosen), dtype=bool)
                hashes[algorithm] = QueryHashes(words.shape[2] * 64, words, quality, present)
            yield QueryBatch(len(chosen), hashes, entry_ids[start : start + BATCH])

    started = time.perf_counter()
    exact = rule_pairs(index, rule, queries=batches(), exact=True)
    exact_seconds = time.perf_counter() - started
    started = time.perf_counter()
    found = rule_pairs(index, rule, queries=batches())
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
                probes += len(words) * probe.layout.table_count
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
