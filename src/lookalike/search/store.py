"""`HashStore`: exact in-memory Hamming search over one algorithm's hashes, keyed by entry id.

A store is a static multi-index table (`main`) plus a small brute-forced buffer of recent adds
(`delta`) and a mask of removed rows, the classic log-structured shape: adds and removes are
cheap, and the table is rebuilt (`compact`) when the buffer grows past a fraction of it. Each
query picks multi-index hashing or a vectorised scan by the expected number of candidates, so
small radii are fast and large ones are no slower than a scan. Answers are always exact.

>>> store = HashStore(64)
>>> store.add(np.array([1, 2]), np.array([[0xFF], [0x0F]], dtype=np.uint64))
>>> store.range_search(np.array([[0xFF]], dtype=np.uint64), 4).ids
array([1, 2])
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lookalike.search.bits import Words, ball_size, hamming_to_one
from lookalike.search.brute import brute_knn, brute_range
from lookalike.search.mih import MultiIndexTable, chunk_radii, guaranteed_distance, unique_pairs
from lookalike.sorted_arrays import sorted_unique

Ids = npt.NDArray[np.int64]
Distances = npt.NDArray[np.uint16]
BoolArray = npt.NDArray[np.bool_]

MIH_MIN_ROWS = 256  # below this a scan beats any table
KNN_SCAN_BELOW = 200_000  # k-NN scans smaller tables: growing radii costs more Python than a scan
SCAN_FRACTION = 0.08  # use MIH while expected candidates stay under this share of the rows
BLOCK_WORK = 2_000_000  # probes + candidates handled per vectorised batch
SNAPSHOT_FORMAT = 1


@dataclass(frozen=True)
class Hits:
    """Flat search results, sorted by (query, distance, id): `query[i]` found `ids[i]` at `distances[i]`."""

    query: npt.NDArray[np.int64]
    ids: Ids
    distances: Distances

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def sorted(cls, query: npt.NDArray[np.int64], ids: Ids, distances: Distances) -> Hits:
        order = np.lexsort((ids, distances, query))
        return cls(query[order], ids[order], distances[order])

    def split(self, query_count: int) -> list[tuple[Ids, Distances]]:
        """Per query: (ids, distances)."""
        bounds = np.searchsorted(self.query, np.arange(query_count + 1))
        return [
            (self.ids[bounds[i] : bounds[i + 1]], self.distances[bounds[i] : bounds[i + 1]])
            for i in range(query_count)
        ]


def _empty_hits() -> Hits:
    empty = np.zeros(0, dtype=np.int64)
    return Hits(empty, empty, np.zeros(0, dtype=np.uint16))


def _compact_ids(ids: Ids) -> npt.NDArray[np.int32] | Ids:
    """Entry ids as int32 when they fit: half the memory for the common case."""
    if len(ids) == 0 or (ids.min() >= 0 and ids.max() < 2**31):
        return ids.astype(np.int32)
    return ids.astype(np.int64)


class HashStore:
    """Exact Hamming search over `(entry id, hash words)` rows of one bit length."""

    def __init__(self, nbits: int, *, chunk_bits: int | None = None) -> None:
        self.nbits = nbits
        self.word_count = (nbits + 63) // 64
        self.chunk_bits = chunk_bits
        self._table: MultiIndexTable | None = None
        self._main_ids: npt.NDArray[np.int32] | Ids = np.zeros(0, dtype=np.int32)
        self._main_flagged: BoolArray | None = None
        self._main_dead: BoolArray | None = None
        self._main_dead_count = 0
        self._main_id_order: Ids | None = None
        self._excluded_cache: dict[bool, BoolArray | None] = {}
        self._delta_ids: Ids = np.zeros(0, dtype=np.int64)
        self._delta_words: Words = np.zeros((0, self.word_count), dtype=np.uint64)
        self._delta_flagged: BoolArray = np.zeros(0, dtype=bool)

    # ----- size and memory -------------------------------------------------------------------------
    def __len__(self) -> int:
        main = 0 if self._table is None else len(self._table) - self._main_dead_count
        return main + len(self._delta_ids)

    def nbytes(self) -> int:
        """Bytes held by the search structure (hashes, tables, ids, masks)."""
        total = 0 if self._table is None else self._table.nbytes()
        total += self._main_ids.nbytes + self._delta_ids.nbytes + self._delta_words.nbytes
        for mask in (self._main_flagged, self._main_dead, self._main_id_order):
            total += 0 if mask is None else mask.nbytes
        return total

    # ----- writing ---------------------------------------------------------------------------------
    def add(self, ids: npt.ArrayLike, words: Words, flagged: npt.ArrayLike | None = None) -> None:
        """Insert rows; an id already present is replaced."""
        ids_array = np.asarray(ids, dtype=np.int64).ravel()
        words = np.asarray(words, dtype=np.uint64).reshape(len(ids_array), self.word_count)
        flags = np.zeros(len(ids_array), bool) if flagged is None else np.asarray(flagged, bool).ravel()
        if len(ids_array) == 0:
            return
        increasing = bool((ids_array[1:] > ids_array[:-1]).all())
        if not increasing and len(sorted_unique(ids_array)) != len(ids_array):  # the last write of an id wins
            _, last = np.unique(ids_array[::-1], return_index=True)
            keep = np.sort(len(ids_array) - 1 - last)
            ids_array, words, flags = ids_array[keep], words[keep], flags[keep]
        self.remove(ids_array)
        self._delta_ids = np.concatenate([self._delta_ids, ids_array])
        self._delta_words = np.concatenate([self._delta_words, words])
        self._delta_flagged = np.concatenate([self._delta_flagged, flags])
        main_rows = 0 if self._table is None else len(self._table)
        if len(self._delta_ids) > max(4096, main_rows // 16):
            self.compact()

    def remove(self, ids: npt.ArrayLike) -> int:
        """Delete rows by id; returns how many were present."""
        if len(self) == 0:
            return 0
        ids_array = sorted_unique(np.asarray(ids, dtype=np.int64).ravel())
        if len(ids_array) == 0:
            return 0
        removed = 0
        if len(self._delta_ids):
            gone = np.isin(self._delta_ids, ids_array)
            if gone.any():
                removed += int(gone.sum())
                keep = ~gone
                self._delta_ids = self._delta_ids[keep]
                self._delta_words = self._delta_words[keep]
                self._delta_flagged = self._delta_flagged[keep]
        if self._table is not None and len(self._main_ids):
            rows = self._main_rows_of(ids_array)
            if len(rows):
                if self._main_dead is None:
                    self._main_dead = np.zeros(len(self._main_ids), dtype=bool)
                fresh = rows[~self._main_dead[rows]]
                self._main_dead[fresh] = True
                self._main_dead_count += len(fresh)
                removed += len(fresh)
                self._excluded_cache.clear()
                if self._main_dead_count > len(self._main_ids) // 4:
                    self.compact()
        return removed

    def _main_rows_of(self, ids: Ids) -> Ids:
        if self._main_id_order is None:
            self._main_id_order = np.argsort(self._main_ids, kind="stable").astype(np.int64)
        sorted_ids = self._main_ids[self._main_id_order]
        positions = np.searchsorted(sorted_ids, ids)
        positions = np.minimum(positions, len(sorted_ids) - 1)
        hit = sorted_ids[positions] == ids
        rows: Ids = self._main_id_order[positions[hit]]
        return rows

    def compact(self) -> None:
        """Fold the buffer into the table and drop removed rows (rebuilds the table)."""
        if len(self._delta_ids) == 0 and self._main_dead_count == 0:
            return
        ids, words, flagged = self.rows()
        self._delta_ids = np.zeros(0, dtype=np.int64)
        self._delta_words = np.zeros((0, self.word_count), dtype=np.uint64)
        self._delta_flagged = np.zeros(0, dtype=bool)
        self._set_main(ids, words, flagged)

    def _set_main(self, ids: Ids, words: Words, flagged: BoolArray) -> None:
        self._main_dead, self._main_dead_count, self._main_id_order = None, 0, None
        self._excluded_cache.clear()
        if len(ids) == 0:
            self._table, self._main_ids, self._main_flagged = None, np.zeros(0, dtype=np.int32), None
            return
        table, order = MultiIndexTable.build(words, self.nbits, self.chunk_bits)
        self._table = table
        self._main_ids = _compact_ids(ids[order])
        ordered_flags = flagged[order]
        self._main_flagged = ordered_flags if ordered_flags.any() else None

    def rows(self) -> tuple[Ids, Words, BoolArray]:
        """Every live (id, words, flagged) row, main table first."""
        if self._table is None:
            return self._delta_ids.copy(), self._delta_words.copy(), self._delta_flagged.copy()
        alive = slice(None) if self._main_dead is None else ~self._main_dead
        main_flags = np.zeros(len(self._main_ids), bool) if self._main_flagged is None else self._main_flagged
        return (
            np.concatenate([self._main_ids[alive].astype(np.int64), self._delta_ids]),
            np.concatenate([self._table.words[alive], self._delta_words]),
            np.concatenate([main_flags[alive], self._delta_flagged]),
        )

    # ----- searching -------------------------------------------------------------------------------
    def _main_excluded(self, include_flagged: bool) -> BoolArray | None:
        if include_flagged not in self._excluded_cache:
            masks = [self._main_dead]
            if not include_flagged:
                masks.append(self._main_flagged)
            present = [m for m in masks if m is not None]
            combined: BoolArray | None = None
            if present:
                combined = present[0].copy()
                for mask in present[1:]:
                    combined |= mask
            self._excluded_cache[include_flagged] = combined
        return self._excluded_cache[include_flagged]

    def _delta_excluded(self, include_flagged: bool) -> BoolArray | None:
        if include_flagged or not self._delta_flagged.any():
            return None
        return self._delta_flagged

    def _check_queries(self, queries: Words) -> Words:
        array = np.asarray(queries, dtype=np.uint64)
        if array.ndim == 1:
            array = array[:, None] if self.word_count == 1 else array[None, :]
        if array.shape[1] != self.word_count:
            raise ValueError(f"queries have {array.shape[1]} words, the store holds {self.word_count}")
        return np.ascontiguousarray(array)

    def uses_mih(self, max_distance: int) -> bool:
        """Whether a range query at this radius goes through the multi-index table."""
        return self._table is not None and self._table_pays_off(self._table, max_distance)

    @staticmethod
    def _table_pays_off(table: MultiIndexTable, max_distance: int) -> bool:
        if len(table) < MIH_MIN_ROWS:
            return False
        radii = chunk_radii(len(table.chunks), max_distance)
        probes = sum(ball_size(c.width, r) for c, r in zip(table.chunks, radii, strict=True) if r >= 0)
        return probes <= len(table) // 4 and table.expected_candidates(radii) <= SCAN_FRACTION * len(table)

    def range_search(self, queries: Words, max_distance: int, include_flagged: bool = False) -> Hits:
        """Every live row within `max_distance` of each query (rows of `queries`: (q, words))."""
        queries = self._check_queries(queries)
        if len(queries) == 0 or max_distance < 0:
            return _empty_hits()
        parts = []
        if self._table is not None:
            excluded = self._main_excluded(include_flagged)
            if self.uses_mih(max_distance):
                q, rows, d = self._mih_range(queries, max_distance)
                if excluded is not None and len(rows):
                    keep = ~excluded[rows]
                    q, rows, d = q[keep], rows[keep], d[keep]
            else:
                q, rows, d = brute_range(self._table.words, queries, max_distance, excluded)
            parts.append((q, self._main_ids[rows].astype(np.int64), d))
        if len(self._delta_ids):
            q, rows, d = brute_range(
                self._delta_words, queries, max_distance, self._delta_excluded(include_flagged)
            )
            parts.append((q, self._delta_ids[rows], d))
        if not parts:
            return _empty_hits()
        return Hits.sorted(*(np.concatenate(column) for column in zip(*parts, strict=True)))

    def _mih_range(self, queries: Words, max_distance: int) -> tuple[Ids, Ids, Distances]:
        table = self._table
        assert table is not None
        radii = chunk_radii(len(table.chunks), max_distance)
        probes = sum(ball_size(c.width, r) for c, r in zip(table.chunks, radii, strict=True) if r >= 0)
        block = max(1, int(BLOCK_WORK // (probes + table.expected_candidates(radii) + 1)))
        found_q, found_r, found_d = [], [], []
        for start in range(0, len(queries), block):
            q, rows, d = table.range_pairs(queries[start : start + block], max_distance)
            found_q.append(q + start)
            found_r.append(rows)
            found_d.append(d)
        return unique_pairs(found_q, found_r, found_d, len(table)) if found_q else _triple()

    def knn(self, queries: Words, k: int, include_flagged: bool = False) -> Hits:
        """The exact `k` nearest live rows per query, plus every row tied with the k-th."""
        queries = self._check_queries(queries)
        if k <= 0 or len(queries) == 0:
            return _empty_hits()
        parts_q, parts_ids, parts_d = [], [], []
        for index in range(len(queries)):
            ids, distances = self._knn_one(queries[index : index + 1], k, include_flagged)
            parts_q.append(np.full(len(ids), index, dtype=np.int64))
            parts_ids.append(ids)
            parts_d.append(distances)
        return Hits.sorted(np.concatenate(parts_q), np.concatenate(parts_ids), np.concatenate(parts_d))

    def _knn_one(self, query: Words, k: int, include_flagged: bool) -> tuple[Ids, Distances]:
        ids_parts: list[Ids] = []
        dist_parts: list[Distances] = []
        if len(self._delta_ids):
            _, rows, d = brute_knn(self._delta_words, query, k, self._delta_excluded(include_flagged))
            ids_parts.append(self._delta_ids[rows])
            dist_parts.append(d)
        if self._table is not None:
            rows, d = self._main_knn(query, k, include_flagged, dist_parts[0] if dist_parts else None)
            ids_parts.append(self._main_ids[rows].astype(np.int64))
            dist_parts.append(d)
        if not ids_parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint16)
        ids, distances = np.concatenate(ids_parts), np.concatenate(dist_parts)
        if len(distances) > k:
            kth = np.partition(distances, k - 1)[k - 1]
            keep = distances <= kth
            ids, distances = ids[keep], distances[keep]
        return ids, distances

    def _main_knn(
        self, query: Words, k: int, include_flagged: bool, delta_distances: Distances | None
    ) -> tuple[Ids, Distances]:
        """Grow each chunk's probe radius one shell at a time until k rows are certainly found."""
        table = self._table
        assert table is not None
        excluded = self._main_excluded(include_flagged)
        n = len(table)
        if n < KNN_SCAN_BELOW:
            _, rows, d = brute_knn(table.words, query, k, excluded)
            return rows, d
        chunks = table.chunks
        radii = [-1] * len(chunks)
        seen_rows: Ids = np.zeros(0, dtype=np.int64)
        seen_d: Distances = np.zeros(0, dtype=np.uint16)
        work = 0.0
        delta = np.zeros(0, np.uint16) if delta_distances is None else delta_distances
        while True:
            guaranteed = guaranteed_distance(radii)
            certain = int((seen_d <= guaranteed).sum()) + int((delta <= guaranteed).sum())
            if guaranteed >= self.nbits or certain >= k:
                break
            open_chunks = [j for j in range(len(chunks)) if radii[j] < chunks[j].width]
            j = min(open_chunks, key=lambda c: radii[c])
            shell = ball_size(chunks[j].width, radii[j] + 1) - ball_size(chunks[j].width, radii[j])
            work += shell * (1 + n / (1 << chunks[j].width))
            if work > SCAN_FRACTION * n:
                _, rows, d = brute_knn(table.words, query, k, excluded)
                return rows, d
            _, rows, d = table.shell_pairs(query, j, radii[j] + 1)
            if excluded is not None and len(rows):
                keep = ~excluded[rows]
                rows, d = rows[keep], d[keep]
            if len(rows):  # a row can surface in several chunks: keep it once
                seen_rows, first = np.unique(np.concatenate([seen_rows, rows]), return_index=True)
                seen_d = np.concatenate([seen_d, d])[first]
            radii[j] += 1
        return seen_rows, seen_d

    def pairs(self, max_distance: int, include_flagged: bool = False) -> tuple[Ids, Ids, Distances]:
        """Every unordered pair of live rows within `max_distance`: (id a, id b, distance)."""
        self.compact()
        table = self._table
        if table is None or max_distance < 0:
            return _triple()
        excluded = self._main_excluded(include_flagged)
        ids: npt.NDArray[np.int32] | Ids = self._main_ids
        if self.chunk_bits is None and len(table) >= MIH_MIN_ROWS:
            # A join probes every row once: a one-off table with fewer, wider chunks pays off.
            wide, order = MultiIndexTable.build(table.words, self.nbits, compact=False)
            if len(wide.chunks) < len(table.chunks):
                table, ids = wide, ids[order]
                excluded = None if excluded is None else excluded[order]
        found_a: list[Ids] = []
        found_b: list[Ids] = []
        found_d: list[Distances] = []
        if self._table_pays_off(table, max_distance):
            radii = chunk_radii(len(table.chunks), max_distance)
            probes = sum(ball_size(c.width, r) for c, r in zip(table.chunks, radii, strict=True) if r >= 0)
            block = max(1, int(BLOCK_WORK // (probes + table.expected_candidates(radii) + 1)))
            for start in range(0, len(table), block):
                q, rows, d = table.range_pairs(table.words[start : start + block], max_distance)
                q = q + start
                keep = rows > q
                found_a.append(q[keep])
                found_b.append(rows[keep])
                found_d.append(d[keep])
        else:
            for row in range(len(table) - 1):
                d = hamming_to_one(table.words[row + 1 :], table.words[row])
                hit = np.flatnonzero(d <= max_distance).astype(np.int64)
                found_a.append(np.full(len(hit), row, dtype=np.int64))
                found_b.append(hit + row + 1)
                found_d.append(d[hit])
        if not found_a:
            return _triple()
        a, b, d = np.concatenate(found_a), np.concatenate(found_b), np.concatenate(found_d)
        if excluded is not None and len(a):
            keep = ~(excluded[a] | excluded[b])
            a, b, d = a[keep], b[keep], d[keep]
        return ids[a].astype(np.int64), ids[b].astype(np.int64), d

    # ----- persistence -----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], **extra: int | str) -> None:
        """Write the compacted store to `path` atomically (an uncompressed .npz)."""
        self.compact()
        target = Path(path)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        arrays: dict[str, Any] = {
            "format": np.array(SNAPSHOT_FORMAT),
            "nbits": np.array(self.nbits),
            "ids": self._main_ids,
            "extra_keys": np.array(list(extra), dtype=str),
            "extra_values": np.array([str(v) for v in extra.values()], dtype=str),
        }
        table = self._table
        if table is not None:
            arrays["words"] = table.words
            arrays["chunks"] = np.array([(c.word, c.shift, c.width) for c in table.chunks], dtype=np.int64)
            for position, starts in enumerate(table.starts):
                arrays[f"starts{position}"] = starts
            for position, bucket_rows in enumerate(table.rows):
                if bucket_rows is not None:
                    arrays[f"rows{position}"] = bucket_rows
            if self._main_flagged is not None:
                arrays["flagged"] = self._main_flagged
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, target)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> tuple[HashStore, dict[str, str]]:
        """Read a store written by `save`; returns it and the `extra` values saved with it."""
        from lookalike.search.mih import Chunk

        with np.load(path, allow_pickle=False) as data:
            if int(data["format"]) != SNAPSHOT_FORMAT:
                raise ValueError(f"{path}: unknown snapshot format {int(data['format'])}")
            store = cls(int(data["nbits"]))
            extra = dict(zip(data["extra_keys"].tolist(), data["extra_values"].tolist(), strict=True))
            if "words" in data.files:
                chunks = tuple(Chunk(int(w), int(s), int(b)) for w, s, b in data["chunks"])
                starts = [data[f"starts{i}"] for i in range(len(chunks))]
                rows = [data[f"rows{i}"] if f"rows{i}" in data.files else None for i in range(len(chunks))]
                store._table = MultiIndexTable(data["words"], store.nbits, chunks, starts, rows)
                store._main_ids = data["ids"]
                store._main_flagged = data["flagged"] if "flagged" in data.files else None
        return store, extra


def _triple() -> tuple[Ids, Ids, Distances]:
    empty = np.zeros(0, dtype=np.int64)
    return empty, empty.copy(), np.zeros(0, dtype=np.uint16)
