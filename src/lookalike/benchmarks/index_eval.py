"""Matcher rules as an index runs them: recall per family and false pairs from a real duplicate search.

The hash-table benchmark (`lookalike.benchmarks.scoring`) scores a rule from its hashes alone. A
rule with a local clause (`... or local >= 12`) also needs each image's local features and the
geometry the index verifies, which only the index path has. Here the images of one half go into
a temporary SQLite index (`Index.add_files(..., local=True, dihedral=True)`: stored variants and
local features), and `Index.duplicates(matcher=rule)` searches every stored image. Scored on the
same pairs as the hash tables:

    found          an original and one of its copies that the search paired
    false pair     two images the search paired that show no photo in common
    grouped        the same, for "in one group" (connected components: what `dupes` shows)

The public API only: what a user's `lookalike dupes --index` would find on these images.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from lookalike.benchmarks.scoring import PairSet, pair_kinds
from lookalike.dedupe.grouping import Group
from lookalike.discover import file_key
from lookalike.errors import ImageError
from lookalike.hash_cache import HashCache
from lookalike.index import Index, open_index
from lookalike.local.features import LocalFeatures
from lookalike.matcher import DEFAULT_PRESET, PRESETS, Matcher, default_index_hashes

LOCAL_INLIERS = 12  # the example clause: `near-duplicate or local >= 12`


def evaluated_rules(extra: Sequence[str] = ()) -> dict[str, Matcher]:
    """Every preset by name; beside the default preset, the same without its local clause
    ("near-duplicate (hashes only)") or with one (`or local >= 12`) if it has none, so the report
    shows what keypoint verification adds; and any `extra` rule or preset name."""
    rules = {name: Matcher.preset(name) for name in PRESETS}
    default = rules[DEFAULT_PRESET]
    if default.local_inliers is None:
        with_local = f"{DEFAULT_PRESET} or local >= {LOCAL_INLIERS}"
        rules[with_local] = Matcher.parse(f"{PRESETS[DEFAULT_PRESET]} or local >= {LOCAL_INLIERS}")
    else:
        rules[f"{DEFAULT_PRESET} (hashes only)"] = Matcher(default.groups)
    for text in extra:
        rules[text] = Matcher.parse(text)
    return rules


@dataclass
class LinkScores:
    """A duplicate search scored on a pair set."""

    positives: int
    found: int
    recall: float
    family_recall: dict[str, float]
    transform_recall: dict[str, float]
    false_pairs: int
    precision: float  # found / (found + false pairs); nan when nothing was paired
    grouped_recall: float
    grouped_false_pairs: int
    false_kinds: dict[str, int] = field(default_factory=dict)  # false pairs by their images' families
    false_examples: list[tuple[str, str]] = field(default_factory=list)  # image keys, the first few


@dataclass
class RuleResult:
    """One rule's duplicate search over one half's index."""

    name: str
    rule: str
    seconds: float
    scores: LinkScores


@dataclass
class IndexRun:
    """Everything the index path measured on one half."""

    half: str
    images: int
    negatives: int
    index_seconds: float  # hashing (with local features) and adding
    failed: list[str]
    results: list[RuleResult]


@dataclass(frozen=True)
class Links:
    """What a duplicate search found, over pair-set rows: its pairs and each row's group (-1: none)."""

    edges: frozenset[tuple[int, int]]  # (a, b) with a < b
    group_of: npt.NDArray[np.int64]

    @classmethod
    def from_groups(
        cls, groups: Sequence[Group], row_of: Mapping[str, int], twins: Mapping[int, int]
    ) -> Links:
        """The pairs and groups of `groups` (keys -> rows by `row_of`); a row left out of the
        index because its bytes equal another row's (`twins`: row -> that row) is paired with it
        and shares its links."""
        group_of = np.full(len(row_of), -1, dtype=np.int64)
        edges: set[tuple[int, int]] = set()
        for number, group in enumerate(groups):
            for entry in group.members:
                group_of[row_of[entry.key]] = number
            for first, second in group.distances:
                a, b = row_of[first], row_of[second]
                edges.add((min(a, b), max(a, b)))
        fresh = len(groups)
        for twin, row in twins.items():
            if group_of[row] < 0:
                group_of[row], fresh = fresh, fresh + 1
            group_of[twin] = group_of[row]
            edges.add((min(twin, row), max(twin, row)))
            for a, b in list(edges):
                if row in (a, b) and twin not in (a, b):
                    other = b if a == row else a
                    edges.add((min(twin, other), max(twin, other)))
        return cls(frozenset(edges), group_of)


