"""In-memory structures of the candidate stage: key tables (who might match) and word stores (the
hashes that judge them), both keyed by entry id and cheap to update.

Each keeps a large sorted part, a small sorted buffer of recent adds and a list of removed ids, the
shape `lookalike.search.store.HashStore` uses: adds and removes are cheap, and the sorted part is
rebuilt when the buffer or the removals grow past a share of it. Both snapshot to a folder of
`.npy` files that open memory-mapped, so a large index answers its first query without reading
its tables whole.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lookalike.candidates.keys import KeyLayout
from lookalike.sorted_arrays import sorted_unique

Ids = npt.NDArray[np.int64]
Words = npt.NDArray[np.uint64]
Packed = npt.NDArray[np.uint64]

ID_BITS = 32
ID_MASK = np.uint64((1 << ID_BITS) - 1)
BUFFER_SHARE = 16  # the buffer is folded in when it exceeds 1/16 of the sorted part (or 4096 rows)
SNAPSHOT_FORMAT = 1


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
    """Every table's keys in one sorted array of `(table << key bits | key) << 32 | entry id`; an
    entry may hold several rows (one per distinct hash of its family). `probe` returns every
    (query row, entry id) sharing a key in some table.

    One array for all tables (not one per table with its own directory) keeps memory bounded:
    `starts` holds one or two buckets per stored row over (table, top key bits), 4-8 bytes a row,
    so a probe costs two reads and a short scan, not a binary search over millions, and memory
    stays near the 8 bytes of each row's packed key."""

    def __init__(self, layout: KeyLayout) -> None:
        self.layout = layout
        self.key_bits = 8 * len(layout.tables[0]) if layout.tables else 0
        self.table_bits = max(1, (layout.table_count - 1).bit_length())
        if self.key_bits + self.table_bits + ID_BITS > 64:
            raise ValueError(f"{layout.table_count} tables of {self.key_bits}-bit keys do not fit in 32 bits")
        self.slot_bits = self.key_bits + self.table_bits  # bits of (table, key)
        self._main: Packed = np.zeros(0, dtype=np.uint64)
        self._starts: npt.NDArray[np.uint32] | npt.NDArray[np.int64] | None = None
        self._buffer: Packed = np.zeros(0, dtype=np.uint64)
        self._dead: Ids = np.zeros(0, dtype=np.int64)  # ids removed from the main part

    def _bucket_bits(self) -> int:
        """Top key bits that address the sorted part within each table: one or two buckets per
        row (16 per table at least, the whole key at most)."""
        per_table = max(len(self._main) // max(self.layout.table_count, 1), 1)
        return int(min(self.key_bits, max(4, int(np.ceil(np.log2(per_table))))))

    def _buckets(self, tables: npt.NDArray[np.uint64], keys: npt.NDArray[np.uint64]) -> Ids:
        """The directory bucket of each (table, key): dense over tables, whatever their count."""
        bits = self._bucket_bits()
        high = keys >> np.uint64(self.key_bits - bits)
        buckets: Ids = ((tables << np.uint64(bits)) | high).astype(np.int64)
        return buckets

    def _directory(self) -> npt.NDArray[np.uint32] | npt.NDArray[np.int64]:
        starts = self._starts
        if starts is None:
            slots = self._main >> np.uint64(ID_BITS)
            key_mask = np.uint64((1 << self.key_bits) - 1)
            buckets = self._buckets(slots >> np.uint64(self.key_bits), slots & key_mask)
            size = self.layout.table_count << self._bucket_bits()
            counts = np.bincount(buckets, minlength=size)
            starts = np.zeros(size + 1, dtype=np.uint32 if len(self._main) < 2**32 else np.int64)
            np.cumsum(counts, out=starts[1:])
            self._starts = starts
        return starts

    def __len__(self) -> int:
        """Rows (not entries) held per table, removed ones included until compaction."""
        return (len(self._main) + len(self._buffer)) // max(self.layout.table_count, 1)

    def nbytes(self) -> int:
        starts = 0 if self._starts is None else self._starts.nbytes
        return self._main.nbytes + self._buffer.nbytes + self._dead.nbytes + starts

    def _pack(self, keys: npt.NDArray[np.uint32], ids: Ids) -> Packed:
        """Packed rows of (n, tables) keys and their entry ids (unsorted)."""
        tables = np.arange(self.layout.table_count, dtype=np.uint64) << np.uint64(self.key_bits)
        packed: Packed = np.array(keys, dtype=np.uint64)  # in place from here: a million images'
        packed |= tables[None, :]  # rows are 1.3 GB, and each temporary as much again
        packed <<= np.uint64(ID_BITS)
        packed |= ids.astype(np.uint64)[:, None]
        return packed.ravel()

    def add(self, ids: npt.ArrayLike, words: Words) -> None:
        """Add rows (ids must be removed first if they were present: see `replace`)."""
        id_array = np.asarray(ids, dtype=np.int64).ravel()
        if len(id_array) == 0:
            return
        if id_array.min() < 0 or id_array.max() > int(ID_MASK):
            raise ValueError("entry ids must fit in 32 bits")
        merged = self._pack(self.layout.keys(words), id_array)
        if len(self._buffer):
            merged = np.concatenate([self._buffer, merged])
        merged.sort()
        self._buffer = merged
        if len(self._buffer) > max(4096 * self.layout.table_count, len(self._main) // BUFFER_SHARE):
            self.compact()

    def remove(self, ids: npt.ArrayLike) -> None:
        """Forget every row of these entries."""
        gone = sorted_unique(np.asarray(ids, dtype=np.int64).ravel())
        if len(gone) == 0:
            return
        if len(self._buffer):
            self._buffer = self._buffer[~_member((self._buffer & ID_MASK).astype(np.int64), gone)]
        if len(self._main):
            self._dead = sorted_unique(np.concatenate([self._dead, gone]))
            rows = len(self._main) // max(self.layout.table_count, 1)
            if len(self._dead) > max(1024, rows // (BUFFER_SHARE * 2)):
                self.compact()

    def replace(self, ids: npt.ArrayLike, words: Words) -> None:
        """Remove every row of the entries named in `ids`, then add the given rows."""
        self.remove(ids)
        self.add(ids, words)

    def compact(self) -> None:
        """Fold the buffer into the sorted part and drop removed rows."""
        main = self._main
        if len(self._dead) and len(main):
            main = main[~_member((main & ID_MASK).astype(np.int64), self._dead)]
        if len(self._buffer) and not len(main):
            main = self._buffer  # sorted already: a table built at once is not copied again
        elif len(self._buffer):
            main = np.concatenate([main, self._buffer])
            main.sort()
        self._main = main
        self._buffer = np.zeros(0, dtype=np.uint64)
        self._starts = None
        self._dead = np.zeros(0, dtype=np.int64)

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
        shifted = holder << 32
        found = [shifted[rows] | ids for _, rows, ids in self._meetings(query_keys)]
        packed = sorted_unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)
        if len(self._dead) and len(packed):
            packed = packed[~_member(packed & int(ID_MASK), self._dead)]
        ids = packed & int(ID_MASK)
        held = packed >> 32
        if owners is None:
            return held, ids
        first_row = np.zeros(int(holder.max()) + 1, dtype=np.int64)
        first_row[holder[::-1]] = np.arange(count - 1, -1, -1, dtype=np.int64)
        return first_row[held], ids

    def probe_tables(self, query_keys: npt.NDArray[np.uint32]) -> tuple[Ids, Ids, Ids]:
        """Every (query row, entry id, table) whose keys meet in that table."""
        rows_found: list[Ids] = []
        ids_found: list[Ids] = []
        tables_found: list[Ids] = []
        for table, rows, ids in self._meetings(query_keys):
            if len(self._dead):
                alive = ~_member(ids, self._dead)
                rows, ids = rows[alive], ids[alive]
            rows_found.append(rows)
            ids_found.append(ids)
            tables_found.append(np.full(len(rows), table, dtype=np.int64))
        if not rows_found:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty.copy(), empty.copy()
        return np.concatenate(rows_found), np.concatenate(ids_found), np.concatenate(tables_found)

    def _meetings(self, query_keys: npt.NDArray[np.uint32]) -> Iterator[tuple[int, Ids, Ids]]:
        """(table, query rows, entry ids) meeting in each table, in the sorted part and the buffer,
        removed entries included (the caller drops them once, after folding). One table at a time:
        its part of the directory and of the sorted rows stays in cache, and the working arrays
        follow the queries, not queries x tables."""
        keys = np.asarray(query_keys)
        if keys.ndim != 2 or keys.shape[1] != self.layout.table_count:
            raise ValueError(f"expected (n, {self.layout.table_count}) keys, got {keys.shape}")
        if len(keys) >= 2**31:
            raise ValueError("at most 2**31 query rows per probe")
        if not len(keys):
            return
        by_table = np.ascontiguousarray(keys.T, dtype=np.uint64)  # (tables, rows)
        main, buffer = self._main, self._buffer
        starts = self._directory() if len(main) else None
        bits = self._bucket_bits()
        drop = np.uint64(self.key_bits - bits)
        for table in range(self.layout.table_count):
            column = by_table[table]
            slots = column | np.uint64(table << self.key_bits)
            if starts is not None:
                bucket = (column >> drop).astype(np.intp)
                bucket += table << bits
                start = starts[bucket].astype(np.intp)
                length = starts[bucket + 1].astype(np.intp)
                length -= start
                positions, rows = _expand(start, length)
                found = main[positions]
                same = (found >> np.uint64(ID_BITS)) == slots[rows]  # the bucket holds neighbours too
                yield table, rows[same], (found[same] & ID_MASK).astype(np.int64)
            if len(buffer):
                low = slots << np.uint64(ID_BITS)
                start = np.searchsorted(buffer, low, side="left").astype(np.intp)
                stop = np.searchsorted(buffer, low | ID_MASK, side="right").astype(np.intp)
                positions, rows = _expand(start, stop - start)
                yield table, rows, (buffer[positions] & ID_MASK).astype(np.int64)

    # ----- snapshots -------------------------------------------------------------------------------
    def save(self, folder: Path, meta: Mapping[str, Any]) -> None:
        self.compact()
        arrays: dict[str, npt.NDArray[Any]] = {"keys": self._main, "starts": self._directory()}
        _save_arrays(folder, arrays, {**meta, "layout": _layout_signature(self.layout)})

    @classmethod
    def load(cls, folder: Path, layout: KeyLayout) -> tuple[KeyTables, dict[str, Any]] | None:
        """A snapshot of this layout, or None (absent, another layout, or the per-table arrays
        of the first snapshot format: the caller rebuilds from the catalog)."""
        loaded = _load_arrays(folder)
        if loaded is None:
            return None
        arrays, meta = loaded
        if meta.get("layout") != _layout_signature(layout) or "keys" not in arrays:
            return None
        tables = cls(layout)
        tables._main = arrays["keys"]
        starts = arrays.get("starts")
        dtype = np.int64 if len(tables._main) >= 2**32 else np.uint32
        size = (layout.table_count << tables._bucket_bits()) + 1
        if starts is not None and len(starts) == size and starts.dtype == dtype:
            tables._starts = starts  # memory-mapped, as the keys are
        return tables, meta


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
        self._removed.append(gone)

    def _settle(self) -> None:
        """Apply pending removals and upserts (one merge for a whole sync)."""
        if not self._pending and not self._removed:
            return
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
        present = self._ids[positions] == wanted
        words = self._words[positions]
        words[~present] = 0
        return present, words, self._quality[positions], self._flagged[positions] & present

    def _positions_of(self, wanted: Ids) -> Ids:
        """Row of each id (any row where absent: the caller compares). Ids of a SQLite index are
        dense, so a direct table serves them; sparse ids fall back to a binary search."""
        top = int(self._ids[-1])
        if self._position is None and 0 <= top < 4 * len(self._ids) + 1024:
            position = np.zeros(top + 1, dtype=np.int32)
            position[self._ids] = np.arange(len(self._ids), dtype=np.int32)
            self._position = position
        if self._position is not None:
            inside = (wanted >= 0) & (wanted <= top)
            found: Ids = np.where(inside, self._position[np.clip(wanted, 0, top)], 0).astype(np.int64)
            return found
        return np.minimum(np.searchsorted(self._ids, wanted), len(self._ids) - 1).astype(np.int64)

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
            path.stem: np.load(path, mmap_mode="r", allow_pickle=False) for path in folder.glob("*.npy")
        }
    except (OSError, ValueError):
        return None
    return arrays, meta
