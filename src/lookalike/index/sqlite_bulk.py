"""Whole-array writes of `SQLiteIndex.add_words`: each one statement over a JSON array.

`executemany` binds every value of every row from Python (about 4 us a hash row, most of a bulk
add). Here a batch is one `INSERT ... SELECT` over `json_each` of one JSON array: each row's
entry id, quality and flag packed into one integer, the hash words sliced out of one packed
BLOB with `substr`, so SQLite builds the rows in C and stores exactly what `executemany` did.
Values that do not pack (a quality outside 0..2**20, a key holding NUL) take `executemany`.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from lookalike.index import sqlite_hash_tables as hash_tables

# a hash row as one integer: entry id << 22 | has quality << 21 | quality << 1 | flagged
_QUALITY_BITS = 20
_ID_SHIFT = _QUALITY_BITS + 2
_MAX_ID = 1 << (63 - _ID_SHIFT)
_QUALITY_SQL = f"CASE WHEN c & {1 << (_QUALITY_BITS + 1)} THEN (c >> 1) & {(1 << _QUALITY_BITS) - 1} END"


def _keys_json(keys: Sequence[str]) -> str | None:
    """Keys as a JSON array for `json_each`, or None if one holds NUL (JSON's \\u0000, which
    SQLite's JSON functions do not return as stored)."""
    text = json.dumps(list(keys), ensure_ascii=False)
    return None if "\\u0000" in text else text


def ids_of_keys(
    db: sqlite3.Connection, keys: list[str]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Entry id of each key (-1 if not stored) and whether its entry records an origin. Keys
    none of which can be stored (no stored key sorts between their least and greatest: a bulk
    load of new names) cost one index probe; others one join against the key index."""
    ids = np.full(len(keys), -1, dtype=np.int64)
    had_origin = np.zeros(len(keys), dtype=bool)
    if not keys:
        return ids, had_origin
    probe = "SELECT EXISTS (SELECT 1 FROM entries WHERE key BETWEEN ? AND ?)"
    if not db.execute(probe, (min(keys), max(keys))).fetchone()[0]:
        return ids, had_origin
    # one string of "position,id" pairs: parsed in C, not 100,000 row tuples
    pairs, origins = db.execute(
        "SELECT group_concat(j.key || ',' || e.id), total(e.origin IS NOT NULL) FROM json_each(?) AS j"
        " CROSS JOIN entries AS e ON e.key = j.value",
        (json.dumps(keys),),
    ).fetchone()
    found = np.fromstring(pairs or "", dtype=np.int64, sep=",").reshape(-1, 2)
    ids[found[:, 0]] = found[:, 1]
    if origins:
        known = db.execute(
            "SELECT j.key FROM json_each(?) AS j CROSS JOIN entries AS e ON e.key = j.value"
            " WHERE e.origin IS NOT NULL",
            (json.dumps(keys),),
        )
        had_origin[[row[0] for row in known]] = True
    return ids, had_origin


class RecentKeyIds:
    """The entry ids of the keys that recent `add_words` transactions wrote, trusted while the
    index's generation is the one they left (no write since, from any process; every write
    bumps it): a bulk load's next hash for the same keys then skips the key lookup. After such
    a transaction every one of its keys is stored and records no origin."""

    def __init__(self, limit: int = 1_000_000) -> None:
        self.limit = limit  # keys held at most (the oldest batches go first)
        self._generation: int | None = None
        self._batches: dict[tuple[str, str, int], tuple[list[str], npt.NDArray[np.int64]]] = {}

    def lookup(
        self, db: sqlite3.Connection, keys: list[str], generation: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """`ids_of_keys` for a batch, from memory when the same keys were written last at
        `generation` (the index's generation now, read inside the transaction)."""
        if generation != self._generation:
            self._batches.clear()
        held = self._batches.get((keys[0], keys[-1], len(keys))) if keys else None
        if held is not None and held[0] == keys:
            return held[1].copy(), np.zeros(len(keys), dtype=bool)
        return ids_of_keys(db, keys)

    def remember(self, keys: list[str], ids: npt.NDArray[np.int64], generation: int) -> None:
        """After a committed transaction that left the index at `generation`: `keys` are stored
        under `ids`, and batches remembered before are still true (it only added entries and
        cleared origins)."""
        self._generation = generation
        if not keys or len(keys) > self.limit:
            return
        self._batches[(keys[0], keys[-1], len(keys))] = (keys, ids.copy())
        while sum(len(held[0]) for held in self._batches.values()) > self.limit:
            del self._batches[next(iter(self._batches))]


def insert_entries(db: sqlite3.Connection, first_id: int, keys: Sequence[str], added_at: float) -> None:
    """New entries `first_id`, `first_id + 1`, ... for `keys` (not stored), facts left empty."""
    text = _keys_json(keys)
    if text is None:
        db.executemany(
            "INSERT INTO entries (id, key, added_at) VALUES (?, ?, ?)",
            zip(itertools.count(first_id), keys, itertools.repeat(added_at)),
        )
        return
    db.execute(
        "INSERT INTO entries (id, key, added_at) SELECT ? + j.key, j.value, ? FROM json_each(?) AS j",
        (first_id, added_at, text),
    )


def insert_hash_rows(
    db: sqlite3.Connection,
    table: str,
    ids: npt.NDArray[np.int64],
    words: npt.NDArray[np.uint64],
    nbits: int,
    quality: npt.NDArray[np.float64] | None,
    flags: npt.NDArray[np.bool_],
    generation: int,
) -> None:
    """Write (or replace) one algorithm's hash rows into its `table`: hashes of <= 64 bits as the
    signed integer `value`, longer ones as the BLOB `words` of big-endian words; quality NaN is
    NULL. Rows of entries above every id the table has held are appended and their id range
    logged (`sqlite_hash_tables`); the others are indexed by generation."""
    if not len(ids):
        return
    floor = hash_tables.append_floor(db, table)
    appended = ids > floor
    if appended.any():
        hash_tables.log_append(db, table, generation, int(ids[appended].min()), int(ids[appended].max()))
    codes = _row_codes(ids, quality, flags)
    columns = f"INSERT OR REPLACE INTO {table} ({hash_tables.HASH_COLUMNS}, appended)"
    if codes is None:
        values, blobs, scores = _bound_columns(words, nbits, quality)
        db.executemany(
            f"{columns} VALUES (?, ?, ?, ?, ?, ?, ?)",
            zip(
                ids.tolist(),
                values,
                blobs,
                scores,
                flags.astype(int).tolist(),
                itertools.repeat(generation),
                appended.astype(int).tolist(),
            ),
        )
    elif nbits > 64:
        size = words.shape[1] * 8
        db.execute(
            f"{columns} SELECT c >> {_ID_SHIFT}, NULL, substr(?, i * {size} + 1, {size}), {_QUALITY_SQL},"
            f" c & 1, ?, (c >> {_ID_SHIFT}) > ?"
            " FROM (SELECT j.key AS i, j.value AS c FROM json_each(?) AS j)",
            (words.astype(">u8").tobytes(), generation, floor, json.dumps(codes.tolist())),
        )
    else:
        pairs = np.stack([codes, words[:, 0].view(np.int64)], axis=1)
        db.execute(
            f"{columns} SELECT c >> {_ID_SHIFT}, v, NULL, {_QUALITY_SQL}, c & 1, ?, (c >> {_ID_SHIFT}) > ?"
            " FROM (SELECT json_extract(j.value, '$[0]') AS c, json_extract(j.value, '$[1]') AS v"
            " FROM json_each(?) AS j)",
            (generation, floor, json.dumps(pairs.tolist())),
        )


def _row_codes(
    ids: npt.NDArray[np.int64], quality: npt.NDArray[np.float64] | None, flags: npt.NDArray[np.bool_]
) -> npt.NDArray[np.int64] | None:
    """Each row's id, quality and flag as one integer, or None when some value does not fit."""
    codes = ids.astype(np.int64) << _ID_SHIFT | flags.astype(np.int64)
    if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= _MAX_ID):
        return None
    if quality is not None:
        given = ~np.isnan(quality)
        scores = quality[given]
        if len(scores) and (scores.min() < 0 or scores.max() >= 1 << _QUALITY_BITS):
            return None
        codes[given] |= 1 << (_QUALITY_BITS + 1) | scores.astype(np.int64) << 1
    return codes


def _bound_columns(
    words: npt.NDArray[np.uint64], nbits: int, quality: npt.NDArray[np.float64] | None
) -> tuple[list[Any], list[Any], list[Any]]:
    """The `value`, `words` and `quality` columns as Python values, to bind row by row."""
    count = len(words)
    if nbits <= 64:
        values: list[Any] = words[:, 0].view(np.int64).tolist()
        blobs: list[Any] = [None] * count
    else:
        packed = words.astype(">u8").tobytes()
        size = words.shape[1] * 8
        values, blobs = [None] * count, [packed[i * size : (i + 1) * size] for i in range(count)]
    scores = (
        [None] * count if quality is None else [None if np.isnan(s) else int(s) for s in quality.tolist()]
    )
    return values, blobs, scores