def score_links(
    links: Links, pairs: PairSet, family_of: Mapping[str, str], keys: Sequence[str], examples: int = 10
) -> LinkScores:
    """Found positives (per family and per transform), false pairs, and the same for groups."""
    sizes = np.diff(pairs.starts)
    photo_of_row = np.repeat(np.arange(len(sizes)), sizes)
    excluded = {(int(a), int(b)) for a, b in pairs.excluded}
    found, grouped, transforms = [], [], []
    for start, end in zip(pairs.starts[:-1].tolist(), pairs.starts[1:].tolist(), strict=True):
        for copy in range(start + 1, end):
            found.append((start, copy) in links.edges)
            grouped.append(links.group_of[start] >= 0 and links.group_of[start] == links.group_of[copy])
            transforms.append(str(pairs.transforms[copy]))
    false = sorted(
        (a, b) for a, b in links.edges if photo_of_row[a] != photo_of_row[b] and (a, b) not in excluded
    )
    hit = np.array(found, dtype=bool)
    families = np.array([family_of[t] for t in transforms])
    names = np.array(transforms)
    true_count = int(hit.sum())
    paired = true_count + len(false)
    return LinkScores(
        positives=len(hit),
        found=true_count,
        recall=float(hit.mean()) if len(hit) else float("nan"),
        family_recall={f: float(hit[families == f].mean()) for f in dict.fromkeys(families.tolist())},
        transform_recall={t: float(hit[names == t].mean()) for t in dict.fromkeys(names.tolist())},
        false_pairs=len(false),
        precision=true_count / paired if paired else float("nan"),
        grouped_recall=float(np.mean(grouped)) if grouped else float("nan"),
        grouped_false_pairs=_grouped_false_pairs(links.group_of, photo_of_row, excluded),
        false_kinds=pair_kinds(
            ((str(pairs.transforms[a]), str(pairs.transforms[b])) for a, b in false), family_of
        ),
        false_examples=[(keys[a], keys[b]) for a, b in false[:examples]],
    )


def _grouped_false_pairs(
    group_of: npt.NDArray[np.int64], photo_of_row: npt.NDArray[np.int_], excluded: set[tuple[int, int]]
) -> int:
    """Pairs of rows in one group that show no photo in common."""
    in_groups = group_of >= 0
    total = 0
    for group in np.unique(group_of[in_groups]).tolist():
        photos = photo_of_row[group_of == group]
        n = len(photos)
        _, counts = np.unique(photos, return_counts=True)
        total += n * (n - 1) // 2 - int((counts * (counts - 1) // 2).sum())
    sharing = sum(1 for a, b in excluded if group_of[a] >= 0 and group_of[a] == group_of[b])
    return total - sharing


@dataclass
class Indexed:
    """Images in a temporary index: their keys, rows by key, rows skipped for bytes equal to
    another row's (row -> that row), the files that failed, and the time it took."""

    keys: list[str]
    row_of: dict[str, int]
    twins: dict[int, int]
    failed: list[str]
    seconds: float


