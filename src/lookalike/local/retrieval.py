"""Finding the stored images that share local features with a query: votes over descriptor keys.

Each stored keypoint's 256-bit descriptor gives one short exact key per table (three bytes of
it, three tables of different bytes); a query descriptor meets the stored ones whose key is
the same in some table. A meeting is a vote for the stored image, weighted by how rare the key
is (a key half the collection shares, a patch of sky or a letter of a caption, says nothing);
the stored images with the most weight are the candidates geometric verification then decides.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from lookalike.candidates.keys import KeyLayout
from lookalike.local.features import LocalFeatures

Ids = npt.NDArray[np.int64]

DESCRIPTOR_LAYOUT = KeyLayout(256, ((0, 1, 2), (3, 4, 5), (6, 7, 8)))
COMMON_KEY = 64  # a key this many stored keypoints share carries no weight
MIN_SCORE = 12.0  # about two rare keys in common
CANDIDATES_PER_QUERY = 8
NEIGHBOURS_ABOVE = CANDIDATES_PER_QUERY  # a search verifying more than this also probes keys one bit away


def descriptor_words(features: LocalFeatures) -> npt.NDArray[np.uint64]:
    """The descriptors as (n, 4) big-endian uint64 words, the layout key tables read."""
    raw = np.ascontiguousarray(features.descriptors, dtype=np.uint8).tobytes()
    words: npt.NDArray[np.uint64] = np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(-1, 4)
    return words


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


def vote(
    owners: Ids, posting_rows: Ids, posting_ids: Ids, posting_tables: Ids, top: int = CANDIDATES_PER_QUERY
) -> tuple[Ids, Ids]:
    """(query, stored id) candidates: per query, the `top` stored images with the most weight of
    shared keys, each at least MIN_SCORE. A posting is one stored keypoint meeting one query
    descriptor in one table; its key's frequency is how many postings that descriptor had in
    that table (every stored keypoint with the key comes back)."""
    if not len(posting_rows):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy()
    tables = int(posting_tables.max()) + 1
    group = posting_rows * tables + posting_tables
    _, inverse, counts = np.unique(group, return_inverse=True, return_counts=True)
    weight = np.log2(np.maximum(COMMON_KEY / counts[inverse], 1.0))
    queries = owners[posting_rows]
    distinct_ids, dense = np.unique(posting_ids, return_inverse=True)  # ids may use 64 bits
    pairs, which = np.unique((queries << 32) | dense, return_inverse=True)
    score = np.bincount(which, weights=weight)
    keep = score >= MIN_SCORE
    pairs, score = pairs[keep], score[keep]
    query, stored = pairs >> 32, distinct_ids[pairs & 0xFFFFFFFF]
    order = np.lexsort((-score, query))
    query, stored = query[order], stored[order]
    rank = np.arange(len(query)) - np.searchsorted(query, query, side="left")
    chosen = rank < top
    return query[chosen], stored[chosen]


def one_bit_neighbours(words: npt.NDArray[np.uint64], owners: Ids) -> tuple[npt.NDArray[np.uint64], Ids, Ids]:
    """The descriptors, then each with one bit of one table's key flipped: (words, owners, the
    table each probe is for, -1 for the descriptor itself). A descriptor of the same point seen
    at another scale keeps a 24-bit key exactly only a few times in a hundred, within one bit
    several times as often; a deeper search pays 73 probes per descriptor for that."""
    tables = DESCRIPTOR_LAYOUT.tables
    flips: list[tuple[int, int, int]] = []  # (table, word, mask)
    for table, chosen in enumerate(tables):
        for byte in chosen:
            for bit in range(8):
                flips.append((table, byte // 8, 1 << ((7 - byte % 8) * 8 + bit)))
    expanded = np.repeat(words[None], len(flips) + 1, axis=0)
    for position, (_, word, mask) in enumerate(flips, start=1):
        expanded[position, :, word] ^= np.uint64(mask)
    probe_table = np.repeat(np.array([-1] + [t for t, _, _ in flips], dtype=np.int64), len(words))
    return expanded.reshape(-1, words.shape[1]), np.tile(owners, len(flips) + 1), probe_table
