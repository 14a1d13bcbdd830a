"""Judging candidate pairs: every hash a rule names, compared over whole arrays of pairs.

A pair is (query row, stored entry id). For each algorithm the stored hashes come from the index
(`Index.stored_hashes_many`), the query's from its batch, and the distance is the smallest over the
query's variants, as `Condition.distance` computes it for one pair. The rule then decides all
pairs at once (`Matcher.evaluate`).

Most candidates of a large collection are unrelated look-alikes that shared a key by chance
(about 590 per query at a million images), far beyond every limit of the rule. A screen drops
them first, exactly: a hash's distance is at least its distance over its first few words (each
word only adds differing bits), so counting those words for every query variant bounds each
clause's distance from below; a pair whose bounds exceed every clause's limit (near misses'
included, when they are kept) cannot be kept, and only the others are judged in full. Where
FAISS is installed its compiled kernel screens instead, query by query: every variant of a query
against every candidate of it, whole hashes (the bound is then the distance itself), at a fifth
of the cost of NumPy's passes over the first words.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from lookalike.candidates.batch import QueryBatch
from lookalike.local.verify import Alignment
from lookalike.matcher import NEAR_FACTOR, Evaluation, Matcher
from lookalike.search.bits import DistanceKernel, compiled_distances, popcount

Ids = npt.NDArray[np.int64]
PAIRS_PER_BLOCK = 16_384  # pairs judged at once: bounded memory, temporaries that stay in cache
# The screen counts a hash's first words until they hold 3 times its tightest limit in bits:
# two unrelated hashes differ in about half their bits, the closest of a query's dozens of
# variants in a bit fewer, so that many bits put them past the limit (the 256-bit equalised
# pHashes at 56: 3 words of 4; plain pHash at 20: 1 word). Only speed depends on this choice.
SCREEN_BITS_PER_LIMIT = 3


@dataclass(frozen=True)
class StoredHashes:
    """One algorithm's stored hashes for a list of entry ids (zeros where `present` is false)."""

    present: npt.NDArray[np.bool_]
    words: npt.NDArray[np.uint64]
    quality: npt.NDArray[np.float32]
    flagged: npt.NDArray[np.bool_]

    def take(self, keep: npt.NDArray[np.intp]) -> StoredHashes:
        return StoredHashes(self.present[keep], self.words[keep], self.quality[keep], self.flagged[keep])


StoredLookup = Callable[[Sequence[str], Ids], dict[str, StoredHashes]]  # algorithms, entry ids
Floors = Mapping[str, Ids]  # per algorithm, each pair's distance to a stored variant (-1: none)
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
    floors: Floors | None = None,
) -> Judged:
    """The pairs among (rows[i], ids[i]) that `rule` accepts, and its near misses when it has a
    local clause and `near_misses` (queries without local features have none to verify); with
    `keep_all`, every pair (local features nominated them: they are verified whatever their
    hashes say). `floors[a][i]`: pair i's distance from the query's own hash to the nearest
    stored variant of algorithm a (`candidates.stored_variants`; -1: none near), which counts
    when it is smaller than the distance from the query's variants to the stored hash."""
    twins = _twin_queries(batch, rule)
    by_variant = {
        name: np.ascontiguousarray(value.words.transpose(2, 1, 0)) for name, value in batch.hashes.items()
    }
    screen = None if keep_all else Screen.of(rule, near_misses and rule.local_inliers is not None)
    kernel = compiled_distances()
    if screen is not None and kernel is not None and len(rows):
        keep = _kernel_screen(kernel, screen, batch, rows, ids, stored, floors or {})
        rows, ids, screen = rows[keep], ids[keep], None
        floors = {name: floor[keep] for name, floor in (floors or {}).items()}
    kept: list[Judged] = []
    for start in range(0, len(rows), PAIRS_PER_BLOCK):
        block = slice(start, start + PAIRS_PER_BLOCK)
        kept.append(
            _judge_block(
                batch,
                by_variant,
                rows[block],
                ids[block],
                rule,
                stored,
                include_flagged,
                twins,
                keep_all,
                near_misses,
                screen,
                {name: floor[block] for name, floor in (floors or {}).items()},
            )
        )
    if not kept:
        return _judge_block(
            batch, by_variant, rows, ids, rule, stored, include_flagged, twins, keep_all, near_misses
        )
    return concat_judged(kept)


