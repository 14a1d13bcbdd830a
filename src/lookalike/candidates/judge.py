"""Judging candidate pairs: every hash a rule names, compared over whole arrays of pairs.

A pair is (query row, stored entry id). For each algorithm the stored hashes come from the index
(`Index.stored_hashes`), the query's from its batch, and the distance is the smallest over the
query's variants, as `Condition.distance` computes it for one pair. The rule then decides all
pairs at once (`Matcher.evaluate`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lookalike.candidates.batch import QueryBatch
from lookalike.matcher import Evaluation, Matcher
from lookalike.search.bits import popcount

Ids = npt.NDArray[np.int64]
PAIRS_PER_BLOCK = 65_536  # pairs judged at once: bounded memory, whatever the batch


@dataclass(frozen=True)
class StoredHashes:
    """One algorithm's stored hashes for a list of entry ids (zeros where `present` is false)."""

    present: npt.NDArray[np.bool_]
    words: npt.NDArray[np.uint64]
    quality: npt.NDArray[np.float32]
    flagged: npt.NDArray[np.bool_]


StoredLookup = Callable[[str, Ids], StoredHashes]


@dataclass(frozen=True)
class Judged:
    """The accepted pairs: query row, entry id, the rule's evaluation of each, and per algorithm
    the distance (-1 if not computable) and which query variant gave it."""

    rows: Ids
    ids: Ids
    evaluation: Evaluation
    distances: dict[str, npt.NDArray[np.int64]]
    variants: dict[str, npt.NDArray[np.int64]]


def judge(
    batch: QueryBatch,
    rows: Ids,
    ids: Ids,
    rule: Matcher,
    stored: StoredLookup,
    *,
    include_flagged: bool = False,
) -> Judged:
    """The pairs among (rows[i], ids[i]) that `rule` accepts."""
    kept: list[Judged] = []
    for start in range(0, len(rows), PAIRS_PER_BLOCK):
        kept.append(
            _judge_block(
                batch,
                rows[start : start + PAIRS_PER_BLOCK],
                ids[start : start + PAIRS_PER_BLOCK],
                rule,
                stored,
                include_flagged,
            )
        )
    if not kept:
        return _judge_block(batch, rows, ids, rule, stored, include_flagged)
    return _concat(kept)


def _judge_block(
    batch: QueryBatch, rows: Ids, ids: Ids, rule: Matcher, stored: StoredLookup, include_flagged: bool
) -> Judged:
    distances: dict[str, npt.NDArray[np.int64]] = {}
    variants: dict[str, npt.NDArray[np.int64]] = {}
    lowest: dict[str, npt.NDArray[np.float32]] = {}
    for algorithm in rule.algorithms:
        query = batch.hashes.get(algorithm)
        if query is None:
            continue
        found = stored(algorithm, ids)
        usable = found.present & query.present[rows]
        if not include_flagged:
            usable &= ~found.flagged
        best, which = _min_variant_distance(query.words, rows, found.words)
        distances[algorithm] = np.where(usable, best, -1)
        variants[algorithm] = which
        lowest[algorithm] = np.fmin(query.quality[rows], found.quality)
    evaluation = rule.evaluate(distances, lowest)
    keep = np.flatnonzero(evaluation.accepted)
    return Judged(
        rows[keep],
        ids[keep],
        Evaluation(
            evaluation.accepted[keep],
            evaluation.score[keep],
            evaluation.closest[keep],
            {c: d[keep] for c, d in evaluation.condition_distances.items()},
        ),
        {name: value[keep] for name, value in distances.items()},
        {name: value[keep] for name, value in variants.items()},
    )


def _min_variant_distance(
    query_words: npt.NDArray[np.uint64], rows: Ids, stored_words: npt.NDArray[np.uint64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per pair, the smallest distance over the query's variants, and that variant's index."""
    count = len(rows)
    best = np.full(count, np.iinfo(np.int64).max, dtype=np.int64)
    which = np.zeros(count, dtype=np.int64)
    for variant in range(query_words.shape[1]):
        mine = query_words[rows, variant]
        distance = popcount(mine ^ stored_words).sum(axis=1, dtype=np.int64)
        better = distance < best
        best = np.where(better, distance, best)
        which = np.where(better, variant, which)
    return best, which


def _concat(parts: list[Judged]) -> Judged:
    conditions = list(parts[0].evaluation.condition_distances)
    algorithms = list(parts[0].distances)
    return Judged(
        np.concatenate([p.rows for p in parts]),
        np.concatenate([p.ids for p in parts]),
        Evaluation(
            np.concatenate([p.evaluation.accepted for p in parts]),
            np.concatenate([p.evaluation.score for p in parts]),
            np.concatenate([p.evaluation.closest for p in parts]),
            {c: np.concatenate([p.evaluation.condition_distances[c] for p in parts]) for c in conditions},
        ),
        {a: np.concatenate([p.distances[a] for p in parts]) for a in algorithms},
        {a: np.concatenate([p.variants[a] for p in parts]) for a in algorithms},
    )
