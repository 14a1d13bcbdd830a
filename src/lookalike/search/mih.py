"""Multi-index hashing (Norouzi, Punjani and Fleet): exact Hamming search for small radii.

Split each hash into m disjoint chunks. If two hashes are within r bits, then by pigeonhole at
least one chunk is within floor(r/m) bits; more tightly, with r = s*m + a, one of the first a+1
chunks is within s bits or one of the others within s-1 bits. So probing, per chunk, every
value within its radius of the query's chunk finds every true match; each candidate is then
verified on the full hash. Nothing within r is ever missed: pruning only drops non-matches.

Each chunk's table is a CSR bucket array over all 2**width chunk values (`starts`) plus the rows
in bucket order. Rows of the table itself are sorted by chunk 0, so chunk 0 needs no row list.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lookalike.search.bits import Words, ball_masks, ball_size, hamming_rows, shell_masks

Rows = npt.NDArray[np.int64]
MAX_CHUNK_BITS = 22


@dataclass(frozen=True)
class Chunk:
    """Bits `shift .. shift+width-1` (from the least significant end) of word `word`."""

    word: int
    shift: int
    width: int

    def values(self, words: Words) -> npt.NDArray[np.int64]:
        mask = np.uint64((1 << self.width) - 1)
        column = words[:, self.word]
        shifted = column >> np.uint64(self.shift) if self.shift else column
        chunk_values: npt.NDArray[np.int64] = (shifted & mask).astype(np.int64)
        return chunk_values


def chunk_layout(
    nbits: int, count: int, chunk_bits: int | None = None, compact: bool = True
) -> tuple[Chunk, ...]:
    """Chunks for `count` hashes of `nbits` bits, never crossing a word boundary.

    MIH's optimum is about log2(count) bits per chunk. `compact` (for tables kept in memory)
    rounds the chunk count up, so bucket arrays stay no larger than the hashes; otherwise (for a
    one-off all-pairs join) it rounds to the nearest, trading memory for fewer probes.
    """
    if chunk_bits is None:
        chunk_bits = round(math.log2(max(count, 2)))
    chunk_bits = max(4, min(MAX_CHUNK_BITS, chunk_bits))
    word_count = (nbits + 63) // 64
    chunks: list[Chunk] = []
    for word in range(word_count):
        valid = nbits - 64 * (word_count - 1) if word == 0 else 64
        pieces = math.ceil(valid / chunk_bits) if compact else round(valid / chunk_bits)
        pieces = max(1, pieces, math.ceil(valid / MAX_CHUNK_BITS))
        base, extra = divmod(valid, pieces)
        shift = valid
        for piece in range(pieces):
            width = base + (1 if piece < extra else 0)
            shift -= width
            chunks.append(Chunk(word, shift, width))
    return tuple(chunks)


def chunk_radii(chunk_count: int, max_distance: int) -> list[int]:
    """Per-chunk probe radii that guarantee every hash within `max_distance` is found (-1 = skip)."""
    s, a = divmod(max_distance, chunk_count)
    return [s if j <= a else s - 1 for j in range(chunk_count)]


def guaranteed_distance(radii: list[int]) -> int:
    """Every hash within this distance is among the candidates probed with these radii."""
    return sum(radius + 1 for radius in radii) - 1


def expand_ranges(
    lo: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64], owners: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Concatenate the index ranges [lo, lo+length) and repeat each range's owner alongside."""
    keep = lengths > 0
    lo, lengths, owners = lo[keep], lengths[keep], owners[keep]
    total = int(lengths.sum())
    if total == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    ends = np.cumsum(lengths)
    shift = np.repeat(lo - (ends - lengths), lengths)
    return np.arange(total, dtype=np.int64) + shift, np.repeat(owners, lengths)


