"""Judging candidate pairs: every hash a rule names, compared over whole arrays of pairs.

A pair is (query row, stored entry id). For each algorithm the stored hashes come from the index
(`Index.stored_hashes_many`), the query's from its batch, and the distance is the smallest over the
query's variants, as `Condition.distance` computes it for one pair. The rule then decides all
pairs at once (`Matcher.evaluate`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lookalike.candidates.batch import QueryBatch
from lookalike.local.verify import Alignment
from lookalike.matcher import Evaluation, Matcher
from lookalike.search.bits import popcount

Ids = npt.NDArray[np.int64]
PAIRS_PER_BLOCK = 16_384  # pairs judged at once: bounded memory, temporaries that stay in cache


@dataclass(frozen=True)
class StoredHashes:
    """One algorithm's stored hashes for a list of entry ids (zeros where `present` is false)."""

    present: npt.NDArray[np.bool_]
    words: npt.NDArray[np.uint64]
    quality: npt.NDArray[np.float32]
    flagged: npt.NDArray[np.bool_]


StoredLookup = Callable[[Sequence[str], Ids], dict[str, StoredHashes]]  # algorithms, entry ids
Twins = dict[str, list[tuple[str, npt.NDArray[np.bool_]]]]


@dataclass(frozen=True)
class Judged:
    """The pairs kept: query row, entry id, the rule's evaluation of each (`evaluation.accepted`:
    the hashes accepted it; otherwise it is a near miss a rule with a local clause verifies),
    and per algorithm the distance (-1 if not computable) and which query variant gave it."""

    rows: Ids
    ids: Ids
    evaluation: Evaluation
    distances: dict[str, npt.NDArray[np.int64]]
    variants: dict[str, npt.NDArray[np.int64]]
    # pairs local features verified: inliers (-1: not verified) and where each lies in the other
    local_inliers: npt.NDArray[np.int64] | None = None
    alignments: Sequence[Alignment | None] | None = None

    def take(self, keep: npt.NDArray[np.intp]) -> Judged:
        evaluation = self.evaluation
        return Judged(
            self.rows[keep],
            self.ids[keep],
            Evaluation(
                evaluation.accepted[keep],
                evaluation.score[keep],
                evaluation.closest[keep],
                {c: d[keep] for c, d in evaluation.condition_distances.items()},
            ),
            {name: value[keep] for name, value in self.distances.items()},
            {name: value[keep] for name, value in self.variants.items()},
            None if self.local_inliers is None else self.local_inliers[keep],
            None if self.alignments is None else [self.alignments[int(i)] for i in keep],
        )


def judge(
    batch: QueryBatch,
    rows: Ids,
    ids: Ids,
    rule: Matcher,
    stored: StoredLookup,
    *,
    include_flagged: bool = False,
    keep_all: bool = False,
    near_misses: bool = True,
) -> Judged:
    """The pairs among (rows[i], ids[i]) that `rule` accepts, and its near misses when it has a
    local clause and `near_misses` (queries without local features have none to verify); with
    `keep_all`, every pair (local features nominated them: they are verified whatever their
    hashes say)."""
    twins = _twin_queries(batch, rule)
    by_word = {
        name: np.ascontiguousarray(value.words.transpose(0, 2, 1)) for name, value in batch.hashes.items()
    }
    kept: list[Judged] = []
    for start in range(0, len(rows), PAIRS_PER_BLOCK):
        block = slice(start, start + PAIRS_PER_BLOCK)
        kept.append(
            _judge_block(
                batch,
                by_word,
                rows[block],
                ids[block],
                rule,
                stored,
                include_flagged,
                twins,
                keep_all,
                near_misses,
            )
        )
    if not kept:
        return _judge_block(
            batch, by_word, rows, ids, rule, stored, include_flagged, twins, keep_all, near_misses
        )
    return concat_judged(kept)