@contextmanager
def temporary_index(
    paths: Sequence[str],
    rules: Mapping[str, Matcher],
    database: Path,
    *,
    workers: int | None = None,
    cache: Path | None = None,
) -> Iterator[tuple[Index, Indexed]]:
    """A new SQLite index at `database` holding `paths` with what `rules` read (the presets'
    hashes, stored variants and local features); deleted afterwards."""
    keys = [file_key(p) for p in paths]
    row_of = {key: row for row, key in enumerate(keys)}
    hashes = [*default_index_hashes(), *(a for rule in rules.values() for a in rule.algorithms)]
    database.unlink(missing_ok=True)
    started = time.perf_counter()
    hash_cache = HashCache(cache) if cache is not None else None
    try:
        with open_index(str(database)) as index:
            report = index.add_files(
                paths,
                list(dict.fromkeys(hashes)),
                local=True,
                dihedral=True,
                workers=workers,
                cache=hash_cache,
            )
            twins = {row_of[key]: row_of[existing] for key, existing in report.same_bytes}
            failed = [f"{key}: {reason}" for key, reason in report.failed]
            yield index, Indexed(keys, row_of, twins, failed, time.perf_counter() - started)
    finally:
        if hash_cache is not None:
            hash_cache.close()
        database.unlink(missing_ok=True)


def evaluate_half(
    half: str,
    paths: Sequence[str],
    pairs: PairSet,
    family_of: Mapping[str, str],
    rules: Mapping[str, Matcher],
    folder: Path,
    *,
    workers: int | None = None,
    cache: Path | None = None,
    verify: bool = True,
    files: bool = False,
    log: Callable[[str], None] = print,
) -> IndexRun:
    """Index `paths` (the pair set's images, row by row) in a new SQLite index under `folder`,
    run each rule's duplicate search, and score it on `pairs`; with `verify`, the default
    preset's pairs again after keypoint verification ("<preset>, verified"); with `files`, each
    rule's groups as `lookalike dupes` shows them, cut where the files show a pair is not a copy
    ("<rule>, files": `dedupe.shown_copies`). `cache`: a hash cache file, so a second run hashes
    nothing again."""
    database = folder / f"index-{half}.db"
    with temporary_index(paths, rules, database, workers=workers, cache=cache) as (index, indexed):
        log(f"  index path, {half} half: {len(paths)} images indexed in {indexed.seconds:.0f} s")
        results = []
        for name, rule in rules.items():
            started = time.perf_counter()
            groups = index.duplicates(matcher=rule)
            seconds = time.perf_counter() - started
            links = Links.from_groups(groups, indexed.row_of, indexed.twins)
            results.append(
                RuleResult(name, str(rule), seconds, score_links(links, pairs, family_of, indexed.keys))
            )
            log(f"  index path, {half} half: {name}: {seconds:.0f} s")
            if files:
                started = time.perf_counter()
                split = files_split(groups)
                checked = seconds + time.perf_counter() - started
                scores = score_links(
                    Links.from_groups(split, indexed.row_of, indexed.twins), pairs, family_of, indexed.keys
                )
                results.append(RuleResult(f"{name}, files", str(rule), checked, scores))
                log(f"  index path, {half} half: {name}, files: {checked:.0f} s")
            if name == DEFAULT_PRESET and verify:
                started = time.perf_counter()
                kept = verified_links(index, links, indexed.keys, workers=workers)
                seconds += time.perf_counter() - started
                scores = score_links(kept, pairs, family_of, indexed.keys)
                results.append(RuleResult(f"{name}, verified", str(rule), seconds, scores))
                log(f"  index path, {half} half: {name}, verified: {seconds:.0f} s")
    return IndexRun(half, len(paths), pairs.negative_count, indexed.seconds, indexed.failed, results)


def files_split(groups: Sequence[Group]) -> list[Group]:
    """`groups` cut where their files show a pair is not a copy, as `lookalike dupes` does."""
    from lookalike.dedupe.describe import member_facts
    from lookalike.dedupe.shown_copies import split_group

    split: list[Group] = []
    for group in groups:
        split.extend(split_group(group, member_facts(group)).groups)
    return split