class MultiIndexTable:
    """A static multi-index hash table over an (n, words) uint64 array.

    Build with `MultiIndexTable.build(words)`, which returns the table and the order in which it
    stores the input rows (table row i is input row `order[i]`).
    """

    def __init__(
        self,
        words: Words,
        nbits: int,
        chunks: tuple[Chunk, ...],
        starts: list[npt.NDArray[np.uint32] | npt.NDArray[np.int64]],
        rows: list[npt.NDArray[np.uint8] | npt.NDArray[np.uint32] | npt.NDArray[np.int64] | None],
    ) -> None:
        self.words = words
        self.nbits = nbits
        self.chunks = chunks
        self.starts = starts
        self.rows = rows

    def __len__(self) -> int:
        return int(self.words.shape[0])

    @classmethod
    def build(
        cls, words: Words, nbits: int, chunk_bits: int | None = None, compact: bool = True
    ) -> tuple[MultiIndexTable, npt.NDArray[np.int64]]:
        count = int(words.shape[0])
        chunks = chunk_layout(nbits, count, chunk_bits, compact)
        index_dtype = np.uint32 if count < 2**32 else np.int64
        first = chunks[0].values(words)
        order = bucket_order(first)
        sorted_words = np.ascontiguousarray(words[order])
        starts: list[npt.NDArray[np.uint32] | npt.NDArray[np.int64]] = []
        rows: list[npt.NDArray[np.uint8] | npt.NDArray[np.uint32] | npt.NDArray[np.int64] | None] = []
        for position, chunk in enumerate(chunks):
            values = first[order] if position == 0 else chunk.values(sorted_words)
            counts = np.bincount(values, minlength=1 << chunk.width)
            bounds = np.zeros((1 << chunk.width) + 1, dtype=np.int64)
            np.cumsum(counts, out=bounds[1:])
            starts.append(bounds.astype(index_dtype))
            if position == 0:
                rows.append(None)
            else:
                rows.append(pack_rows(bucket_order(values), index_dtype))
        return cls(sorted_words, nbits, chunks, starts, rows), order

    def nbytes(self) -> int:
        total = self.words.nbytes + sum(s.nbytes for s in self.starts)
        return total + sum(r.nbytes for r in self.rows if r is not None)

    def expected_candidates(self, radii: list[int]) -> float:
        """Candidates per query if chunk values were uniform (the random-hash worst case)."""
        n = len(self)
        return sum(
            ball_size(chunk.width, radius) * n / (1 << chunk.width)
            for chunk, radius in zip(self.chunks, radii, strict=True)
            if radius >= 0
        )

    def probe(
        self, queries: Words, chunk_index: int, masks: npt.NDArray[np.uint64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(query index, table row) for every row whose chunk equals a query's chunk XOR a mask."""
        chunk = self.chunks[chunk_index]
        query_values = chunk.values(queries)
        probes = (query_values[:, None] ^ masks.astype(np.int64)[None, :]).ravel()
        starts = self.starts[chunk_index]
        lo = starts[probes].astype(np.int64)
        lengths = starts[probes + 1].astype(np.int64) - lo
        owners = np.repeat(np.arange(len(query_values), dtype=np.int64), len(masks))
        positions, query_index = expand_ranges(lo, lengths, owners)
        bucket_rows = self.rows[chunk_index]
        table_rows = positions if bucket_rows is None else unpack_rows(bucket_rows, positions)
        return query_index, table_rows

    def candidate_count(self, queries: Words, chunk_index: int, masks: npt.NDArray[np.uint64]) -> int:
        """How many (query, row) candidates `probe` would return, without gathering them."""
        chunk = self.chunks[chunk_index]
        probes = (chunk.values(queries)[:, None] ^ masks.astype(np.int64)[None, :]).ravel()
        starts = self.starts[chunk_index]
        return int((starts[probes + 1].astype(np.int64) - starts[probes].astype(np.int64)).sum())

    def range_pairs(
        self, queries: Words, max_distance: int
    ) -> tuple[npt.NDArray[np.int64], Rows, npt.NDArray[np.uint16]]:
        """Every (query index, table row, distance) with distance <= max_distance, unsorted, unique."""
        radii = chunk_radii(len(self.chunks), max_distance)
        found_q: list[npt.NDArray[np.int64]] = []
        found_r: list[Rows] = []
        found_d: list[npt.NDArray[np.uint16]] = []
        for chunk_index, radius in enumerate(radii):
            if radius < 0:
                continue
            masks = ball_masks(self.chunks[chunk_index].width, radius)
            q, rows = self.probe(queries, chunk_index, masks)
            distances = hamming_rows(self.words[rows], queries[q])
            keep = distances <= max_distance
            found_q.append(q[keep])
            found_r.append(rows[keep])
            found_d.append(distances[keep])
        return unique_pairs(found_q, found_r, found_d, len(self))

    def shell_pairs(
        self, queries: Words, chunk_index: int, radius: int
    ) -> tuple[npt.NDArray[np.int64], Rows, npt.NDArray[np.uint16]]:
        """Candidates whose chunk `chunk_index` is exactly `radius` bits from the query's, verified."""
        masks = shell_masks(self.chunks[chunk_index].width, radius)
        q, rows = self.probe(queries, chunk_index, masks)
        return q, rows, hamming_rows(self.words[rows], queries[q])


def pack_rows(
    rows: npt.NDArray[np.int64], index_dtype: type[np.unsignedinteger] | type[np.signedinteger]
) -> npt.NDArray[np.uint8] | npt.NDArray[np.uint32] | npt.NDArray[np.int64]:
    """A bucket's row numbers in as few bytes as they need: 3 bytes each below 2**24 rows (an
    (n, 3) little-endian byte array; a quarter less memory than uint32), else `index_dtype`."""
    if len(rows) < 2**24:
        as_bytes = rows.astype("<u4").view(np.uint8).reshape(-1, 4)
        return np.ascontiguousarray(as_bytes[:, :3])
    return rows.astype(index_dtype)


def unpack_rows(packed: npt.NDArray[np.generic], positions: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Row numbers at `positions` of an array made by `pack_rows` (or a plain integer array)."""
    if packed.ndim == 1:
        return packed[positions].astype(np.int64)
    picked = packed[positions].astype(np.int64)
    result: npt.NDArray[np.int64] = picked[:, 0] | (picked[:, 1] << 8) | (picked[:, 2] << 16)
    return result


def bucket_order(values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The stable sort order of chunk values (< 2**32): one SIMD sort of (value << 32 | row)
    instead of NumPy's slower stable argsort."""
    count = len(values)
    if count >= 2**32:
        order: npt.NDArray[np.int64] = np.argsort(values, kind="stable").astype(np.int64)
        return order
    packed = (values.astype(np.uint64) << np.uint64(32)) | np.arange(count, dtype=np.uint64)
    packed.sort()
    rows: npt.NDArray[np.int64] = (packed & np.uint64(0xFFFFFFFF)).astype(np.int64)
    return rows


def unique_pairs(
    found_q: list[npt.NDArray[np.int64]],
    found_r: list[Rows],
    found_d: list[npt.NDArray[np.uint16]],
    row_count: int,
) -> tuple[npt.NDArray[np.int64], Rows, npt.NDArray[np.uint16]]:
    """Concatenate (query, row, distance) triples, dropping repeats of the same (query, row)."""
    if not found_q:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.uint16)
    q = np.concatenate(found_q)
    rows = np.concatenate(found_r)
    distances = np.concatenate(found_d)
    if len(found_q) > 1 and len(q):
        _, first = np.unique(q * max(row_count, 1) + rows, return_index=True)
        q, rows, distances = q[first], rows[first], distances[first]
    return q, rows, distances
