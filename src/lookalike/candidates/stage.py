"""The candidate stage end to end: a batch of queries in, accepted pairs out.

1. `probes_for` says which key tables (or exact range searches) nominate the rule's candidates.
2. The backend answers each probe for the whole batch at once (`CandidateSource.nominate`).
3. `judge` decides every (query, stored entry) candidate on every hash the rule names.

`match_batch` turns the accepted pairs into `Verdict` lists (what `Index.match` returns);
`lookalike.dedupe.pairs` runs the same stage over a whole index for duplicate search.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from lookalike.candidates.batch import QueryBatch
from lookalike.candidates.judge import Judged, StoredHashes, concat_judged, judge
from lookalike.candidates.keys import KeyLayout
from lookalike.candidates.plan import KeyProbe, RangeProbe, probes_for
from lookalike.candidates.stored_variants import StoredVariants
from lookalike.local.features import LocalFeatures
from lookalike.local.second_look import DUPLICATE_LOOKS_PER_QUERY, NEAR_INLIERS, SecondLook
from lookalike.local.verify import Alignment
from lookalike.matcher import LOCAL_BREADTH, NEAR_FACTOR, Matcher, Verdict
from lookalike.sorted_arrays import sorted_unique

Ids = npt.NDArray[np.int64]
StoredFeatures = dict[int, tuple[LocalFeatures, LocalFeatures | None]]  # entry id -> compact sets
LOCAL_QUERIES_PER_PROBE = 4  # queries whose one-bit neighbour probes go in one call (~600,000 probes)
SAME_FRAME = 0.85  # each picture covers this much of the other: they lie on each other whole
COINCIDE = 0.02  # corners this close (share of the side): the two frames are one frame


class CandidateSource(Protocol):
    """What an index offers the candidate stage (both backends implement it)."""

    def algorithm_bits(self) -> dict[str, int]: ...

    def nominate(
        self,
        family: str,
        layout: KeyLayout,
        words: npt.NDArray[np.uint64],
        include_flagged: bool,
        owners: Ids | None = None,
    ) -> tuple[Ids, Ids]:
        """(row of `words`, entry id) for every stored hash of `family` sharing a key with it;
        with `owners` (the query of each row), any row of a query may stand for the others."""

    def nominate_exact(
        self, algorithm: str, words: npt.NDArray[np.uint64], radius: int, include_flagged: bool
    ) -> tuple[Ids, Ids]:
        """(row of `words`, entry id) for every stored hash within `radius` of it."""

    def stored_hashes(self, algorithm: str, ids: Ids) -> StoredHashes: ...

    def stored_hashes_many(self, algorithms: Sequence[str], ids: Ids) -> dict[str, StoredHashes]: ...

    def keys_by_id(self, ids: Ids) -> dict[int, str]: ...

    def stored_local(self, ids: Ids) -> dict[int, tuple[LocalFeatures, LocalFeatures | None]]: ...

    def local_at_hand(
        self, ids: Ids, *, mirrored: bool = False
    ) -> dict[int, tuple[LocalFeatures, LocalFeatures | None]]: ...

    def nominate_local(
        self, keys: npt.NDArray[np.uint32], tables: Ids, limit: int | None = None
    ) -> tuple[Ids, Ids, npt.NDArray[np.uint64]]:
        """(probe, entry id, keypoint signature) for every stored keypoint whose descriptor key in
        table `tables[p]` is `keys[p]`; keys held by `limit` keypoints or more may return none."""

    def stored_variants(self, algorithm: str) -> StoredVariants | None:
        """The stored variants of `algorithm` a query's own hash is compared with, if any."""


def candidate_pairs(
    source: CandidateSource,
    batch: QueryBatch,
    rule: Matcher,
    *,
    exact: bool = False,
    include_flagged: bool = False,
) -> tuple[Ids, Ids]:
    """Every (query row, entry id) some probe nominates, without repeats or self-pairs."""
    rows_found: list[Ids] = []
    ids_found: list[Ids] = []
    widths = source.algorithm_bits()
    for probe in probes_for(rule, widths, exact=exact):
        if isinstance(probe, KeyProbe):
            words, owner = probe.layout.probe_words(*probe_words(batch, probe.algorithms, probe.layout.nbits))
            if len(words):
                found_rows, found_ids = source.nominate(
                    probe.family, probe.layout, words, include_flagged, owners=owner
                )
                rows_found.append(owner[found_rows])
                ids_found.append(found_ids)
        elif isinstance(probe, RangeProbe):
            words, owner = probe_words(batch, (probe.algorithm,), widths[probe.algorithm])
            if len(words):
                found_rows, found_ids = source.nominate_exact(
                    probe.algorithm, words, probe.radius, include_flagged
                )
                rows_found.append(owner[found_rows])
                ids_found.append(found_ids)
    if not rows_found:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy()
    rows = np.concatenate(rows_found)
    ids = np.concatenate(ids_found)
    if batch.ids is not None:
        other = ids != batch.ids[rows]
        rows, ids = rows[other], ids[other]
    return unique_pairs(rows, ids)