@dataclass(frozen=True)
class Screen:
    """What a pair must come within to be kept, as lower bounds can tell: per algorithm the
    words counted, per group of the rule its conditions' (algorithms, limit), and the conditions
    whose near misses are kept (limit x NEAR_FACTOR). Quality gates are left out (they only
    reject), so a pair the screen drops is one the rule rejects."""

    words: dict[str, int]
    groups: tuple[tuple[tuple[tuple[str, ...], float], ...], ...]
    near: tuple[tuple[tuple[str, ...], float], ...]

    @classmethod
    def of(cls, rule: Matcher, near_misses: bool) -> Screen:
        groups = tuple(tuple((c.algorithms, float(c.max_distance)) for c in group) for group in rule.groups)
        near = (
            tuple((c.algorithms, c.max_distance * NEAR_FACTOR) for c in rule.conditions)
            if near_misses
            else ()
        )
        tightest: dict[str, float] = {}
        for algorithms, limit in [condition for group in groups for condition in group] + list(near):
            for algorithm in algorithms:
                tightest[algorithm] = min(tightest.get(algorithm, limit), limit)
        words = {a: max(1, math.ceil(SCREEN_BITS_PER_LIMIT * limit / 64)) for a, limit in tightest.items()}
        return cls(words, groups, near)

    def could_keep(
        self, bounds: Mapping[str, npt.NDArray[np.signedinteger[Any]]], count: int
    ) -> npt.NDArray[np.bool_]:
        """Pairs whose lower bounds (`bounds[a]`, per algorithm) let some group hold or, for
        near misses, some condition come near; an algorithm without bounds has no distance, so
        conditions naming it fail (as `Matcher.evaluate` decides them)."""

        def within(algorithms: tuple[str, ...], limit: float) -> npt.NDArray[np.bool_]:
            if any(algorithm not in bounds for algorithm in algorithms):
                return np.zeros(count, dtype=bool)
            total = bounds[algorithms[0]]
            for algorithm in algorithms[1:]:
                total = total + bounds[algorithm]
            return total <= limit

        keep = np.zeros(count, dtype=bool)
        for group in self.groups:
            keep |= np.logical_and.reduce([within(*condition) for condition in group])
        for condition in self.near:
            keep |= within(*condition)
        return keep


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
    by_variant: dict[str, npt.NDArray[np.uint64]],
    rows: Ids,
    ids: Ids,
    rule: Matcher,
    stored: StoredLookup,
    include_flagged: bool,
    twins: Twins,
    keep_all: bool = False,
    near_misses: bool = True,
    screen: Screen | None = None,
    floors: Floors | None = None,
) -> Judged:
    distances: dict[str, npt.NDArray[np.int64]] = {}
    variants: dict[str, npt.NDArray[np.int64]] = {}
    lowest: dict[str, npt.NDArray[np.float32]] = {}
    raw: dict[str, tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64], npt.NDArray[np.int64]]] = {}
    asked = [algorithm for algorithm in rule.algorithms if algorithm in batch.hashes]
    every = stored(asked, ids)
    floors = floors or {}
    if screen is not None and len(rows):
        bounds = _lower_bounds(screen, batch, by_variant, rows, every, twins)
        for algorithm, floor in floors.items():
            if algorithm in bounds:
                bound = bounds[algorithm]
                bounds[algorithm] = np.where(floor >= 0, np.minimum(bound, floor), bound)
        keep = screen.could_keep(bounds, len(rows))
        if not keep.all():
            chosen = np.flatnonzero(keep)
            rows, ids = rows[chosen], ids[chosen]
            every = {algorithm: found.take(chosen) for algorithm, found in every.items()}
            floors = {algorithm: floor[chosen] for algorithm, floor in floors.items()}
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
            best, which = _min_variant_distance(by_variant[algorithm], rows, found.words)
        elif todo.any():
            best[todo], which[todo] = _min_variant_distance(
                by_variant[algorithm], rows[todo], found.words[todo]
            )
        raw[algorithm] = (found.words, best, which)  # before floors: a twin has its own variants
        to_variant = floors.get(algorithm)
        if to_variant is not None:
            nearer = (to_variant >= 0) & (to_variant < best)
            best, which = np.where(nearer, to_variant, best), np.where(nearer, 0, which)
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