def _twin_queries(batch: QueryBatch, rule: Matcher) -> Twins:
    """Per algorithm, the earlier algorithms of the rule whose query hashes (all variants) are the
    same for some queries: a picture without borders has one trimmed and untrimmed hash, so a
    stored pair that is also the same needs its distance computed once."""
    twins: Twins = {}
    seen: list[str] = []
    for algorithm in rule.algorithms:
        mine = batch.hashes.get(algorithm)
        if mine is None:
            continue
        for earlier in seen:
            theirs = batch.hashes[earlier]
            if theirs.words.shape == mine.words.shape:
                same = np.all(theirs.words == mine.words, axis=(1, 2)) & theirs.present & mine.present
                if same.any():
                    twins.setdefault(algorithm, []).append((earlier, same))
        seen.append(algorithm)
    return twins


def _judge_block(
    batch: QueryBatch,
    by_word: dict[str, npt.NDArray[np.uint64]],
    rows: Ids,
    ids: Ids,
    rule: Matcher,
    stored: StoredLookup,
    include_flagged: bool,
    twins: Twins,
    keep_all: bool = False,
    near_misses: bool = True,
) -> Judged:
    distances: dict[str, npt.NDArray[np.int64]] = {}
    variants: dict[str, npt.NDArray[np.int64]] = {}
    lowest: dict[str, npt.NDArray[np.float32]] = {}
    raw: dict[str, tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64], npt.NDArray[np.int64]]] = {}
    asked = [algorithm for algorithm in rule.algorithms if algorithm in batch.hashes]
    every = stored(asked, ids)
    for algorithm in asked:
        query = batch.hashes[algorithm]
        found = every[algorithm]
        if found.words.shape[1] != query.words.shape[2]:  # the index holds no such hash
            continue
        usable = found.present & query.present[rows]
        if not include_flagged:
            usable &= ~found.flagged
        best = np.zeros(len(rows), dtype=np.int64)
        which = np.zeros(len(rows), dtype=np.int64)
        todo = np.ones(len(rows), dtype=bool)
        for earlier, same_query in twins.get(algorithm, []):
            their_words, their_best, their_which = raw[earlier]
            same = todo & same_query[rows] & np.all(their_words == found.words, axis=1)
            best[same], which[same] = their_best[same], their_which[same]
            todo &= ~same
        if todo.all():
            best, which = _min_variant_distance(by_word[algorithm], rows, found.words)
        elif todo.any():
            best[todo], which[todo] = _min_variant_distance(by_word[algorithm], rows[todo], found.words[todo])
        raw[algorithm] = (found.words, best, which)
        distances[algorithm] = np.where(usable, best, -1)
        variants[algorithm] = which
        lowest[algorithm] = np.fmin(query.quality[rows], found.quality)
    evaluation = rule.evaluate(distances, lowest)
    kept = evaluation.accepted
    if keep_all:
        kept = np.ones(len(rows), dtype=bool)
    elif near_misses and rule.local_inliers is not None:
        kept = kept | rule.near_misses(evaluation)
    judged = Judged(rows, ids, evaluation, distances, variants)
    return judged.take(np.flatnonzero(kept))


def _min_variant_distance(
    query_words: npt.NDArray[np.uint64], rows: Ids, stored_words: npt.NDArray[np.uint64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per pair, the smallest distance over the query's variants, and that variant's index.
    `query_words` is (queries, words, variants): one word of every variant is contiguous, so
    each step is a flat XOR and popcount, summed word by word in uint16 (NumPy's sum over a
    short last axis costs several times more)."""
    total = popcount(query_words[rows, 0, :] ^ stored_words[:, 0, None]).astype(np.uint16)
    for word in range(1, query_words.shape[1]):
        total += popcount(query_words[rows, word, :] ^ stored_words[:, word, None])
    if total.shape[1] == 1:
        return total[:, 0].astype(np.int64), np.zeros(len(rows), dtype=np.int64)
    which = total.argmin(axis=1)
    best = np.take_along_axis(total, which[:, None], axis=1)[:, 0]
    return best.astype(np.int64), which.astype(np.int64)


def concat_judged(parts: list[Judged]) -> Judged:
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
