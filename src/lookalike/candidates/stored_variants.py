"""Stored variants a query's own hash is compared with: the pictures inside stored composites.

`phash_eq_regions` keeps, beside an image's hash, the hashes of the pictures inside it (a
collage's cells, the photo in a screenshot, a picture pasted into another). A composite as the
query meets the photos it shows through its variants. The other way round, an original searching
for the composites that show it, the stored side's variants have to be searched: `StoredVariants`
holds one algorithm's stored variants (each image's own hash left out) in key tables of their
own, and finds per query hash the stored images with a variant within a limit, and how close.
It is brought up to date in place (`update`): after a write only the entries it changed are read
again, not every stored variant.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from lookalike.candidates.keys import KeyLayout
from lookalike.candidates.tables import KeyTables
from lookalike.search.bits import popcount

Ids = npt.NDArray[np.int64]
Words = npt.NDArray[np.uint64]
EXACT_PAIRS = 1 << 20  # (query, variant) pairs compared at once by an exact search
DEAD_SHARE = 2  # rows are packed again once 1/DEAD_SHARE of them belong to changed entries


class StoredVariants:
    """One algorithm's stored variants: the entry each belongs to, its words, and key tables over
    them whose ids are variant rows (an entry holds several)."""

    def __init__(self, layout: KeyLayout, owners: Ids, words: Words) -> None:
        order = np.argsort(owners, kind="stable")
        self.layout = layout
        self.owners: Ids = np.asarray(owners, dtype=np.int64)[order]
        self.words: Words = np.ascontiguousarray(np.asarray(words, dtype=np.uint64)[order])
        self.alive = np.ones(len(self.owners), dtype=bool)  # rows of entries not changed since
        self.tables = KeyTables(layout)
        if len(self.owners):
            self.tables.add(np.arange(len(self.owners), dtype=np.int64), self.words)
            self.tables.compact()

    @classmethod
    def from_blobs(cls, layout: KeyLayout, rows: Iterable[tuple[int, bytes]]) -> StoredVariants:
        """From (entry id, variant words as stored: big-endian, concatenated) rows."""
        return cls(layout, *_parse_blobs(layout, rows))

    def __len__(self) -> int:
        return int(np.count_nonzero(self.alive))

    def nbytes(self) -> int:
        return self.owners.nbytes + self.words.nbytes + self.alive.nbytes + self.tables.nbytes()

    def update(self, changed: Ids, rows: Iterable[tuple[int, bytes]]) -> StoredVariants:
        """This store with the entries in `changed` (written again or removed since it was made)
        holding only their variants in `rows` now (none: they have none, or are gone). Their old
        rows are dropped from the key tables and the new ones added, so a write costs what it
        changed; once half the rows are dropped ones, the store is made anew from the living."""
        owners, words = _parse_blobs(self.layout, rows)
        gone = np.flatnonzero(self.alive & np.isin(self.owners, np.asarray(changed, dtype=np.int64)))
        self.alive[gone] = False
        self.tables.remove(gone)
        if len(owners):
            first = len(self.owners)
            self.owners = np.concatenate([self.owners, owners])
            self.words = np.concatenate([self.words, words])
            self.alive = np.concatenate([self.alive, np.ones(len(owners), dtype=bool)])
            self.tables.add(np.arange(first, len(self.owners), dtype=np.int64), words)
        if DEAD_SHARE * (len(self.alive) - len(self)) > len(self.alive):
            return StoredVariants(self.layout, self.owners[self.alive], self.words[self.alive])
        return self

    def nearest(self, words: Words, limit: float, *, exact: bool = False) -> tuple[Ids, Ids, Ids]:
        """(row of `words`, entry id, distance): per query hash and stored entry, the smallest
        distance from the hash to one of the entry's variants, where it is within `limit` and
        the two share a candidate key (the same keys that find the stored hashes), or with
        `exact` wherever it is within `limit` (every variant compared)."""
        empty = np.zeros(0, dtype=np.int64)
        if not len(self) or not len(words):
            return empty, empty.copy(), empty.copy()
        query = np.ascontiguousarray(words, dtype=np.uint64)
        if exact:
            living = np.flatnonzero(self.alive)
            step = max(1, EXACT_PAIRS // len(living))
            parts = [
                self._within(query, *_every_pair(start, min(start + step, len(query)), living), limit)
                for start in range(0, len(query), step)
            ]
            found_rows, ids, distances = (np.concatenate([part[i] for part in parts]) for i in range(3))
        else:
            probed, owners = self.layout.probe_words(query, np.arange(len(query), dtype=np.int64))
            found_rows, variant_rows = self.tables.probe(self.layout.keys(probed), owners)
            found_rows, ids, distances = self._within(query, owners[found_rows], variant_rows, limit)
        order = np.lexsort((distances, ids, found_rows))
        found_rows, ids, distances = found_rows[order], ids[order], distances[order]
        first = np.ones(len(found_rows), dtype=bool)
        first[1:] = (found_rows[1:] != found_rows[:-1]) | (ids[1:] != ids[:-1])
        return found_rows[first], ids[first], distances[first]

    def _within(self, query: Words, rows: Ids, variant_rows: Ids, limit: float) -> tuple[Ids, Ids, Ids]:
        """The (query row, entry id, distance) of these (query row, variant row) pairs within `limit`."""
        distances = popcount(query[rows] ^ self.words[variant_rows]).sum(axis=1, dtype=np.int64)
        near = distances <= limit
        return rows[near], self.owners[variant_rows[near]], distances[near]


def _parse_blobs(layout: KeyLayout, rows: Iterable[tuple[int, bytes]]) -> tuple[Ids, Words]:
    """(owner per variant, (variants, words) uint64) of (entry id, big-endian words) rows."""
    word_count = layout.nbits // 64
    owners: list[Ids] = []
    words: list[Words] = []
    for entry, blob in rows:
        count = len(blob) // (8 * word_count)
        if count:
            block = np.frombuffer(blob, dtype=">u8", count=count * word_count).reshape(count, word_count)
            words.append(block.astype(np.uint64))
            owners.append(np.full(count, entry, dtype=np.int64))
    if not words:
        return np.zeros(0, dtype=np.int64), np.zeros((0, word_count), dtype=np.uint64)
    return np.concatenate(owners), np.concatenate(words)


def _every_pair(start: int, stop: int, variants: Ids) -> tuple[Ids, Ids]:
    """(query row, variant row) of every combination of queries start..stop-1 and these variant rows."""
    return (
        np.repeat(np.arange(start, stop, dtype=np.int64), len(variants)),
        np.tile(variants, stop - start),
    )
