"""Finding the stored images that share local features with a query: votes over descriptor keys.

Each stored keypoint's 256-bit descriptor gives one short exact key per table (three bytes of
it, three tables of different bytes); a query descriptor meets the stored ones whose key is
the same in some table and whose signature (64 other bits of the descriptor) is within
SIGNATURE_DISTANCE of its own: at a million stored images a 24-bit key is held by several
keypoints by chance, and the signature tells the same point from those (Hamming embedding). A
meeting is a vote for the stored image, weighted by how rare the key is among the meetings (a
key half the collection shares, a patch of sky or a letter of a caption, says nothing, and is
not even read);
the stored images with the most weight are put in order again by the descriptors each shares
with the query (`shared_descriptors`, on the stored compact set), and the best of those are the
candidates geometric verification then decides.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from lookalike.candidates.keys import KeyLayout
from lookalike.local.features import LocalFeatures, _opencv
from lookalike.local.verify import IN_PLACE
from lookalike.search.bits import compiled_distances

Ids = npt.NDArray[np.int64]

DESCRIPTOR_LAYOUT = KeyLayout(256, ((0, 1, 2), (3, 4, 5), (6, 7, 8)))
COMMON_KEY = 64  # a key this many stored keypoints share carries no weight
MIN_SCORE = 6.0  # one rare meeting, its signature agreeing
SIGNATURE_WORD = 2  # descriptor bytes 16-23: bits no key reads
SIGNATURE_DISTANCE = 8  # of 64 bits: a stored signature this close shows the same point
CANDIDATES_PER_QUERY = 8
NEIGHBOURS_ABOVE = CANDIDATES_PER_QUERY  # a search verifying more than this also probes keys one bit away
# the votes choose this many stored images per image verified, the shared descriptors the best of
# those: a key says little about a descriptor's other 232 bits, and an image with many plain
# keypoints (a star field, foliage) collects chance votes from every query (docs/local.md,
# "Votes, then shared descriptors")
POOL_PER_CANDIDATE = 4
NEAREST_BLOCK = 1 << 20  # distances computed at once (4 MB)
SHARED_DISTANCE = 28  # of 256 bits: a stored descriptor this close to a query one shows the same point


def descriptor_words(features: LocalFeatures) -> npt.NDArray[np.uint64]:
    """The descriptors as (n, 4) big-endian uint64 words, the layout key tables read."""
    raw = np.ascontiguousarray(features.descriptors, dtype=np.uint8).tobytes()
    words: npt.NDArray[np.uint64] = np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(-1, 4)
    return words


def descriptor_signatures(words: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """Each descriptor's signature: the 64 bits of `SIGNATURE_WORD`, which no table's key holds."""
    signatures: npt.NDArray[np.uint64] = np.ascontiguousarray(words[:, SIGNATURE_WORD])
    return signatures


def query_descriptors(
    local: list[tuple[LocalFeatures | None, LocalFeatures | None]],
) -> tuple[npt.NDArray[np.uint64], Ids]:
    """Every query's descriptors (and its mirror image's) as words, with the query each came from."""
    parts: list[npt.NDArray[np.uint64]] = []
    owners: list[Ids] = []
    for row, pair in enumerate(local):
        for features in pair:
            if features is not None and len(features):
                parts.append(descriptor_words(features))
                owners.append(np.full(len(features), row, dtype=np.int64))
    if not parts:
        return np.zeros((0, 4), dtype=np.uint64), np.zeros(0, dtype=np.int64)
    return np.concatenate(parts), np.concatenate(owners)


def descriptor_probes(
    words: npt.NDArray[np.uint64], owners: Ids, neighbours: bool = False
) -> tuple[npt.NDArray[np.uint32], Ids, Ids, npt.NDArray[np.uint64]]:
    """The (key, table) probes of descriptors, the query each is for and its descriptor's
    signature: every descriptor's key in each table, and with `neighbours` every key one bit away
    from those (75 probes a descriptor instead of 3). A descriptor of the same point seen at
    another scale keeps a 24-bit key exactly only a few times in a hundred, within one bit
    several times as often."""
    keys = DESCRIPTOR_LAYOUT.keys(words)  # (n, tables)
    count, tables = keys.shape
    flips = np.zeros(1, dtype=np.uint32)
    if neighbours:
        key_bits = 8 * len(DESCRIPTOR_LAYOUT.tables[0])
        flips = np.concatenate([flips, np.uint32(1) << np.arange(key_bits, dtype=np.uint32)])
    probed = keys.T[:, None, :] ^ flips[None, :, None]  # (tables, flips, n)
    table_of = np.repeat(np.arange(tables, dtype=np.int64), len(flips) * count)
    repeats = tables * len(flips)
    return probed.ravel(), table_of, np.tile(owners, repeats), np.tile(descriptor_signatures(words), repeats)


def vote(
    probes: tuple[Ids, npt.NDArray[np.uint64]],
    postings: tuple[Ids, Ids, npt.NDArray[np.uint64]],
    top: int = CANDIDATES_PER_QUERY,
) -> tuple[Ids, Ids]:
    """(query, stored id) candidates: per query, the `top` stored images with the most weight of
    meetings, each at least MIN_SCORE. `probes`: the query and signature of each probe
    (`descriptor_probes`); `postings`: (probe, stored id, stored signature) of every stored
    keypoint sharing a probe's key (except from keys held by COMMON_KEY keypoints or more,
    which weigh nothing and may be left unread). A posting is a meeting where the signatures
    agree to SIGNATURE_DISTANCE bits, and weighs by how rare its probe's meetings are: a key
    whose few meetings stand out of many postings is as telling as a rare key."""
    probe_owners, probe_signatures = probes
    posting_probes, posting_ids, posting_signatures = postings
    close = np.bitwise_count(posting_signatures ^ probe_signatures[posting_probes]) <= SIGNATURE_DISTANCE
    if len(posting_probes):  # a key held by COMMON_KEY keypoints weighs nothing, read or not
        close &= np.bincount(posting_probes)[posting_probes] < COMMON_KEY
    posting_probes, posting_ids = posting_probes[close], posting_ids[close]
    if not len(posting_probes):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy()
    counts = np.bincount(posting_probes)
    weight = np.log2(np.maximum(COMMON_KEY / counts[posting_probes], 1.0))
    query, stored, score = _scores(probe_owners[posting_probes], posting_ids, weight)
    keep = score >= MIN_SCORE
    query, stored, score = query[keep], stored[keep], score[keep]
    order = np.lexsort((-score, query))
    query, stored = query[order], stored[order]
    rank = np.arange(len(query)) - np.searchsorted(query, query, side="left")
    chosen = rank < top
    return query[chosen], stored[chosen]


DENSE_SCORES = 1 << 23  # (query, stored id) cells scored in one array rather than by sorting


def _scores(
    queries: Ids, ids: Ids, weight: npt.NDArray[np.float64]
) -> tuple[Ids, Ids, npt.NDArray[np.float64]]:
    """Every distinct (query, stored id) of the postings with its summed weight, in (query, id)
    order. Where the queries times the id range fit DENSE_SCORES (a search's few queries on
    SQLite's ids), one bincount over the cells; else (ClickHouse's 64-bit versions) sorting."""
    low, high = int(ids.min()), int(ids.max())
    first = int(queries.min())
    span = high - low + 1
    cells = (int(queries.max()) - first + 1) * span
    if cells <= max(DENSE_SCORES, 4 * len(ids)):
        score = np.bincount((queries - first) * span + (ids - low), weights=weight, minlength=cells).astype(
            np.float64, copy=False
        )
        held = np.flatnonzero(score).astype(np.int64)
        return held // span + first, held % span + low, score[held]
    distinct_ids, dense = np.unique(ids, return_inverse=True)
    pairs, which = np.unique((queries << 32) | dense, return_inverse=True)
    summed = np.bincount(which, weights=weight).astype(np.float64, copy=False)
    stored: Ids = distinct_ids[pairs & 0xFFFFFFFF]
    return (pairs >> 32).astype(np.int64), stored, summed


def nearest_distances(
    points: npt.NDArray[np.uint8], among: npt.NDArray[np.uint8]
) -> tuple[npt.NDArray[np.int64], Ids]:
    """Each descriptor of `points` (n, 32)'s distance to its nearest in `among` (m, 32), in bits,
    and which that is: FAISS's compiled kernel where faiss-cpu is installed
    (`search.bits.compiled_distances`, one thread, about 1 ns a distance; FAISS's own searches
    spin OpenMP threads that a busy 2-core machine makes ten times slower), else OpenCV's
    brute-force matcher (about 3)."""
    nearest = np.full(len(points), 257, dtype=np.int64)
    which = np.zeros(len(points), dtype=np.int64)
    if not len(points) or not len(among):
        return nearest, which
    kernel = compiled_distances()
    if kernel is None:
        cv2 = _opencv()
        matches = cv2.BFMatcher(cv2.NORM_HAMMING).match(
            np.ascontiguousarray(points), np.ascontiguousarray(among)
        )
        found = [m.queryIdx for m in matches]
        nearest[found] = [int(m.distance) for m in matches]
        which[found] = [m.trainIdx for m in matches]
        return nearest, which
    left, right = _as_words(points), _as_words(among)
    step = max(1, NEAREST_BLOCK // len(right))
    out = np.empty(step * len(right), dtype=np.int32)
    for start in range(0, len(left), step):
        block = left[start : start + step]
        kernel(block, right, out)
        distances = out[: len(block) * len(right)].reshape(len(block), -1)
        chosen = distances.argmin(axis=1)
        which[start : start + len(block)] = chosen
        nearest[start : start + len(block)] = distances[np.arange(len(block)), chosen]
    return nearest, which


def _as_words(descriptors: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
    """(n, 32) descriptor bytes as (n, 4) uint64 words, the bytes in place (Hamming distances do
    not care about their order within a word)."""
    words: npt.NDArray[np.uint64] = np.ascontiguousarray(descriptors).view(np.uint64)
    return words


def shared_descriptors(
    sides: Sequence[LocalFeatures | None],
    stored: Sequence[LocalFeatures],
    max_distance: int = SHARED_DISTANCE,
) -> Ids:
    """For each stored compact set, how many of its descriptors lie within `max_distance` bits of
    some query descriptor (of the query's side that shares most: itself or its mirror image),
    away from that descriptor's place in the frame: points the two pictures show alike, each
    stored point counted once however many query points resemble it (a star field's stars all
    do). What two pictures share in place (`IN_PLACE` of the side) is an app's bars and text in
    two screenshots, not a copy, which was cropped, scaled or moved."""
    counts = np.zeros(len(stored), dtype=np.int64)
    sizes = [len(features) for features in stored]
    if not sum(sizes):
        return counts
    points = np.concatenate([features.descriptors for features in stored])
    owners = np.repeat(np.arange(len(stored)), sizes)
    places = np.concatenate([features.points / np.asarray(features.size, np.float32) for features in stored])
    for side in sides:
        if side is None or not len(side):
            continue
        distances, nearest = nearest_distances(points, side.descriptors)
        theirs = side.points[nearest] / np.asarray(side.size, np.float32)
        in_place = np.abs(places - theirs).max(axis=1) <= IN_PLACE
        close = (distances <= max_distance) & ~in_place
        counts = np.maximum(counts, np.bincount(owners[close], minlength=len(stored)))
    return counts


QuerySides = tuple[LocalFeatures | None, LocalFeatures | None]  # a query's features, its mirror image's


def by_shared_descriptors(
    rows: Ids,
    ids: Ids,
    queries: Sequence[QuerySides],
    stored: dict[int, tuple[LocalFeatures, LocalFeatures | None]],
    top: int,
) -> tuple[Ids, Ids]:
    """Of voted (query row, stored id) pairs, the `top` per row that share the most descriptors
    (`shared_descriptors`, against the stored compact sets); ties keep the votes' order, and a
    stored image no longer held goes last."""
    shared = np.full(len(rows), -1, dtype=np.int64)
    by_row = np.argsort(rows, kind="stable")
    for group in np.split(by_row, np.flatnonzero(np.diff(rows[by_row])) + 1):
        positions = [p for p in group.tolist() if int(ids[p]) in stored]
        if positions:
            held = [stored[int(ids[p])][0] for p in positions]
            shared[positions] = shared_descriptors(queries[int(rows[positions[0]])], held)
    order = np.lexsort((np.arange(len(rows)), -shared, rows))
    rows, ids = rows[order], ids[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows, side="left")
    chosen = rank < top
    return rows[chosen], ids[chosen]
