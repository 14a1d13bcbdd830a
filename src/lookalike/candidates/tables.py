"""In-memory structures of the candidate stage: key tables (who might match) and word stores (the
hashes that judge them), both keyed by entry id and cheap to update.

Each keeps a large sorted part, a small sorted buffer of recent adds and a list of removed ids, the
shape `lookalike.search.store.HashStore` uses: adds and removes are cheap, and the sorted part is
rebuilt when the buffer or the removals grow past a share of it. Both snapshot to a folder of
`.npy` files that open memory-mapped, so a large index answers its first query without reading
its tables whole.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lookalike.candidates.keys import KeyLayout
from lookalike.candidates.read_ahead import ReadAhead
from lookalike.sorted_arrays import sorted_unique

Ids = npt.NDArray[np.int64]
Words = npt.NDArray[np.uint64]
Packed = npt.NDArray[np.uint64]

ID_BITS = 32
ID_MASK = np.uint64((1 << ID_BITS) - 1)
BUFFER_SHARE = 16  # the buffer is folded in when it exceeds 1/16 of the sorted part (or 4096 rows)
SNAPSHOT_FORMAT = 1
ROWS_PER_BUCKET = 2  # stored rows per directory bucket, about: docs/candidates.md has the trade-off
PACK_CHUNK = 1 << 22  # rows (or directory buckets) made compact or whole at a time
PROBES_PER_PASS = 1 << 17  # key probes per pass over the tables (see KeyTables._meetings)


def _member(values: Ids, sorted_set: Ids) -> npt.NDArray[np.bool_]:
    """Which of `values` are in the sorted array `sorted_set`."""
    if len(sorted_set) == 0 or len(values) == 0:
        return np.zeros(len(values), dtype=bool)
    positions = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    found: npt.NDArray[np.bool_] = sorted_set[positions] == values
    return found


def _expand(start: npt.NDArray[np.intp], length: npt.NDArray[np.intp]) -> tuple[Ids, Ids]:
    """Positions of every range [start, start + length) and the range's number beside each; empty
    ranges (most probes of a large table find an empty bucket) cost one pass."""
    ranges = np.flatnonzero(length)
    if not len(ranges):
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty.copy()
    length = length[ranges]
    ends = np.cumsum(length)
    total = int(ends[-1])
    positions = np.repeat(start[ranges] - (ends - length), length)
    positions += np.arange(total, dtype=np.intp)
    return positions, np.repeat(ranges, length)


class KeyTables:
    """Every table's keys, sorted by (table, key, entry id), with a directory over (table, top key
    bits); an entry may hold several rows (one per distinct hash of its family). `probe` returns
    every (query row, entry id) sharing a key in some table.

    One sorted part for all tables (not one per table with its own directory) keeps memory
    bounded, and the directory already says each row's table and top key bits, so a row keeps
    only the key bits below them and the entry id, packed in 32 bits while they fit (a million
    images: 20 bits of id and 3-5 of key): `starts` holds about ROWS_PER_BUCKET rows per bucket,
    a probe costs two reads and a short scan, and a row costs 4 bytes plus its share of the
    directory instead of the 8 of a whole `(table, key, id)`. Recent adds wait in a small sorted
    buffer of whole `(table << key bits | key) << 32 | entry id` values."""

    @staticmethod
    def free_id_bits(layout: KeyLayout) -> int:
        """The widest row id the layout's (table, key) bits leave of 64."""
        key_bits = 8 * len(layout.tables[0]) if layout.tables else 0
        return 64 - key_bits - max(1, (layout.table_count - 1).bit_length())

    def __init__(self, layout: KeyLayout, id_bits: int = ID_BITS, entry_shift: int = 0) -> None:
        """`id_bits`: the width of a row's id (32, or what the key leaves of 64 bits where ids are
        wider); `entry_shift`: the low id bits that name a part of an entry (a keypoint of an
        image), which `remove` and the removal filter ignore: they name entries by `id >>
        entry_shift`."""
        self.layout = layout
        self.key_bits = 8 * len(layout.tables[0]) if layout.tables else 0
        self.table_bits = max(1, (layout.table_count - 1).bit_length())
        if id_bits > self.free_id_bits(layout):
            raise ValueError(
                f"{layout.table_count} tables of {self.key_bits}-bit keys do not fit in {64 - id_bits} bits"
            )
        self.slot_bits = self.key_bits + self.table_bits  # bits of (table, key)
        self.id_bits = id_bits
        self.id_mask = np.uint64((1 << id_bits) - 1)
        self.entry_shift = entry_shift
        self._main = _CompactRows.empty()
        self._buffer: Packed = np.zeros(0, dtype=np.uint64)
        self._dead: Ids = np.zeros(0, dtype=np.int64)  # ids removed from the main part

    def __len__(self) -> int:
        """Rows (not entries) held per table, removed ones included until compaction."""
        return (len(self._main.rows) + len(self._buffer)) // max(self.layout.table_count, 1)

    def nbytes(self) -> int:
        return self._main.nbytes() + self._buffer.nbytes + self._dead.nbytes

    def _pack(self, keys: npt.NDArray[np.uint32], ids: Ids) -> Packed:
        """Packed rows of (n, tables) keys and their entry ids (unsorted)."""
        tables = np.arange(self.layout.table_count, dtype=np.uint64) << np.uint64(self.key_bits)
        packed: Packed = np.array(keys, dtype=np.uint64)  # in place from here: a million images'
        packed |= tables[None, :]  # rows are 1.3 GB, and each temporary as much again
        packed <<= np.uint64(self.id_bits)
        packed |= ids.astype(np.uint64)[:, None]
        return packed.ravel()

    def add(self, ids: npt.ArrayLike, words: Words) -> None:
        """Add rows (ids must be removed first if they were present: see `replace`)."""
        self.add_keys(ids, self.layout.keys(words))

    def add_keys(self, ids: npt.ArrayLike, keys: npt.NDArray[np.uint32]) -> None:
        """`add` from the rows' (n, tables) keys."""
        id_array = np.asarray(ids, dtype=np.int64).ravel()
        if len(id_array) == 0:
            return
        if id_array.min() < 0 or id_array.max() > int(self.id_mask):
            raise ValueError(f"entry ids must fit in {self.id_bits} bits")
        merged = self._pack(keys, id_array)
        if len(self._buffer):
            merged = np.concatenate([self._buffer, merged])
        merged.sort()
        self._buffer = merged
        if len(self._buffer) > max(4096 * self.layout.table_count, len(self._main.rows) // BUFFER_SHARE):
            self.compact()

    def remove(self, ids: npt.ArrayLike) -> None:
        """Forget every row of these entries."""
        gone = sorted_unique(np.asarray(ids, dtype=np.int64).ravel())
        if len(gone) == 0:
            return
        if len(self._buffer):
            self._buffer = self._buffer[~_member(self._entries(self._buffer & self.id_mask), gone)]
        # an entry after every one the sorted part holds (an index's new entry, which its sync
        # removes before adding) is not there: naming it dead would only cost every probe a
        # filter and bring the next compaction nearer
        gone = gone[gone <= self._main.top_id >> self.entry_shift]
        if len(gone) and len(self._main.rows):
            self._dead = sorted_unique(np.concatenate([self._dead, gone]))
            rows = len(self._main.rows) // max(self.layout.table_count, 1)
            if len(self._dead) > max(1024, (rows >> self.entry_shift) // (BUFFER_SHARE * 2)):
                self.compact()

    def _entries(self, ids: npt.NDArray[Any]) -> Ids:
        """The entries row ids belong to (`entry_shift`)."""
        entries: Ids = ids.astype(np.int64) >> self.entry_shift
        return entries

    def replace(self, ids: npt.ArrayLike, words: Words) -> None:
        """Remove every row of the entries named in `ids`, then add the given rows."""
        self.remove(ids)
        self.add(ids, words)

    def compact(self) -> None:
        """Fold the buffer into the sorted part and drop removed rows."""
        if not len(self._buffer) and not len(self._dead):
            return
        if len(self._main.rows):
            main = self._main.whole(self.key_bits, self.id_bits)
            if len(self._dead):
                main = main[~_member(self._entries(main & self.id_mask), self._dead)]
            if len(self._buffer):
                main = np.concatenate([main, self._buffer])
                main.sort()
        else:
            main = self._buffer  # sorted already: a table built at once is not copied again
        self._buffer = np.zeros(0, dtype=np.uint64)
        self._dead = np.zeros(0, dtype=np.int64)
        self._main = _CompactRows.empty()  # the old rows go before the new ones are made
        self._main = _CompactRows.pack(main, self.layout.table_count, self.key_bits, self.id_bits)

    def probe(self, query_keys: npt.NDArray[np.uint32], owners: Ids | None = None) -> tuple[Ids, Ids]:
        """Every (query row, entry id) whose keys meet in some table, each pair once: a copy meets
        its original in many tables (and several rows of one query meet it), so the meetings of
        all tables are packed in 64 bits and folded with one sort.

        `owners`: the query each row belongs to (its variants share it). The pairs are then folded
        per owner, and each owner's pairs carry one of its rows (the first) as the row."""
        count = len(query_keys)
        if owners is None:
            holder: Ids = np.arange(count, dtype=np.int64)
        else:
            holder = np.asarray(owners, dtype=np.int64)
        if count and int(holder.max()) >= 2**31:
            raise ValueError("at most 2**31 queries per probe")
        if self.id_bits != ID_BITS:
            raise ValueError(f"probe packs {ID_BITS}-bit ids: use probe_keys")
        shifted = holder << 32
        found = [shifted[rows] | ids for rows, ids, _ in self._meetings(query_keys)]
        packed = sorted_unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)
        ids = packed & int(ID_MASK)
        held = packed >> 32
        if owners is None:
            return held, ids
        first_row = np.zeros(int(holder.max()) + 1, dtype=np.int64)
        first_row[holder[::-1]] = np.arange(count - 1, -1, -1, dtype=np.int64)
        return first_row[held], ids

    def probe_tables(self, query_keys: npt.NDArray[np.uint32]) -> tuple[Ids, Ids, Ids]:
        """Every (query row, entry id, table) whose keys meet in that table."""
        keys = self._checked(query_keys)
        count = len(keys)
        tables = np.repeat(np.arange(self.layout.table_count, dtype=np.int64), count)
        probes, ids = self.probe_keys(keys.T.ravel(), tables)
        return probes % max(count, 1), ids, probes // max(count, 1)

    def probe_keys(
        self, keys: npt.ArrayLike, tables: npt.ArrayLike, limit: int | None = None
    ) -> tuple[Ids, Ids]:
        """Every (probe, entry id) where probe p's key `keys[p]` meets a stored row of table
        `tables[p]`. With `limit`, a key that many live rows hold returns none of them: a caller
        weighing keys by rarity skips the commonest, unread where the sorted part alone holds
        that many (and no removal there is pending)."""
        key_array, table_array = np.asarray(keys), np.asarray(tables)
        common = np.zeros(len(key_array), dtype=bool)
        probes_found: list[Ids] = []
        ids_found: list[Ids] = []
        unread_from = None if len(self._dead) else limit
        for probes, ids, skipped in self._flat_meetings(key_array, table_array, unread_from):
            if skipped is not None:
                common |= skipped
            probes_found.append(probes)
            ids_found.append(ids)
        if not probes_found:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty.copy()
        probes, ids = np.concatenate(probes_found), np.concatenate(ids_found)
        if limit is not None and len(probes):
            common |= np.bincount(probes, minlength=len(key_array)) >= limit
            keep = ~common[probes]
            probes, ids = probes[keep], ids[keep]
        return probes, ids

    def _checked(self, query_keys: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
        keys = np.asarray(query_keys)
        if keys.ndim != 2 or keys.shape[1] != self.layout.table_count:
            raise ValueError(f"expected (n, {self.layout.table_count}) keys, got {keys.shape}")
        if len(keys) >= 2**31:
            raise ValueError("at most 2**31 query rows per probe")
        return keys

    def _meetings(self, query_keys: npt.NDArray[np.uint32]) -> Iterator[tuple[Ids, Ids, Ids]]:
        """(query rows, entry ids, tables) meeting in the sorted part and the buffer, live rows
        only (`_flat_meetings`). Tables go in passes of about
        PROBES_PER_PASS probes: a single query's 40 tables in one pass (each NumPy call costs
        microseconds whatever its size, and a match is a few hundred probes), a duplicate search's
        batch a table or two at a time (the working arrays follow the queries, not queries x
        tables, and a pass's part of the directory stays in cache)."""
        keys = self._checked(query_keys)
        count = len(keys)
        if not count:
            return
        by_table = np.ascontiguousarray(keys.T, dtype=np.uint64)  # (tables, rows)
        step = max(1, min(self.layout.table_count, PROBES_PER_PASS // count))
        for first in range(0, self.layout.table_count, step):
            last = min(first + step, self.layout.table_count)
            column = by_table[first:last].ravel()  # probe p: table first + p // count, row p % count
            table_of = np.repeat(np.arange(first, last, dtype=np.uint64), count)
            for probes, ids, _ in self._flat_meetings(column, table_of, None):
                yield probes % count, ids, probes // count + first

    def _flat_meetings(
        self, keys: npt.NDArray[Any], tables: npt.NDArray[Any], limit: int | None
    ) -> Iterator[tuple[Ids, Ids, npt.NDArray[np.bool_] | None]]:
        """(probe, entry id, the probes skipped) of every probe (key, table) meeting a live row of
        the sorted part (removed entries' rows there are dropped: an entry removed and added
        again lives in the buffer), then of the buffer; with `limit`, where a directory bucket is
        one key, keys the sorted part holds that many times are skipped unread (and named, so
        that the caller drops them from the buffer too). The caller counts every other key's
        rows itself."""
        if not len(keys):
            return
        column = keys.astype(np.uint64, copy=False)
        table_of = tables.astype(np.uint64, copy=False)
        main, buffer = self._main, self._buffer
        if len(main.rows):
            residual_bits = self.key_bits - main.bucket_bits
            id_mask = (1 << main.id_bits) - 1
            bucket = (column >> np.uint64(residual_bits)).astype(np.intp)
            bucket |= table_of.astype(np.intp) << main.bucket_bits
            main.starts_ahead.rows(bucket)
            start = main.starts[bucket].astype(np.intp)
            length = main.starts[bucket + 1].astype(np.intp)
            length -= start
            skipped = None
            if limit is not None and not residual_bits:  # a bucket is one key: skipped unread
                skipped = length >= limit
                length[skipped] = 0
            positions, probes = _expand(start, length)
            main.rows_ahead.rows(positions)
            found = main.rows[positions]
            residual = (column & np.uint64((1 << residual_bits) - 1)).astype(found.dtype)
            same = (found >> main.id_bits) == residual[probes]  # the bucket holds neighbours too
            probes, ids = probes[same].astype(np.int64), (found[same] & id_mask).astype(np.int64)
            if len(self._dead):
                alive = ~_member(self._entries(ids), self._dead)
                probes, ids = probes[alive], ids[alive]
            yield probes, ids, skipped
        if len(buffer):
            low = (column | (table_of << np.uint64(self.key_bits))) << np.uint64(self.id_bits)
            start = np.searchsorted(buffer, low, side="left").astype(np.intp)
            stop = np.searchsorted(buffer, low | self.id_mask, side="right").astype(np.intp)
            positions, probes = _expand(start, stop - start)
            yield probes.astype(np.int64), (buffer[positions] & self.id_mask).astype(np.int64), None

    # ----- snapshots -------------------------------------------------------------------------------
    def save(self, folder: Path, meta: Mapping[str, Any]) -> None:
        self.compact()
        main = self._main
        arrays: dict[str, npt.NDArray[Any]] = {"rows": main.rows, "starts": main.starts}
        shape = {"bucket_bits": main.bucket_bits, "id_bits": main.id_bits, "top_id": main.top_id}
        _save_arrays(folder, arrays, {**meta, **shape, "layout": self._signature()})

    def _signature(self) -> list[Any]:
        """What a snapshot must agree with: the layout, and ids' width and parts where not plain."""
        signature = _layout_signature(self.layout)
        if (self.id_bits, self.entry_shift) != (ID_BITS, 0):
            signature.append([self.id_bits, self.entry_shift])
        return signature

    @classmethod
    def load(
        cls, folder: Path, layout: KeyLayout, id_bits: int = ID_BITS, entry_shift: int = 0
    ) -> tuple[KeyTables, dict[str, Any]] | None:
        """A snapshot of this layout, or None (absent, another layout, or the per-table arrays
        of the first snapshot format: the caller rebuilds from the catalog). A snapshot of whole
        64-bit rows (`keys`, before rows were compact) is converted, and its meta says
        `upgraded` so that the caller writes it again."""
        loaded = _load_arrays(folder)
        if loaded is None:
            return None
        arrays, meta = loaded
        tables = cls(layout, id_bits, entry_shift)
        if meta.get("layout") != tables._signature():
            return None
        if "rows" in arrays and "starts" in arrays:
            main = _CompactRows.of_snapshot(
                arrays["rows"], arrays["starts"], meta, layout.table_count, tables.key_bits
            )
            if main is None:
                return None
            tables._main = main  # memory-mapped
            return tables, meta
        if "keys" in arrays:
            if id_bits != ID_BITS:
                return None
            tables._main = _CompactRows.pack(np.asarray(arrays["keys"]), layout.table_count, tables.key_bits)
            return tables, {**meta, "upgraded": True}
        return None


class _CompactRows:
    """The sorted part of key tables: `rows[i]` = residual key bits << `id_bits` | entry id, and
    `starts[b]` the first row of bucket b = table << `bucket_bits` | top key bits."""

    def __init__(
        self,
        rows: npt.NDArray[Any],
        starts: npt.NDArray[Any],
        bucket_bits: int,
        id_bits: int,
        top_id: int | None = None,
    ) -> None:
        self.rows = rows  # uint32, or uint64 where residual and id bits need more than 32
        self.starts = starts  # uint32, or int64 past 2**32 rows
        self.bucket_bits = bucket_bits
        self.id_bits = id_bits
        # the greatest id held (at most what id_bits hold where a snapshot did not say)
        self.top_id = (1 << id_bits) - 1 if top_id is None else top_id
        self.starts_ahead = ReadAhead(starts, span=2)  # a bucket's start and the next one
        self.rows_ahead = ReadAhead(rows)

    @classmethod
    def empty(cls) -> _CompactRows:
        return cls(np.zeros(0, dtype=np.uint32), np.zeros(1, dtype=np.uint32), 0, 1, -1)

    def nbytes(self) -> int:
        return int(self.rows.nbytes + self.starts.nbytes)

    @staticmethod
    def bucket_bits_for(rows_per_table: int, key_bits: int) -> int:
        """Top key bits the directory addresses per table: about ROWS_PER_BUCKET rows a bucket
        (16 buckets per table at least, the whole key at most)."""
        wanted = max(rows_per_table / ROWS_PER_BUCKET, 1.0)
        return int(min(key_bits, max(4, int(np.ceil(np.log2(wanted))))))

    @staticmethod
    def row_dtype(residual_bits: int, id_bits: int) -> type[np.unsignedinteger[Any]]:
        return np.uint32 if residual_bits + id_bits <= 32 else np.uint64

    @classmethod
    def pack(
        cls, packed: Packed, table_count: int, key_bits: int, whole_id_bits: int = ID_BITS
    ) -> _CompactRows:
        """The compact form of sorted whole rows (`(table << key_bits | key) << whole_id_bits | id`), made
        PACK_CHUNK rows at a time: at a million images the whole rows are 1.6 GB, and each
        full-size temporary would be as much again."""
        count = len(packed)
        if not count:
            return cls.empty()
        bucket_bits = cls.bucket_bits_for(count // max(table_count, 1), key_bits)
        residual_bits = key_bits - bucket_bits
        id_mask = np.uint64((1 << whole_id_bits) - 1)
        top_id = max(int((packed[a : a + PACK_CHUNK] & id_mask).max()) for a in range(0, count, PACK_CHUNK))
        id_bits = max(1, top_id.bit_length())
        rows = np.empty(count, dtype=cls.row_dtype(residual_bits, id_bits))
        starts = np.zeros((table_count << bucket_bits) + 1, dtype=np.uint32 if count < 2**32 else np.int64)
        residual_mask = np.uint64((1 << residual_bits) - 1)
        for first in range(0, count, PACK_CHUNK):
            part = packed[first : first + PACK_CHUNK]
            slots = part >> np.uint64(whole_id_bits)
            buckets = (slots >> np.uint64(residual_bits)).astype(np.intp)
            low = int(buckets[0])  # sorted: a chunk's buckets are one run of the directory
            starts[low + 1 : int(buckets[-1]) + 2] += np.bincount(buckets - low).astype(starts.dtype)
            slots &= residual_mask
            slots <<= np.uint64(id_bits)
            slots |= part & id_mask
            rows[first : first + len(part)] = slots
        np.cumsum(starts, out=starts, dtype=starts.dtype)
        return cls(rows, starts, bucket_bits, id_bits, top_id)

    def whole(self, key_bits: int, whole_id_bits: int = ID_BITS) -> Packed:
        """The rows as sorted `(table << key_bits | key) << whole_id_bits | id` again (to merge and
        remove)."""
        residual_bits = key_bits - self.bucket_bits
        whole = np.empty(len(self.rows), dtype=np.uint64)
        buckets = len(self.starts) - 1
        for first in range(0, buckets, PACK_CHUNK):
            last = min(first + PACK_CHUNK, buckets)
            begin, end = int(self.starts[first]), int(self.starts[last])
            if begin == end:
                continue
            bounds: Ids = self.starts[first : last + 1].astype(np.int64)
            counts = bounds[1:] - bounds[:-1]
            part = np.repeat(np.arange(first, last, dtype=np.uint64), counts)  # each row's bucket
            rows = self.rows[begin:end].astype(np.uint64)
            part <<= np.uint64(residual_bits)
            part |= rows >> np.uint64(self.id_bits)
            part <<= np.uint64(whole_id_bits)
            part |= rows & np.uint64((1 << self.id_bits) - 1)
            whole[begin:end] = part
        return whole

    @classmethod
    def of_snapshot(
        cls,
        rows: npt.NDArray[Any],
        starts: npt.NDArray[Any],
        meta: Mapping[str, Any],
        table_count: int,
        key_bits: int,
    ) -> _CompactRows | None:
        """Snapshot arrays as compact rows, if they agree with their meta (None: rebuild)."""
        bucket_bits, id_bits = meta.get("bucket_bits"), meta.get("id_bits")
        if (
            not isinstance(bucket_bits, int)
            or not isinstance(id_bits, int)
            or not 0 <= bucket_bits <= key_bits
        ):
            return None
        if not len(rows):
            return cls.empty()
        expected = cls.row_dtype(key_bits - bucket_bits, id_bits)
        if (
            rows.dtype != expected
            or len(starts) != (table_count << bucket_bits) + 1
            or int(starts[-1]) != len(rows)
        ):
            return None
        # plain ndarray views of the memory maps: np.memmap's indexing costs microseconds a call
        top_id = meta.get("top_id")
        known = top_id if isinstance(top_id, int) else None
        return cls(rows.view(np.ndarray), starts.view(np.ndarray), bucket_bits, id_bits, known)


class WordStore:
    """One algorithm's stored hashes by entry id: words, quality and the unreliable flag, for
    judging candidates (`lookup`) and for nominating by keys."""

    def __init__(self, nbits: int) -> None:
        self.nbits = nbits
        self.word_count = (nbits + 63) // 64
        self._ids: Ids = np.zeros(0, dtype=np.int64)  # sorted
        self._words: Words = np.zeros((0, self.word_count), dtype=np.uint64)
        self._quality: npt.NDArray[np.float32] = np.zeros(0, dtype=np.float32)
        self._flagged: npt.NDArray[np.bool_] = np.zeros(0, dtype=bool)
        self._pending: list[tuple[Ids, Words, npt.NDArray[np.float32], npt.NDArray[np.bool_]]] = []
        self._pending_rows = 0
        self._removed: list[Ids] = []
        self._position: npt.NDArray[np.int32] | None = None  # id -> row, when ids are dense
        self._ahead: dict[str, ReadAhead] = {}  # of a snapshot's memory-mapped arrays
        self._room: tuple[Ids, Words, npt.NDArray[np.float32], npt.NDArray[np.bool_]] | None = None

    def __len__(self) -> int:
        self._settle()
        return len(self._ids)

    def nbytes(self) -> int:
        self._settle()
        return self._ids.nbytes + self._words.nbytes + self._quality.nbytes + self._flagged.nbytes

    def upsert(
        self,
        ids: npt.ArrayLike,
        words: Words,
        quality: npt.ArrayLike | None = None,
        flagged: npt.ArrayLike | None = None,
    ) -> None:
        """Store rows; an id already present is replaced (the last row of an id wins)."""
        id_array = np.asarray(ids, dtype=np.int64).ravel()
        count = len(id_array)
        if count == 0:
            return
        rows = np.asarray(words, dtype=np.uint64).reshape(count, self.word_count)
        scores = (
            np.full(count, np.nan, dtype=np.float32)
            if quality is None
            else np.asarray(quality, dtype=np.float32).ravel()
        )
        flags = np.zeros(count, dtype=bool) if flagged is None else np.asarray(flagged, dtype=bool).ravel()
        self._pending.append((id_array, rows, scores, flags))
        self._pending_rows += count

    def remove(self, ids: npt.ArrayLike) -> None:
        """Forget these ids (rows upserted after this call are kept)."""
        gone = sorted_unique(np.asarray(ids, dtype=np.int64).ravel())
        if len(gone) == 0:
            return
        self._pending = [
            (i[keep], w[keep], q[keep], f[keep])
            for i, w, q, f in self._pending
            for keep in [~_member(i, gone)]
        ]
        gone = gone[_member(gone, self._ids)]  # an id never stored (a new entry) costs no rewrite
        if len(gone):
            self._removed.append(gone)

    def _settle(self) -> None:
        """Apply pending removals and upserts (one merge for a whole sync)."""
        if not self._pending and not self._removed:
            return
        if not self._removed and self._append_pending():
            return
        self._room = None
        parts = [(self._ids, self._words, self._quality, self._flagged)]
        if self._removed:
            gone = sorted_unique(np.concatenate(self._removed))
            keep = ~_member(self._ids, gone)
            parts = [(self._ids[keep], self._words[keep], self._quality[keep], self._flagged[keep])]
        parts += self._pending
        all_ids = np.concatenate([p[0] for p in parts])
        order = np.argsort(all_ids, kind="stable")
        sorted_ids = all_ids[order]
        last = np.ones(len(sorted_ids), dtype=bool)  # the last write of an id wins
        if len(sorted_ids) > 1:
            last[:-1] = sorted_ids[1:] != sorted_ids[:-1]
        chosen = order[last]
        self._ids = all_ids[chosen]
        self._words = np.concatenate([p[1] for p in parts])[chosen]
        self._quality = np.concatenate([p[2] for p in parts])[chosen]
        self._flagged = np.concatenate([p[3] for p in parts])[chosen]
        self._pending, self._pending_rows, self._removed = [], 0, []
        self._position = None
        self._ahead = {}

    def _append_pending(self) -> bool:
        """Write pending rows after the stored ones when their ids all follow them, each once (an
        index's new entries), into spare room kept past the rows: a store of a million images'
        keypoint signatures (0.9 GB) is not rewritten for each image added. False otherwise."""
        ids = np.concatenate([p[0] for p in self._pending])
        order = np.argsort(ids, kind="stable")
        ids = ids[order]
        if (len(self._ids) and int(ids[0]) <= int(self._ids[-1])) or bool((ids[1:] == ids[:-1]).any()):
            return False
        held, count = len(self._ids), len(ids)
        room = self._room
        if room is None or len(room[0]) < held + count:
            size = held + count + max(1024, (held + count) // 4)
            grown = (
                np.empty(size, dtype=np.int64),
                np.empty((size, self.word_count), dtype=np.uint64),
                np.empty(size, dtype=np.float32),
                np.empty(size, dtype=bool),
            )
            stored: tuple[npt.NDArray[Any], ...] = (self._ids, self._words, self._quality, self._flagged)
            parts: tuple[npt.NDArray[Any], ...] = grown
            for part, source in zip(parts, stored, strict=True):
                part[:held] = source
            room = self._room = grown
        targets: tuple[npt.NDArray[Any], ...] = room
        for number, target in enumerate(targets):
            target[held : held + count] = np.concatenate([p[number] for p in self._pending])[order]
        end = held + count
        self._ids, self._words, self._quality, self._flagged = (
            room[0][:end],
            room[1][:end],
            room[2][:end],
            room[3][:end],
        )
        self._pending, self._pending_rows = [], 0
        self._position = None
        self._ahead = {}
        return True

    def lookup(
        self, ids: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.bool_], Words, npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
        """(present, words, quality, flagged) for each id (zeros where absent)."""
        self._settle()
        wanted = np.asarray(ids, dtype=np.int64).ravel()
        if len(self._ids) == 0:
            count = len(wanted)
            return (
                np.zeros(count, dtype=bool),
                np.zeros((count, self.word_count), dtype=np.uint64),
                np.full(count, np.nan, dtype=np.float32),
                np.zeros(count, dtype=bool),
            )
        positions = self._positions_of(wanted)
        for name in ("ids", "words", "quality", "flagged"):  # their reads queued side by side
            if name in self._ahead:
                self._ahead[name].rows(positions)
        present = self._ids[positions] == wanted
        words = self._words[positions]
        words[~present] = 0
        return present, words, self._quality[positions], self._flagged[positions] & present

    def words_at(self, ids: npt.ArrayLike, columns: npt.ArrayLike, *, held: bool = False) -> Words:
        """Word `columns[i]` of the row of `ids[i]`, for each i (0 where the id is absent): one
        word each of many rows, without reading the rest of them. `held`: the caller knows
        every id is stored (a million-image query asks for a million words, and checking each
        cost as much as the read); where the ids are not dense this is not trusted."""
        self._settle()
        wanted = np.asarray(ids, dtype=np.int64).ravel()
        if not len(self._ids) or not len(wanted):
            return np.zeros(len(wanted), dtype=np.uint64)
        if self._position is None:
            self._position = self._position_table()
        position = self._position
        present = None
        if held and position is not None and int(wanted.min()) >= 0 and int(wanted.max()) < len(position):
            flat: Ids = position[wanted].astype(np.int64)
        else:
            flat = self._positions_of(wanted)
            present = self._ids[flat] == wanted
        flat *= self.word_count  # one gather from the flat words: 2D indexing costs 1.5x
        flat += np.asarray(columns, dtype=np.int64).ravel()
        found: Words = np.take(self._words.reshape(-1), flat)
        if present is not None:
            found[~present] = 0
        return found

    def _positions_of(self, wanted: Ids) -> Ids:
        """Row of each id (any row where absent: the caller compares). Ids of a SQLite index are
        dense, so a direct table serves them; sparse ids fall back to a binary search."""
        top = int(self._ids[-1])
        if self._position is None:
            self._position = self._position_table()
        if self._position is not None:
            inside = (wanted >= 0) & (wanted <= top)
            clipped = np.clip(wanted, 0, top)
            if "position" in self._ahead:
                self._ahead["position"].rows(clipped)
            found: Ids = np.where(inside, self._position[clipped], 0).astype(np.int64)
            return found
        return np.minimum(np.searchsorted(self._ids, wanted), len(self._ids) - 1).astype(np.int64)

    def _position_table(self) -> npt.NDArray[np.int32] | None:
        """Row of each id from 0 to the greatest, when ids are dense enough for a direct table:
        at most 4 slots an id, or where rows are wide (an image's keypoint signatures, 896
        bytes) a table no larger than the words."""
        if not len(self._ids):
            return None
        top = int(self._ids[-1])
        slots = max(4 * len(self._ids) + 1024, self._words.nbytes // 4)
        if not 0 <= top < slots:
            return None
        position = np.zeros(top + 1, dtype=np.int32)
        position[self._ids] = np.arange(len(self._ids), dtype=np.int32)
        return position

    def rows(self) -> tuple[Ids, Words, npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
        """Every stored (id, words, quality, flagged), by id."""
        self._settle()
        return self._ids, self._words, self._quality, self._flagged

    def save(self, folder: Path, meta: Mapping[str, Any]) -> None:
        ids, words, quality, flagged = self.rows()
        arrays: dict[str, npt.NDArray[Any]] = {
            "ids": ids,
            "words": words,
            "quality": quality,
            "flagged": flagged,
        }
        # the direct table too: made from every id, it would cost the first query after opening a
        # snapshot a read of the whole id array (seconds at ten million images on a cold disk)
        if self._position is None:
            self._position = self._position_table()
        if self._position is not None:
            arrays["position"] = self._position
        _save_arrays(folder, arrays, {**meta, "nbits": self.nbits})

    @classmethod
    def load(cls, folder: Path, nbits: int) -> tuple[WordStore, dict[str, Any]] | None:
        loaded = _load_arrays(folder)
        if loaded is None:
            return None
        arrays, meta = loaded
        if meta.get("nbits") != nbits:
            return None
        store = cls(nbits)
        try:
            store._ids, store._words = arrays["ids"], arrays["words"]
            store._quality, store._flagged = arrays["quality"], arrays["flagged"]
        except KeyError:
            return None
        position = arrays.get("position")
        if position is not None and len(store._ids) and len(position) == int(store._ids[-1]) + 1:
            store._position = position.view(np.ndarray)
            store._ahead["position"] = ReadAhead(position)
        for name in ("ids", "words", "quality", "flagged"):
            store._ahead[name] = ReadAhead(arrays[name])
        return store, meta


def _layout_signature(layout: KeyLayout) -> list[Any]:
    return [layout.nbits, [list(table) for table in layout.tables]]


def _save_arrays(folder: Path, arrays: Mapping[str, npt.NDArray[Any]], meta: Mapping[str, Any]) -> None:
    """Write arrays as .npy files plus meta.json into `folder`, replacing it atomically."""
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, array in arrays.items():
        np.save(tmp / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
    (tmp / "meta.json").write_text(json.dumps({**meta, "format": SNAPSHOT_FORMAT}))
    old = folder.with_name(f".{folder.name}.{os.getpid()}.old")
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def _load_arrays(folder: Path) -> tuple[dict[str, npt.NDArray[Any]], dict[str, Any]] | None:
    """Arrays of a snapshot folder, memory-mapped, and its meta; None if absent or unreadable."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("format") != SNAPSHOT_FORMAT:
            return None
        arrays = {
            path.stem: _random_access(np.load(path, mmap_mode="r", allow_pickle=False))
            for path in folder.glob("*.npy")
        }
    except (OSError, ValueError):
        return None
    return arrays, meta


def _random_access(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """A memory-mapped snapshot array, its pages read one at a time: a query touches a few
    scattered rows, and the kernel's read-ahead around each would read many times the pages it
    needs from a cold disk."""
    mapped = getattr(array, "_mmap", None)
    if mapped is not None and hasattr(mmap, "MADV_RANDOM"):
        with contextlib.suppress(OSError, ValueError):  # advice only
            mapped.madvise(mmap.MADV_RANDOM)
    return array