def _kernel_screen(
    kernel: DistanceKernel,
    screen: Screen,
    batch: QueryBatch,
    rows: Ids,
    ids: Ids,
    stored: StoredLookup,
    floors: Floors,
) -> npt.NDArray[np.bool_]:
    """Which pairs the screen keeps, each pair's distance per algorithm (smallest over the
    query's variants, or its floor when nearer) from the compiled kernel: the stored hashes are
    read in the pairs' order (entry ids, forwards through the stores), then grouped by query so
    that each query's variants meet all of its candidates in one call. Algorithms the judge has
    no distance for are left out, as in `_lower_bounds`."""
    every = stored([a for a in screen.words if a in batch.hashes], ids)
    # grouped by query: a stable sort of small integers is a radix sort in NumPy
    order = np.argsort(rows.astype(np.uint16) if batch.size <= 2**16 else rows, kind="stable")
    edges = np.searchsorted(rows[order], np.arange(batch.size + 1))
    queries = np.flatnonzero(edges[1:] > edges[:-1]).tolist()
    widest = int((edges[1:] - edges[:-1]).max())
    distances: dict[str, npt.NDArray[np.int32]] = {}  # in grouped order
    for algorithm, found in every.items():
        variants = np.ascontiguousarray(batch.hashes[algorithm].words)
        if found.words.shape[1] != variants.shape[2]:
            continue
        grouped = np.take(found.words, order, axis=0)
        count = variants.shape[1]
        out = np.empty(count * widest, dtype=np.int32)
        nearest = np.empty(len(rows), dtype=np.int32)
        for query in queries:
            first, last = int(edges[query]), int(edges[query + 1])
            kernel(variants[query], grouped[first:last], out)
            out[: count * (last - first)].reshape(count, last - first).min(axis=0, out=nearest[first:last])
        floor = floors.get(algorithm)
        if floor is not None:
            grouped_floor = floor[order]
            nearest = np.where(grouped_floor >= 0, np.minimum(nearest, grouped_floor), nearest)
        distances[algorithm] = nearest
    keep = np.empty(len(rows), dtype=bool)
    keep[order] = screen.could_keep(distances, len(rows))
    return keep


def _lower_bounds(
    screen: Screen,
    batch: QueryBatch,
    by_variant: dict[str, npt.NDArray[np.uint64]],
    rows: Ids,
    every: dict[str, StoredHashes],
    twins: Twins,
) -> dict[str, npt.NDArray[np.int64]]:
    """Per algorithm the screen reads, each pair's smallest distance over the query's variants
    counted on the screen's first words only: a lower bound of the distance the judge computes.
    Algorithms the judge has no distance for (absent from the batch or the index) are left out."""
    bounds: dict[str, npt.NDArray[np.int64]] = {}
    counted: dict[str, int] = {}
    for algorithm, wanted in screen.words.items():
        query, found = batch.hashes.get(algorithm), every.get(algorithm)
        if query is None or found is None or found.words.shape[1] != query.words.shape[2]:
            continue
        words = min(wanted, found.words.shape[1])
        bound = np.zeros(len(rows), dtype=np.int64)
        todo = np.ones(len(rows), dtype=bool)
        for earlier, same_query in twins.get(algorithm, []):
            if counted.get(earlier) == words:
                same = todo & same_query[rows] & np.all(every[earlier].words == found.words, axis=1)
                bound[same] = bounds[earlier][same]
                todo &= ~same
        chosen = slice(None) if todo.all() else np.flatnonzero(todo)
        bound[chosen] = _variant_distances(
            by_variant[algorithm], rows[chosen], found.words[chosen], words
        ).min(axis=0)
        bounds[algorithm], counted[algorithm] = bound, words
    return bounds


def _variant_distances(
    by_variant: npt.NDArray[np.uint64], rows: Ids, stored_words: npt.NDArray[np.uint64], words: int
) -> npt.NDArray[np.uint8] | npt.NDArray[np.uint16]:
    """(variants, pairs): the distance between each query variant and the stored hash of each
    pair, over the first `words` words. `by_variant` is (words, variants, queries), so one word
    of one variant over the batch is a contiguous row to gather from; each step works in place
    on buffers of the block's size (fresh temporaries of several MB cost more to allocate than
    the XOR and popcount on them)."""
    shape = (by_variant.shape[1], len(rows))
    gathered = np.empty(shape, dtype=np.uint64)
    counts = np.empty(shape, dtype=np.uint8)
    total = np.zeros(shape, dtype=np.uint8 if words * 64 < 256 else np.uint16)
    for word in range(words):
        np.take(by_variant[word], rows, axis=1, out=gathered, mode="clip")  # rows are valid
        np.bitwise_xor(gathered, np.ascontiguousarray(stored_words[:, word]), out=gathered)
        np.add(total, popcount(gathered, out=counts), out=total)
    return total


def _min_variant_distance(
    by_variant: npt.NDArray[np.uint64], rows: Ids, stored_words: npt.NDArray[np.uint64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per pair, the smallest distance over the query's variants, and that variant's index
    (the first, on ties)."""
    total = _variant_distances(by_variant, rows, stored_words, by_variant.shape[0])
    if total.shape[0] == 1:
        return total[0].astype(np.int64), np.zeros(len(rows), dtype=np.int64)
    which = total.argmin(axis=0)
    best = np.take_along_axis(total, which[None, :], axis=0)[0]
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