def unique_pairs(rows: Ids, ids: Ids) -> tuple[Ids, Ids]:
    """Each (row, id) once, sorted by entry id then row (one packed sort when both fit in 32
    bits). Id order is what judging wants: it reads the stored hashes of a block of pairs from
    arrays indexed by id, and in id order those reads walk memory forwards instead of jumping
    (at a million images, 6x faster than in row order)."""
    if not len(rows):
        return rows, ids
    if int(ids.min()) >= 0 and int(ids.max()) < 2**31 and int(rows.max()) < 2**32:
        packed = sorted_unique((ids << 32) | rows)
        return packed & 0xFFFFFFFF, packed >> 32
    order = np.lexsort((rows, ids))  # ClickHouse ids use all 64 bits
    rows, ids = rows[order], ids[order]
    fresh = np.ones(len(rows), dtype=bool)
    fresh[1:] = (rows[1:] != rows[:-1]) | (ids[1:] != ids[:-1])
    return rows[fresh], ids[fresh]


def probe_words(
    batch: QueryBatch, algorithms: tuple[str, ...], nbits: int
) -> tuple[npt.NDArray[np.uint64], Ids]:
    """The variants of `algorithms` over the batch as flat (rows, words), with each row's query;
    a query's variants of a later algorithm that equal an earlier one's are probed once (a
    picture without borders has the same trimmed and untrimmed hash)."""
    parts: list[npt.NDArray[np.uint64]] = []
    owners: list[Ids] = []
    seen: list[npt.NDArray[np.uint64]] = []
    for algorithm in algorithms:
        query = batch.hashes.get(algorithm)
        if query is None or query.nbits != nbits:
            continue
        keep = query.present.copy()
        for earlier in seen:
            if earlier.shape == query.words.shape:
                keep &= ~np.all(earlier == query.words, axis=(1, 2))
        seen.append(query.words)
        rows = np.flatnonzero(keep)
        if not len(rows):
            continue
        chosen = query.words[rows]
        parts.append(chosen.reshape(-1, chosen.shape[2]))
        owners.append(np.repeat(rows, chosen.shape[1]))
    if not parts:
        return np.zeros((0, (nbits + 63) // 64), dtype=np.uint64), np.zeros(0, dtype=np.int64)
    return np.concatenate(parts), np.concatenate(owners)


def judge_batch(
    source: CandidateSource,
    batch: QueryBatch,
    rule: Matcher,
    *,
    exact: bool = False,
    include_flagged: bool = False,
) -> Judged:
    """The pairs of the batch's queries with stored entries that `rule` accepts: by their hashes,
    or, for a rule with a local clause, near misses that local features verify."""
    rows, ids = candidate_pairs(source, batch, rule, exact=exact, include_flagged=include_flagged)
    floors: dict[str, Ids] = {}
    if batch.ids is None:  # queries from the index itself meet stored variants as queries
        rows, ids, floors = with_stored_variants(source, batch, rule, rows, ids, exact=exact)
    nominated = None
    if rule.local_inliers is not None and batch.local is not None:
        nominated = local_candidates(source, batch, rows, ids, rule.local_breadth)
    return judge_candidates(
        source, batch, rows, ids, rule, include_flagged=include_flagged, floors=floors, nominated=nominated
    )


def judge_candidates(
    source: CandidateSource,
    batch: QueryBatch,
    rows: Ids,
    ids: Ids,
    rule: Matcher,
    *,
    include_flagged: bool = False,
    floors: dict[str, Ids] | None = None,
    nominated: tuple[Ids, Ids, StoredFeatures] | None = None,
) -> Judged:
    """The candidates (query row, entry id) that `rule` accepts, sorted by entry id: by their
    hashes, or for a rule with a local clause, near misses (and the `nominated` pairs local
    features retrieved, whatever their hashes, with the stored features retrieval read) that
    local features verify."""
    judged = judge(
        batch,
        rows,
        ids,
        rule,
        source.stored_hashes_many,
        include_flagged=include_flagged,
        near_misses=batch.local is not None,  # nothing to verify them with
        floors=floors,
    )
    if rule.local_inliers is None:
        return judged
    if nominated is not None and len(nominated[0]):
        retrieved = judge(
            batch,
            nominated[0],
            nominated[1],
            rule,
            source.stored_hashes_many,
            include_flagged=include_flagged,
            keep_all=True,
        )
        judged = concat_judged([judged, retrieved])
    return verify_near_misses(source, batch, judged, rule, None if nominated is None else nominated[2])


def with_stored_variants(
    source: CandidateSource, batch: QueryBatch, rule: Matcher, rows: Ids, ids: Ids, *, exact: bool = False
) -> tuple[Ids, Ids, dict[str, Ids]]:
    """The candidates (rows, ids) joined by the stored entries with a variant near a query's own
    hash (`Index.stored_variants`: an original meets the stored composites that show it), and
    per such algorithm each pair's distance to the entry's nearest variant (-1: none near), for
    `judge`. A duplicate search does without: each stored composite is a query there, and its
    variants meet the stored originals."""
    near_factor = NEAR_FACTOR if rule.local_inliers is not None else 1.0
    hits: dict[str, tuple[Ids, Ids, Ids]] = {}
    for algorithm in rule.algorithms:
        query = batch.hashes.get(algorithm)
        stored = source.stored_variants(algorithm) if query is not None else None
        if query is None or stored is None or query.words.shape[2] * 64 != stored.layout.nbits:
            continue
        limit = max(c.max_distance for c in rule.conditions if algorithm in c.algorithms) * near_factor
        present = np.flatnonzero(query.present)
        found_rows, found_ids, distances = stored.nearest(query.words[present, 0], limit, exact=exact)
        hits[algorithm] = (present[found_rows], found_ids, distances)
    if not hits:
        return rows, ids, {}
    rows, ids = unique_pairs(
        np.concatenate([rows, *(hit[0] for hit in hits.values())]),
        np.concatenate([ids, *(hit[1] for hit in hits.values())]),
    )
    floors: dict[str, Ids] = {}
    for algorithm, (found_rows, found_ids, distances) in hits.items():
        floor = np.full(len(rows), -1, dtype=np.int64)
        floor[_positions(rows, ids, found_rows, found_ids)] = distances
        floors[algorithm] = floor
    return rows, ids, floors


def _positions(rows: Ids, ids: Ids, wanted_rows: Ids, wanted_ids: Ids) -> Ids:
    """Where each wanted (row, id) pair sits among the distinct pairs (rows, ids), which hold
    every one of them: sorted together, each wanted pair comes just before its match."""
    tags = np.concatenate([np.arange(len(rows)), -1 - np.arange(len(wanted_rows))])
    order = np.lexsort((tags, np.concatenate([rows, wanted_rows]), np.concatenate([ids, wanted_ids])))
    sorted_tags = tags[order]
    wanted = np.flatnonzero(sorted_tags < 0)
    positions = np.empty(len(wanted_rows), dtype=np.int64)
    positions[-1 - sorted_tags[wanted]] = sorted_tags[wanted + 1]
    return positions


def local_candidates(
    source: CandidateSource, batch: QueryBatch, rows: Ids, ids: Ids, breadth: int
) -> tuple[Ids, Ids, StoredFeatures]:
    """(query row, entry id) pairs local features nominate (`lookalike.local.retrieval`) that the
    hash candidates (rows, ids) do not already hold, self-pairs left out, and the stored features
    read to choose them (verification needs them again)."""
    from lookalike.local.retrieval import (
        COMMON_KEY,
        NEIGHBOURS_ABOVE,
        POOL_PER_CANDIDATE,
        by_shared_descriptors,
        descriptor_probes,
        query_descriptors,
        vote,
    )

    assert batch.local is not None
    found: list[tuple[Ids, Ids]] = []
    step = LOCAL_QUERIES_PER_PROBE if breadth > NEIGHBOURS_ABOVE else len(batch)
    for start in range(0, len(batch), step):
        words, owners = query_descriptors(list(batch.local[start : start + step]))
        if not len(words):
            continue
        owners += start
        keys, tables, probe_owners, signatures = descriptor_probes(
            words, owners, neighbours=breadth > NEIGHBOURS_ABOVE
        )
        postings = source.nominate_local(keys, tables, COMMON_KEY)
        found.append(vote((probe_owners, signatures), postings, POOL_PER_CANDIDATE * breadth))
    if not found:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), {}
    found_rows = np.concatenate([voted[0] for voted in found])
    found_ids = np.concatenate([voted[1] for voted in found])
    if batch.ids is not None:
        other = found_ids != batch.ids[found_rows]
        found_rows, found_ids = found_rows[other], found_ids[other]
    stored = source.stored_local(np.unique(found_ids))
    found_rows, found_ids = by_shared_descriptors(found_rows, found_ids, batch.local, stored, breadth)
    known = set(zip(rows.tolist(), ids.tolist(), strict=True))
    fresh = np.array(
        [(r, i) not in known for r, i in zip(found_rows.tolist(), found_ids.tolist(), strict=True)], bool
    )
    if len(fresh):
        found_rows, found_ids = found_rows[fresh], found_ids[fresh]
    return found_rows, found_ids, stored


def frames_coincide(alignment: Alignment) -> bool:
    """Whether the two pictures lie on each other frame for frame: each frame drawn on the other
    is that whole frame, to `COINCIDE` at every corner (the transform is the identity, mirrored
    or not). A crop, however light, moves or scales the frame, so it never coincides."""
    whole = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    for region in (alignment.stored_region, alignment.query_region):
        corners = np.asarray(region, dtype=np.float64).reshape(-1, 2)
        nearest = np.abs(corners[:, None, :] - whole[None, :, :]).max(axis=2).min(axis=1)
        if nearest.max() > COINCIDE:
            return False
    return True


def verify_near_misses(
    source: CandidateSource,
    batch: QueryBatch,
    judged: Judged,
    rule: Matcher,
    read: StoredFeatures | None = None,
) -> Judged:
    """The accepted pairs of `judged`, plus those local features verify (query features, and the
    mirrored query's, against the stored compact ones, and when those came close every keypoint
    of the files at hand, `SecondLook`: a search's own picture against the stored file, in a
    duplicate search the query entry's file against the stored one's): near misses of the
    hashes, and pairs only local features nominated. Not when the two frames coincide
    (`frames_coincide`) or the inliers lie in place in both (`Alignment.in_place`): an edited
    copy there is the hashes' to judge, and what two different pictures share frame for frame or
    in place is an app's bars, a caption or a logo, not a picture. A light crop (each picture
    covering most of the other, `SAME_FRAME`) is the local features' to find: the hashes' crop
    variants have fixed shapes. A duplicate search with a breadth above the default also looks at
    each query's unverified pair sharing most descriptors on the files (`_best_shared`): a
    picture in picture does not come near on compact keypoints. The stored features retrieval
    already `read` are not read again."""
    from lookalike.local.verify import verify_near

    assert rule.local_inliers is not None
    accepted = judged.evaluation.accepted
    inliers = np.full(len(judged.rows), -1, dtype=np.int64)
    alignments: list[Alignment | None] = [None] * len(judged.rows)
    pending = np.flatnonzero(~accepted)
    if len(pending) and batch.local is not None:
        stored = dict(read or {})
        unread = np.array([i for i in np.unique(judged.ids[pending]).tolist() if i not in stored], np.int64)
        if len(unread):
            stored.update(source.stored_local(unread))
        query_entries = batch.ids  # a duplicate search's queries are stored entries
        budget = None if query_entries is None else DUPLICATE_LOOKS_PER_QUERY * len(batch)
        second_look = SecondLook(source.local_at_hand, budget)
        for position in pending.tolist():
            row, entry = int(judged.rows[position]), int(judged.ids[position])
            query, query_mirrored = batch.local[row]
            found = stored.get(entry)
            if query is None or found is None:
                continue
            may_look = query.finer is not None or query_entries is not None
            alignment, near = verify_near(
                query,
                found[0],
                query_mirrored,
                min_inliers=rule.local_inliers,
                near_from=NEAR_INLIERS if may_look else None,  # how close: only where a look may follow
            )
            if alignment is None and query.finer is not None:  # a search's own picture
                alignment = second_look.verify(row, entry, query, query_mirrored, near, rule.local_inliers)
            elif alignment is None and query_entries is not None:  # two stored pictures
                alignment = second_look.verify_stored(
                    row, int(query_entries[row]), entry, near, rule.local_inliers
                )
            if alignment is None:
                continue
            if frames_coincide(alignment) or alignment.in_place:
                continue
            inliers[position] = alignment.inliers
            alignments[position] = alignment
        if query_entries is not None and rule.local_breadth > LOCAL_BREADTH:
            unfit = pending[inliers[pending] < 0]
            for position, mirrored in _best_shared(batch, judged, unfit, stored):
                row, entry = int(judged.rows[position]), int(judged.ids[position])
                alignment = second_look.look_stored(
                    row, int(query_entries[row]), entry, mirrored, rule.local_inliers
                )
                if alignment is None or frames_coincide(alignment) or alignment.in_place:
                    continue
                inliers[position] = alignment.inliers
                alignments[position] = alignment
    verified = Judged(
        judged.rows, judged.ids, judged.evaluation, judged.distances, judged.variants, inliers, alignments
    )
    return verified.take(np.flatnonzero(accepted | (inliers >= 0)))


def _best_shared(
    batch: QueryBatch, judged: Judged, positions: Ids, stored: StoredFeatures
) -> list[tuple[int, bool]]:
    """Of the unverified `positions`, each query's pair sharing most descriptors out of place
    (`shared_descriptors`, at least one), and whether the query's mirror image shares more."""
    from lookalike.local.retrieval import shared_descriptors

    assert batch.local is not None
    chosen: list[tuple[int, bool]] = []
    rows = judged.rows[positions]
    for row in np.unique(rows).tolist():
        mine = positions[rows == row]
        query, query_mirrored = batch.local[row]
        held = [(p, stored[int(judged.ids[p])][0]) for p in mine.tolist() if int(judged.ids[p]) in stored]
        if query is None or not held:
            continue
        features = [f for _, f in held]
        straight = shared_descriptors((query, None), features)
        turned = shared_descriptors((None, query_mirrored), features)
        best = int(np.argmax(np.maximum(straight, turned)))
        if max(straight[best], turned[best]) >= 1:
            chosen.append((held[best][0], bool(turned[best] > straight[best])))
    return chosen


def match_batch(
    source: CandidateSource,
    batch: QueryBatch,
    rule: Matcher,
    *,
    exact: bool = False,
    include_flagged: bool = False,
) -> list[list[Verdict]]:
    """Per query, the stored images `rule` accepts, sorted by (score, key)."""
    judged = judge_batch(source, batch, rule, exact=exact, include_flagged=include_flagged)
    keys = source.keys_by_id(np.unique(judged.ids))
    results: list[list[Verdict]] = [[] for _ in range(len(batch))]
    for position in range(len(judged.rows)):
        key = keys.get(int(judged.ids[position]))
        if key is None:  # removed meanwhile
            continue
        distances = _distances_at(judged, position)
        variant = _variant_at(judged, rule, position)
        alignment = None if judged.alignments is None else judged.alignments[position]
        if alignment is not None:
            distances["local"] = alignment.inliers
        variants = {name: int(chosen[position]) for name, chosen in judged.variants.items()}
        verdict = Verdict(
            key, distances, int(judged.evaluation.score[position]), variant, alignment, variants
        )
        results[int(judged.rows[position])].append(verdict)
    for verdicts in results:
        verdicts.sort(key=lambda v: (v.score, v.key))
    return results


def _distances_at(judged: Judged, position: int) -> dict[str, int]:
    """What `Matcher.verdict` reports: each condition's summed distance, then each algorithm's."""
    distances: dict[str, int] = {}
    for condition, values in judged.evaluation.condition_distances.items():
        value = int(values[position])
        if value >= 0:
            distances[" + ".join(condition.algorithms)] = value
    for algorithm, values in judged.distances.items():
        value = int(values[position])
        if value >= 0:
            distances.setdefault(algorithm, value)
    return distances


def _variant_at(judged: Judged, rule: Matcher, position: int) -> int:
    """The query variant behind the condition that accepted the pair most clearly."""
    closest = int(judged.evaluation.closest[position])
    for group in rule.groups:
        for condition in group:
            if int(judged.evaluation.condition_distances[condition][position]) == closest:
                first = condition.algorithms[0]
                if first in judged.variants:
                    return int(judged.variants[first][position])
    return 0
