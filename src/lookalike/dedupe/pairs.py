"""Pairs of stored entries that a matcher rule accepts: the input of grouping.

A duplicate search is one batched job: the stored images are queries (their stored hashes, or
their hashes with variants from `queries`), taken a batch at a time through the candidate stage
(`lookalike.candidates.stage`), so memory stays bounded whatever the collection's size. With a
`checkpoint` file the job records each finished batch, and a run interrupted (Ctrl-C, a crash)
resumes where it stopped when started again on the same index with the same rule.

When every batch is done, the pairs found nominate the pairs the candidate keys missed
(`lookalike.candidates.expansion`): two images that each pair with a third are judged against
each other, both ways, by the same rule.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import numpy.typing as npt

from lookalike.candidates.batch import QueryBatch
from lookalike.candidates.expansion import both_ways, second_hop_pairs
from lookalike.candidates.stage import judge_batch, judge_candidates, unique_pairs
from lookalike.hash import Hash
from lookalike.index.base import Pairs

if TYPE_CHECKING:
    from lookalike.index.base import Index
    from lookalike.matcher import Matcher

Ids = npt.NDArray[np.int64]
BATCH = 2000  # queries per batch: a few tens of MB of variants and candidates
Progress = Callable[[int, int], None]  # (queries done, queries in all)
QueriesById = Callable[[Ids], QueryBatch]  # the queries of these entry ids, in that order


def rule_pairs(
    index: Index,
    matcher: Matcher | str,
    *,
    queries: Mapping[str, Mapping[str, Hash]] | Iterable[QueryBatch] | None = None,
    total: int | None = None,
    exact: bool = False,
    include_flagged: bool = False,
    progress: Progress | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    queries_by_id: QueriesById | None = None,
) -> Pairs:
    """Every pair of stored entries `matcher` accepts, with the distance of the clause that
    accepted it most clearly (`Matcher.closest`).

    `queries`: None searches every stored image with its stored hashes; a mapping (stored key ->
    that image's hashes with variants, `hash_file(..., dihedral=True)`) or a stream of
    `QueryBatch`es with `ids` searches with variants, so rotated, flipped and cropped copies pair.
    The pairs the candidate keys missed between two partners of one image are judged at the end
    (not with `exact`, which misses none); a stream needs `queries_by_id` for that, the same
    queries for chosen entry ids.
    """
    from lookalike.matcher import Matcher

    rule = matcher if isinstance(matcher, Matcher) else Matcher.parse(matcher)
    if queries is None:
        local = rule.local_inliers is not None
        batches: Iterable[QueryBatch] = index.stored_batches(
            rule.algorithms, BATCH, include_flagged, local=local
        )
        total = len(index) if total is None else total
        queries_by_id = _stored_queries(index, rule, include_flagged)
    elif isinstance(queries, Mapping):
        batches = _mapping_batches(index, queries)
        total = len(queries)
        queries_by_id = _mapping_queries(index, queries)
    else:
        batches = queries
    index.hold_stored_hashes(rule.algorithms)  # every stored hash is judged some time
    journal = (
        _Journal(checkpoint, _signature(index, rule, exact, include_flagged, queries)) if checkpoint else None
    )
    first: list[Ids] = []
    second: list[Ids] = []
    scores: list[Ids] = []
    done = 0
    resume_from = 0
    if journal is not None:
        resume_from, restored = journal.restore()
        if restored is not None:
            first.append(restored[0])
            second.append(restored[1])
            scores.append(restored[2])
    for number, batch in enumerate(batches):
        if number < resume_from:
            done += len(batch)
            continue
        judged = judge_batch(index, batch, rule, exact=exact, include_flagged=include_flagged)
        assert batch.ids is not None
        a = batch.ids[judged.rows]
        b = judged.ids
        first.append(np.minimum(a, b))
        second.append(np.maximum(a, b))
        scores.append(judged.evaluation.closest)
        done += len(batch)
        if journal is not None:
            journal.record(number + 1, first[-1], second[-1], scores[-1])
        if progress is not None:
            progress(done, total if total is not None else done)
    found = _unique_pairs(first, second, scores)
    if not exact and queries_by_id is not None:
        more = second_hop_judged(index, rule, found[0], found[1], queries_by_id, include_flagged)
        found = _unique_pairs([found[0], more[0]], [found[1], more[1]], [found[2], more[2]])
    entries = index.entries_by_id(np.union1d(found[0], found[1]))
    if journal is not None:
        journal.finish()
    return Pairs(found[0], found[1], found[2], entries)


def second_hop_judged(
    index: Index,
    rule: Matcher,
    first: Ids,
    second: Ids,
    queries_by_id: QueriesById,
    include_flagged: bool = False,
) -> tuple[Ids, Ids, Ids]:
    """The pairs (a < b, distance) `rule` accepts among the second-hop pairs of the found pairs
    (`second_hop_pairs`), each judged both ways, `BATCH` queries at a time."""
    query_ids, stored_ids = both_ways(*second_hop_pairs(first, second))
    found_a: list[Ids] = [np.zeros(0, dtype=np.int64)]
    found_b: list[Ids] = [np.zeros(0, dtype=np.int64)]
    scores: list[Ids] = [np.zeros(0, dtype=np.int64)]
    chosen = np.unique(query_ids)
    for start in range(0, len(chosen), BATCH):
        ids = chosen[start : start + BATCH]
        batch = queries_by_id(ids)
        if batch.ids is None or not len(batch.ids):
            continue
        # query_ids is sorted: this chunk's pairs are one slice of it
        low = int(np.searchsorted(query_ids, ids[0], side="left"))
        high = int(np.searchsorted(query_ids, ids[-1], side="right"))
        queries, stored = query_ids[low:high], stored_ids[low:high]
        wanted = np.isin(queries, batch.ids)  # a mapping may lack some entries
        order = np.argsort(batch.ids, kind="stable")
        rows = order[np.searchsorted(batch.ids, queries[wanted], sorter=order)]
        rows, candidates = unique_pairs(rows.astype(np.int64), stored[wanted])
        judged = judge_candidates(index, batch, rows, candidates, rule, include_flagged=include_flagged)
        a = batch.ids[judged.rows]
        found_a.append(np.minimum(a, judged.ids))
        found_b.append(np.maximum(a, judged.ids))
        scores.append(judged.evaluation.closest)
    return np.concatenate(found_a), np.concatenate(found_b), np.concatenate(scores)


def _stored_queries(index: Index, rule: Matcher, include_flagged: bool) -> QueriesById:
    """Stored entries as queries, as the duplicate search over the index itself makes them."""
    local = rule.local_inliers is not None

    def queries(ids: Ids) -> QueryBatch:
        return index.stored_batch(ids, rule.algorithms, include_flagged, local=local)

    return queries


def _mapping_queries(index: Index, queries: Mapping[str, Mapping[str, Hash]]) -> QueriesById:
    """The given hashes of chosen entries (entries whose key the mapping lacks are left out)."""

    def by_id(ids: Ids) -> QueryBatch:
        keys = index.keys_by_id(ids)
        known = [int(i) for i in ids if keys.get(int(i)) in queries]
        return QueryBatch.from_hashes([queries[keys[i]] for i in known], ids=known)

    return by_id


def _mapping_batches(index: Index, queries: Mapping[str, Mapping[str, Hash]]) -> Iterator[QueryBatch]:
    keys = list(queries)
    for start in range(0, len(keys), BATCH):
        chunk = keys[start : start + BATCH]
        ids = index.ids_by_key(chunk)
        known = [key for key in chunk if key in ids]  # keys absent from the index are ignored
        yield QueryBatch.from_hashes([queries[key] for key in known], ids=[ids[key] for key in known])


def _unique_pairs(first: Sequence[Ids], second: Sequence[Ids], scores: Sequence[Ids]) -> tuple[Ids, Ids, Ids]:
    """Each pair once (found from both sides, it keeps its smaller distance)."""
    if not first:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), empty.copy()
    a, b, d = np.concatenate(first), np.concatenate(second), np.concatenate(scores)
    order = np.lexsort((d, b, a))
    a, b, d = a[order], b[order], d[order]
    fresh = np.ones(len(a), dtype=bool)
    if len(a) > 1:
        fresh[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return a[fresh], b[fresh], d[fresh]


def _signature(
    index: Index,
    rule: Matcher,
    exact: bool,
    include_flagged: bool,
    queries: object,
) -> str:
    """What a checkpoint belongs to: the index's state, the rule and the kind of queries."""
    kind = "stored" if queries is None else "mapping" if isinstance(queries, Mapping) else "stream"
    facts = [index.url, index.fingerprint(), str(rule), exact, include_flagged, kind, BATCH]
    return hashlib.sha256(json.dumps(facts).encode()).hexdigest()


class _Journal:
    """A duplicate search's progress on disk, appended batch by batch: a header line with the
    search's signature, then per finished batch its number, its pair count and its pairs. A
    record cut short by a crash is ignored (that batch runs again)."""

    HEADER = b"lookalike-dupes-journal 1 "

    def __init__(self, path: str | os.PathLike[str], signature: str) -> None:
        self.path = Path(path)
        self.signature = signature
        self._handle: BinaryIO | None = None

    def restore(self) -> tuple[int, tuple[Ids, Ids, Ids] | None]:
        """(batches already done, the pairs they accepted); starts a fresh journal otherwise."""
        header = self.HEADER + self.signature.encode() + b"\n"
        batches, parts, good_size = 0, [], len(header)
        try:
            data = self.path.read_bytes()
        except OSError:
            data = b""
        if data.startswith(header):
            offset = len(header)
            while offset + 16 <= len(data):
                number, count = np.frombuffer(data, dtype="<i8", count=2, offset=offset)
                end = offset + 16 + 24 * int(count)
                if end > len(data) or number != batches + 1:
                    break
                block = np.frombuffer(data, dtype="<i8", count=3 * int(count), offset=offset + 16)
                parts.append(block.reshape(3, -1).astype(np.int64))
                batches, good_size, offset = int(number), end, end
        else:
            data = b""
        self._handle = open(self.path, "r+b" if data else "wb")  # noqa: SIM115 - kept open across batches
        if not data:
            self._handle.write(header)
        self._handle.truncate(good_size)
        self._handle.seek(good_size)
        self._handle.flush()
        if not parts:
            return batches, None
        joined = np.concatenate(parts, axis=1)
        return batches, (joined[0], joined[1], joined[2])

    def record(self, number: int, first: Ids, second: Ids, scores: Ids) -> None:
        assert self._handle is not None
        head = np.array([number, len(first)], dtype="<i8").tobytes()
        body = np.concatenate([first, second, scores]).astype("<i8").tobytes()
        self._handle.write(head + body)
        self._handle.flush()

    def finish(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self.path.unlink(missing_ok=True)