def verified_links(index: Index, links: Links, keys: Sequence[str], workers: int | None = None) -> Links:
    """The pairs of `links` that keypoints verify, as `lookalike search` labels a match of the
    hashes (`verified`): either image searched for, its own keypoints (hashed afresh from its
    file, as a query is) against the other's stored ones; and their groups. A pair is kept when
    keypoints cannot judge it either way (no stored features, or fewer keypoints than a verdict
    needs inliers: `can_judge`), and dropped when the geometry rejects it ("similar, not
    verified as a copy"). The files with something to judge are hashed first, on `workers`."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from lookalike.discover import key_path
    from lookalike.local.verify import MIN_INLIERS, can_judge, verify
    from lookalike.pipeline import hash_files

    rows = sorted({row for edge in links.edges for row in edge})
    ids = index.ids_by_key([keys[row] for row in rows])
    stored = index.stored_local(np.array(sorted(ids.values()), dtype=np.int64))
    stored_of = {row: stored.get(ids.get(keys[row], -1)) for row in rows}
    # a file is hashed only when there is something to judge: its partner has stored features
    wanted = sorted(
        {first for first, second in links.edges if stored_of[second] is not None}
        | {second for first, second in links.edges if stored_of[first] is not None}
    )
    row_of_path = {key_path(keys[row]): row for row in wanted}
    asked: dict[int, tuple[LocalFeatures | None, LocalFeatures | None]] = {}
    hashed = hash_files(list(row_of_path), ["phash"], dihedral=True, local="query", workers=workers)
    for path, result in hashed:
        if not isinstance(result, ImageError):
            asked[row_of_path[path]] = (result.local, result.local_mirrored)

    def query(row: int) -> tuple[LocalFeatures | None, LocalFeatures | None]:
        return asked.get(row, (None, None))

    def found_in(first: int, second: int) -> bool:
        target = stored_of[second]
        if target is None:
            return False
        features, mirrored = query(first)
        return (
            features is not None
            and verify(features, target[0], mirrored, min_inliers=MIN_INLIERS) is not None
        )

    def judged(first: int, second: int) -> bool:
        target = stored_of[second]  # the file is hashed only when there is something to judge
        if target is None:
            return False
        features = query(first)[0]
        return features is not None and can_judge(features, target[0])

    def holds(first: int, second: int) -> bool:
        if not (judged(first, second) or judged(second, first)):
            return True  # nothing to judge: no stored features, or too few keypoints either way
        return found_in(first, second) or found_in(second, first)

    kept = frozenset(edge for edge in links.edges if holds(*edge))
    group_of = np.full(len(links.group_of), -1, dtype=np.int64)
    if kept:
        first, second = np.array(sorted(kept), dtype=np.int64).T
        size = len(group_of)
        graph = coo_matrix((np.ones(len(first)), (first, second)), shape=(size, size))
        _, labels = connected_components(graph, directed=False)
        paired = np.zeros(size, dtype=bool)
        paired[first] = paired[second] = True
        group_of[paired] = labels[paired]
    return Links(kept, group_of)


Wanted = TypeVar("Wanted")


def matched_pairs(
    paths: Sequence[str],
    wanted: Sequence[tuple[int, int, Wanted]],
    rules: Mapping[str, Matcher],
    folder: Path,
) -> dict[str, list[Wanted]]:
    """Which of the `wanted` pairs (two positions in `paths`, and what to report) each rule's
    duplicate search pairs, on an index of `paths` alone (the hard negatives: a few photos of
    the same places)."""
    found: dict[str, list[Wanted]] = {}
    with temporary_index(paths, rules, folder / "index-hard-negatives.db", workers=1) as (index, indexed):
        for name, rule in rules.items():
            links = Links.from_groups(index.duplicates(matcher=rule), indexed.row_of, indexed.twins)
            found[name] = [what for a, b, what in wanted if (min(a, b), max(a, b)) in links.edges]
    return found
