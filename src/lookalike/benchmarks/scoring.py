"""Scores of every pair of benchmark images, for a hash or a matcher, split into positives and negatives.

A *source* is a distance between two images computed from hash tables; its name says how:

    imagehash:phash              Hamming distance of that table's hashes (Euclidean for vectors)
    lookalike:phash:16@d4        the smallest distance over the first image's 8 dihedral variants
    imagehash:ahash+imagehash:colorhash   the sum of two sources (the seed article's combination)

A *scorer* turns sources into one score per pair, lower meaning more alike: a single source, or
a matcher rule scaled as a whole when the threshold moves: `min(d_k / limit_k)` over conditions
joined by `or`, the largest ratio within conditions joined by `and`. Images are grouped by photo
(original first), so the negatives of row i are the columns after its photo's block, and the
positives of a photo are its original's row inside the block. Composites (picture in picture,
collages) also show other photos, their donors: two images that show some photo in common are
not a negative pair either (they are left out of both sides), whatever their own photos.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from lookalike.benchmarks.hashers import HashTable
from lookalike.benchmarks.metrics import euclidean_matrix, hamming_matrix, min_variant_matrix

if TYPE_CHECKING:
    from lookalike.matcher import Condition, Matcher

Matrix = npt.NDArray[np.float32] | npt.NDArray[np.uint16]


@dataclass(frozen=True)
class PairSet:
    """The images of one half, grouped by photo: `starts[k]:starts[k+1]` is photo k's block."""

    rows: npt.NDArray[np.intp]  # indices into the full image list
    starts: npt.NDArray[np.intp]  # block start of each photo, plus len(rows) at the end
    transforms: npt.NDArray[np.str_]  # per row; "" for originals
    # (k, 2) row pairs (first < second, different photos) that show a photo in common: no negatives
    excluded: npt.NDArray[np.intp] = field(default_factory=lambda: np.zeros((0, 2), dtype=np.intp))

    @property
    def block_end(self) -> npt.NDArray[np.intp]:
        """For each row, the end of its photo's block."""
        sizes = np.diff(self.starts)
        return np.repeat(self.starts[1:], sizes)

    def positive_transforms(self) -> npt.NDArray[np.str_]:
        return np.concatenate(
            [self.transforms[s + 1 : e] for s, e in zip(self.starts[:-1], self.starts[1:], strict=True)]
        )

    @property
    def negative_count(self) -> int:
        n = len(self.rows)
        sizes = np.diff(self.starts)
        return int((n * n - int((sizes * sizes).sum())) // 2) - len(self.excluded)

    def negative_mask(self, start: int, stop: int) -> npt.NDArray[np.bool_]:
        """For rows `start:stop`, which columns are their negatives (each pair once: the
        columns after the row's photo block, less the excluded pairs)."""
        mask = np.arange(len(self.rows))[None, :] >= self.block_end[start:stop, None]
        inside = (self.excluded[:, 0] >= start) & (self.excluded[:, 0] < stop)
        mask[self.excluded[inside, 0] - start, self.excluded[inside, 1]] = False
        return np.asarray(mask)


def make_pair_set(
    photo_of_image: Sequence[int],
    transform_of_image: Sequence[str | None],
    photos: Iterable[int],
    donors_of_image: Sequence[Sequence[int]] | None = None,
) -> PairSet:
    """The pair set of the images of `photos` (the image list is grouped by photo, original
    first); `donors_of_image` names the other photos each image shows (composites)."""
    wanted = set(photos)
    rows = np.array([i for i, p in enumerate(photo_of_image) if p in wanted], dtype=np.intp)
    photo_ids = np.asarray(photo_of_image)[rows]
    change = np.nonzero(np.diff(photo_ids))[0] + 1
    starts = np.concatenate([[0], change, [len(rows)]]).astype(np.intp)
    transforms = np.array([transform_of_image[i] or "" for i in rows])
    shown = [[photo_of_image[i], *(donors_of_image[i] if donors_of_image else ())] for i in rows]
    return PairSet(rows, starts, transforms, sharing_pairs(shown, photo_ids))


def sharing_pairs(shown: Sequence[Sequence[int]], photo_of_row: npt.NDArray[np.int_]) -> npt.NDArray[np.intp]:
    """Row pairs (first < second) of different photos whose images show some photo in common."""
    rows_showing: dict[int, list[int]] = {}
    for row, photos in enumerate(shown):
        for photo in set(photos):
            rows_showing.setdefault(photo, []).append(row)
    found: set[tuple[int, int]] = set()
    for rows in rows_showing.values():
        for position, first in enumerate(rows):
            found.update(
                (first, second)
                for second in rows[position + 1 :]
                if photo_of_row[first] != photo_of_row[second]
            )
    return np.array(sorted(found), dtype=np.intp).reshape(-1, 2)


class SourceCache:
    """Full pair-distance matrices of sources over one pair set, computed once and reused."""

    def __init__(self, tables: dict[str, HashTable], pairs: PairSet, keep: int = 6) -> None:
        self.tables = tables
        self.pairs = pairs
        self.keep = keep
        self._matrices: dict[str, Matrix] = {}

    def get(self, name: str) -> Matrix:
        if name in self._matrices:
            self._matrices[name] = self._matrices.pop(name)  # most recently used last
            return self._matrices[name]
        matrix = self._compute(name)
        self._matrices[name] = matrix
        while len(self._matrices) > self.keep:
            self._matrices.pop(next(iter(self._matrices)))
        return matrix

    def quality_mask(self, tables: Sequence[str], min_quality: int) -> npt.NDArray[np.bool_]:
        """Pairs where both images' hashes in `tables` reach `min_quality` (unknown quality passes)."""
        ok = np.ones(len(self.pairs.rows), dtype=bool)
        for name in tables:
            quality = self.tables[name].quality
            if quality is not None:
                values = quality[self.pairs.rows]
                ok &= ~(values < min_quality)  # nan (unknown) passes, as in the matcher
        return np.asarray(ok[:, None] & ok[None, :])

    def _compute(self, name: str) -> Matrix:
        if "+" in name:
            parts = name.split("+")
            total = np.zeros((len(self.pairs.rows),) * 2, dtype=np.float32)
            for part in parts:
                total += self.get(part)
            return total
        base, _, option = name.partition("@")
        table = self.tables[base].subset(self.pairs.rows)
        if table.vectors is not None:
            return euclidean_matrix(table.vectors, table.vectors)
        assert table.words is not None
        if option == "d4":
            if table.variants is None:
                raise KeyError(f"{base} has no dihedral variants")
            matrix = min_variant_matrix(table.variants, table.words)
            np.minimum(matrix, matrix.T, out=matrix)
            return matrix
        return hamming_matrix(table.words, table.words)


@dataclass(frozen=True)
class Term:
    """`source <= limit`, optionally only for pairs whose hashes of `gated` all reach `min_quality`."""

    source: str
    limit: float = 1.0
    min_quality: int | None = None
    gated: tuple[str, ...] = ()  # tables whose quality the gate reads


@dataclass(frozen=True)
class Scorer:
    """A score per pair: one source, or a matcher rule scaled as a whole. A rule is groups of
    terms (`or` of `and`s); a group scores a pair by its largest `distance / limit`, the rule by
    its smallest group score, so the threshold then scales every limit together."""

    name: str
    groups: tuple[tuple[Term, ...], ...]

    @classmethod
    def single(cls, name: str, source: str | None = None) -> Scorer:
        return cls(name, ((Term(source or name),),))

    @property
    def terms(self) -> tuple[Term, ...]:
        return tuple(term for group in self.groups for term in group)

    @property
    def is_rule(self) -> bool:
        """A matcher rule (limits in its own units) rather than a bare distance."""
        return len(self.terms) > 1 or self.terms[0].limit != 1.0

    @property
    def tables(self) -> set[str]:
        return {part.partition("@")[0] for term in self.terms for part in term.source.split("+")}

    def matrix(self, cache: SourceCache) -> npt.NDArray[np.float32]:
        score: npt.NDArray[np.float32] | None = None
        for group in self.groups:
            group_score: npt.NDArray[np.float32] | None = None
            for term in group:
                scaled = cache.get(term.source).astype(np.float32) / np.float32(term.limit)
                if term.min_quality is not None:
                    scaled[~cache.quality_mask(term.gated, term.min_quality)] = np.inf
                group_score = scaled if group_score is None else np.maximum(group_score, scaled)
            assert group_score is not None
            score = group_score if score is None else np.minimum(score, group_score)
        assert score is not None
        return score


@dataclass(frozen=True)
class PairScores:
    """A scorer's scores on one pair set: every positive, the lowest negatives, and their count."""

    positives: npt.NDArray[np.float64]
    positive_transforms: npt.NDArray[np.str_]
    lowest_negatives: npt.NDArray[np.float64]  # sorted ascending
    negative_count: int
    # with `matched_within`: the negatives scored within it, as their images' transforms ("": original)
    matched_negatives: list[tuple[str, str]] | None = None


def pair_scores(
    score: npt.NDArray[np.floating],
    pairs: PairSet,
    keep_negatives: int = 300_000,
    chunk: int = 512,
    matched_within: float | None = None,
) -> PairScores:
    """Split a full score matrix into positives (original vs each copy) and negatives (every pair of
    images of different photos), keeping only the `keep_negatives` lowest negatives; with
    `matched_within`, which negatives score within it (a preset's false pairs at its own limits)."""
    positives = np.concatenate(
        [score[s, s + 1 : e] for s, e in zip(pairs.starts[:-1], pairs.starts[1:], strict=True)]
    ).astype(np.float64)
    n = len(pairs.rows)
    kept: list[npt.NDArray[np.float64]] = []
    matched: list[tuple[str, str]] | None = None if matched_within is None else []
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        mask = pairs.negative_mask(start, stop)
        values = score[start:stop][mask].astype(np.float64)
        if values.size > keep_negatives:
            values = np.partition(values, keep_negatives - 1)[:keep_negatives]
        kept.append(values)
        if matched is not None and matched_within is not None:
            rows, columns = np.nonzero(mask & (score[start:stop] <= matched_within))
            matched += [
                (str(pairs.transforms[start + r]), str(pairs.transforms[c]))
                for r, c in zip(rows, columns, strict=True)
            ]
    negatives = np.concatenate(kept) if kept else np.zeros(0)
    if negatives.size > keep_negatives:
        negatives = np.partition(negatives, keep_negatives - 1)[:keep_negatives]
    return PairScores(
        positives, pairs.positive_transforms(), np.sort(negatives), pairs.negative_count, matched
    )


def pair_kinds(transform_pairs: Iterable[tuple[str, str]], family_of: Mapping[str, str]) -> dict[str, int]:
    """How many pairs there are of each kind, most first: a kind is the two images' families
    ("original" for an original), in alphabetical order joined by " ~ "."""
    kinds = Counter(
        " ~ ".join(sorted(family_of.get(t, "original") if t else "original" for t in pair))
        for pair in transform_pairs
    )
    return dict(kinds.most_common())


ScoreFn = Callable[[SourceCache], npt.NDArray[np.float32]]


def preset_scorer(name: str, dihedral: bool = True) -> Scorer:
    """The benchmark scorer of a `lookalike.matcher` preset, on lookalike's fast-mode hashes. A
    preset with a local clause is scored on its hash clauses alone here ("hashes only"): only
    the index path (`lookalike.benchmarks.index_eval`) can verify local features."""
    from lookalike.matcher import Matcher

    matcher = Matcher.preset(name)
    label = f"lookalike {name}" + (" (hashes only)" if matcher.local_inliers is not None else "")
    return rule_scorer(label, matcher, dihedral)


def rule_scorer(name: str, matcher: Matcher, dihedral: bool = True) -> Scorer:
    """The benchmark scorer of a matcher rule, on lookalike's fast-mode hashes; query variants
    (dihedral, or crop variants) are used as `dihedral=True` search uses them."""
    from lookalike.algorithms import parse_spec

    def term(condition: Condition) -> Term:
        parts = []
        for algorithm in condition.algorithms:
            spec = parse_spec(algorithm)
            has_variants = spec.algorithm.dihedral is not None or spec.algorithm.name in VARIANT_ALGORITHMS
            parts.append(f"lookalike:{spec.key}" + ("@d4" if dihedral and has_variants else ""))
        gated = tuple(f"lookalike:{parse_spec(a).key}" for a in condition.algorithms)
        return Term("+".join(parts), float(condition.max_distance), condition.min_quality, gated)

    groups = tuple(tuple(term(condition) for condition in group) for group in matcher.groups)
    return Scorer(name, groups)


# Algorithms whose hashes carry non-dihedral query variants (crop and tilt variants).
VARIANT_ALGORITHMS = ("phash_eq_crops",)
