"""The SQLite index's candidate structures: word stores per algorithm and key tables per candidate
family, kept in memory and brought up to date from the catalog like the search stores.

Every write stamps its hash rows with a generation and leaves tombstones for removed entries, so a
structure loaded at generation g catches up by reading only rows stamped after g. Key tables hold
each entry once per distinct hash of its family (a picture without borders has one trimmed and
untrimmed hash), flagged hashes in tables of their own that only `include_flagged` searches read.
Snapshots (`<index>.search/words-*`, `keys-*`) open memory-mapped.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lookalike.candidates.keys import KeyLayout
from lookalike.candidates.plan import family_of
from lookalike.candidates.tables import KeyTables, WordStore
from lookalike.index import sqlite_hash_tables as hash_tables
from lookalike.local.keypoint_tables import KeypointTables
from lookalike.sorted_arrays import sorted_unique

Ids = npt.NDArray[np.int64]
SQL_CHUNK = 500


@dataclass
class _Loaded:
    value: Any
    rev: int
    changes: int = 0
    from_snapshot: bool = False


@dataclass
class _Keys:
    plain: KeyTables
    flagged: KeyTables


class CandidateCache:
    """Word stores and key tables of one SQLite index (the caller holds the connection's lock)."""

    def __init__(self, folder: Path | None, uuid: str) -> None:
        self.folder = folder  # where snapshots go (None: never)
        self.uuid = uuid
        self._words: dict[str, _Loaded] = {}
        self._keys: dict[str, _Loaded] = {}
        self._local: _Loaded | None = None

    # ----- word stores -----------------------------------------------------------------------------
    def words(self, db: sqlite3.Connection, algorithm: str, nbits: int, generation: int) -> WordStore:
        loaded = self._words.get(algorithm)
        if loaded is None:
            loaded = self._read_words_snapshot(algorithm, nbits, generation) or _Loaded(WordStore(nbits), 0)
            self._words[algorithm] = loaded
        if loaded.rev != generation:
            store: WordStore = loaded.value
            if loaded.rev > 0:
                gone = _tombstones(db, loaded.rev)
                store.remove(gone)
                loaded.changes += len(gone)
            ids, words, quality, flagged = _hash_rows(db, [algorithm], nbits, loaded.rev)
            store.upsert(ids, words, quality, flagged)
            loaded.changes += len(ids)
            loaded.rev = generation
        value: WordStore = loaded.value
        return value

    # ----- key tables ------------------------------------------------------------------------------
    def keys(
        self,
        db: sqlite3.Connection,
        family: str,
        layout: KeyLayout,
        members: Sequence[str],
        generation: int,
        include_flagged: bool,
    ) -> list[KeyTables]:
        loaded = self._keys.get(family)
        if loaded is None or loaded.value.plain.layout != layout:  # another layout: built anew
            loaded = self._read_keys_snapshot(family, layout, generation) or _Loaded(
                _Keys(KeyTables(layout), KeyTables(layout)), 0
            )
            self._keys[family] = loaded
        if loaded.rev != generation:
            tables: _Keys = loaded.value
            if loaded.rev == 0:
                ids, words, _, flagged = _hash_rows(db, members, layout.nbits, 0)
            else:
                changed = sorted_unique(
                    np.concatenate([_tombstones(db, loaded.rev), _changed_ids(db, members, loaded.rev)])
                )
                tables.plain.remove(changed)
                tables.flagged.remove(changed)
                ids, words, _, flagged = _hash_rows_of(db, members, layout.nbits, changed)
            for target, rows in ((tables.plain, ~flagged), (tables.flagged, flagged)):
                unique_ids, unique_words = _distinct(ids[rows], words[rows])
                target.add(unique_ids, unique_words)
            loaded.changes += len(ids)
            loaded.rev = generation
        chosen: _Keys = loaded.value
        return [chosen.plain, chosen.flagged] if include_flagged else [chosen.plain]

    # ----- local features: descriptor keys ---------------------------------------------------------
    def local_keys(self, db: sqlite3.Connection, generation: int) -> KeypointTables:
        """Key tables over every stored keypoint's descriptor, with their signatures
        (lookalike.local.keypoint_tables)."""
        loaded = self._local
        if loaded is None:
            loaded = self._read_local_snapshot(generation) or _Loaded(KeypointTables(), 0)
            self._local = loaded
        if loaded.rev != generation:
            tables: KeypointTables = loaded.value
            if loaded.rev == 0:
                rows = db.execute("SELECT entry_id, data FROM local_features").fetchall()
            else:
                changed = sorted_unique(
                    np.concatenate([_tombstones(db, loaded.rev), _changed_local(db, loaded.rev)])
                )
                tables.remove(changed)
                rows = _local_rows_of(db, changed)
            ids, words = _descriptor_rows(rows)
            tables.add(ids, words)
            loaded.changes += len(rows)
            loaded.rev = generation
        chosen: KeypointTables = loaded.value
        return chosen

    # ----- snapshots -------------------------------------------------------------------------------
    def persist(self, min_changes: int) -> None:
        """Snapshot every structure built or changed much since its last snapshot."""
        if self.folder is None:
            return
        for name, loaded in self._words.items():
            if self._worth_saving(loaded, min_changes):
                store: WordStore = loaded.value

                def save_words(folder: Path, store: WordStore = store, loaded: _Loaded = loaded) -> None:
                    store.save(folder, self._meta(loaded))

                self._save(loaded, save_words, f"words-{name}")
        for name, loaded in self._keys.items():
            if self._worth_saving(loaded, min_changes):
                tables: _Keys = loaded.value

                def save(folder: Path, tables: _Keys = tables, loaded: _Loaded = loaded) -> None:
                    tables.plain.save(folder / "plain", self._meta(loaded))
                    tables.flagged.save(folder / "flagged", self._meta(loaded))

                self._save(loaded, save, f"keys-{name}")
        local = self._local
        if local is not None and self._worth_saving(local, min_changes):
            keypoints: KeypointTables = local.value

            def save_local(folder: Path, tables: KeypointTables = keypoints, loaded: _Loaded = local) -> None:
                tables.save(folder, self._meta(loaded))

            self._save(local, save_local, LOCAL_FAMILY)
            for retired in RETIRED_SNAPSHOTS:
                shutil.rmtree(self.folder / retired, ignore_errors=True)

    def nbytes(self) -> int:
        total = sum(int(loaded.value.nbytes()) for loaded in self._words.values())
        for loaded in self._keys.values():
            tables: _Keys = loaded.value
            total += tables.plain.nbytes() + tables.flagged.nbytes()
        if self._local is not None:
            total += self._local.value.nbytes()
        return total

    @staticmethod
    def _worth_saving(loaded: _Loaded, min_changes: int) -> bool:
        return loaded.rev > 0 and not (loaded.from_snapshot and loaded.changes < min_changes)

    def _meta(self, loaded: _Loaded) -> dict[str, Any]:
        return {"uuid": self.uuid, "rev": loaded.rev}

    def _save(self, loaded: _Loaded, save: Any, name: str) -> None:
        assert self.folder is not None
        try:
            self.folder.mkdir(exist_ok=True)
            save(self.folder / _safe(name))
        except OSError:
            return  # a read-only location: the next open rebuilds from the catalog
        loaded.from_snapshot, loaded.changes = True, 0

    def _usable(self, meta: dict[str, Any], generation: int) -> int | None:
        rev = meta.get("rev")
        if meta.get("uuid") != self.uuid or not isinstance(rev, int) or not 0 < rev <= generation:
            return None
        return rev

    def _read_words_snapshot(self, algorithm: str, nbits: int, generation: int) -> _Loaded | None:
        if self.folder is None:
            return None
        found = WordStore.load(self.folder / _safe(f"words-{algorithm}"), nbits)
        rev = None if found is None else self._usable(found[1], generation)
        return None if found is None or rev is None else _Loaded(found[0], rev, 0, True)

    def _read_local_snapshot(self, generation: int) -> _Loaded | None:
        if self.folder is None:
            return None
        found = KeypointTables.load(self.folder / LOCAL_FAMILY)
        rev = None if found is None else self._usable(found[1], generation)
        return None if found is None or rev is None else _Loaded(found[0], rev, 0, True)

    def _read_keys_snapshot(self, family: str, layout: KeyLayout, generation: int) -> _Loaded | None:
        if self.folder is None:
            return None
        folder = self.folder / _safe(f"keys-{family}")
        plain, flagged = KeyTables.load(folder / "plain", layout), KeyTables.load(folder / "flagged", layout)
        if plain is None or flagged is None or plain[1].get("rev") != flagged[1].get("rev"):
            return None
        rev = self._usable(plain[1], generation)
        if rev is None:
            return None
        upgraded = bool(plain[1].get("upgraded") or flagged[1].get("upgraded"))  # written anew on persist
        return _Loaded(_Keys(plain[0], flagged[0]), rev, 0, not upgraded)


LOCAL_FAMILY = "keypoints"  # the snapshot of local features' key tables and signatures
RETIRED_SNAPSHOTS = ("keys-local-descriptors",)  # keypoint keys without signatures, never read again


def _changed_local(db: sqlite3.Connection, after: int) -> Ids:
    rows = db.execute("SELECT entry_id FROM local_features WHERE rev > ?", (after,)).fetchall()
    return np.array([row[0] for row in rows], dtype=np.int64)


def _local_rows_of(db: sqlite3.Connection, ids: Ids) -> list[tuple[int, bytes]]:
    listed = ids.tolist()
    rows: list[tuple[int, bytes]] = []
    for start in range(0, len(listed), SQL_CHUNK):
        chunk = listed[start : start + SQL_CHUNK]
        marks = ",".join("?" * len(chunk))
        rows.extend(
            db.execute(f"SELECT entry_id, data FROM local_features WHERE entry_id IN ({marks})", chunk)
        )
    return rows


def _descriptor_rows(rows: Sequence[tuple[int, bytes]]) -> tuple[Ids, npt.NDArray[np.uint64]]:
    """(entry id per keypoint, descriptor words) of stored local features."""
    from lookalike.local.features import LocalFeatures
    from lookalike.local.retrieval import descriptor_words

    ids: list[Ids] = []
    words: list[npt.NDArray[np.uint64]] = []
    for entry_id, data in rows:
        features = LocalFeatures.from_bytes(data)
        if len(features):
            ids.append(np.full(len(features), entry_id, dtype=np.int64))
            words.append(descriptor_words(features))
    if not ids:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 4), dtype=np.uint64)
    return np.concatenate(ids), np.concatenate(words)


def family_members(algorithms: Iterable[str], family: str) -> list[str]:
    """The stored algorithms whose hashes live in `family`'s key tables."""
    members = []
    for algorithm in algorithms:
        found = family_of(algorithm)
        if found is not None and found[0] == family:
            members.append(algorithm)
    return members


def _safe(name: str) -> str:
    return name.replace(":", "-").replace("/", "_")


def _tombstones(db: sqlite3.Connection, after: int) -> Ids:
    rows = db.execute("SELECT entry_id FROM tombstones WHERE rev > ?", (after,)).fetchall()
    return np.array([row[0] for row in rows], dtype=np.int64)


def changed_entries(db: sqlite3.Connection, after: int) -> Ids:
    """Every entry written or removed after generation `after`: any hash or variants row of it
    stamped later, or a tombstone (sorted, each once)."""
    algorithms = list(hash_tables.hash_tables(db))
    variants = db.execute("SELECT entry_id FROM variants WHERE rev > ?", (after,)).fetchall()
    return sorted_unique(
        np.concatenate(
            [
                _tombstones(db, after),
                _changed_ids(db, algorithms, after),
                np.array([row[0] for row in variants], dtype=np.int64),
            ]
        )
    )


def _changed_ids(db: sqlite3.Connection, algorithms: Sequence[str], after: int) -> Ids:
    found: list[int] = []
    tables = hash_tables.hash_tables(db)
    for algorithm in algorithms:
        if algorithm in tables:
            found.extend(row[0] for row in hash_tables.rows_since(db, tables[algorithm], "entry_id", after))
    return np.array(found, dtype=np.int64)


_READ_COLUMNS = "entry_id, value, words, quality, flagged"
HashColumns = tuple[Ids, npt.NDArray[np.uint64], npt.NDArray[np.float32], npt.NDArray[np.bool_]]


def _hash_rows(db: sqlite3.Connection, algorithms: Sequence[str], nbits: int, after: int) -> HashColumns:
    """Every hash row of `algorithms` stamped after generation `after`."""
    tables = hash_tables.hash_tables(db)
    parts = [
        _columns(hash_tables.rows_since(db, tables[algorithm], _READ_COLUMNS, after), nbits)
        for algorithm in algorithms
        if algorithm in tables
    ]
    return _concat(parts, nbits)


def _hash_rows_of(db: sqlite3.Connection, algorithms: Sequence[str], nbits: int, ids: Ids) -> HashColumns:
    """Every hash row of `algorithms` for the given entries."""
    parts = []
    listed = ids.tolist()
    tables = hash_tables.hash_tables(db)
    for algorithm in (a for a in algorithms if a in tables):
        for start in range(0, len(listed), SQL_CHUNK):
            chunk = listed[start : start + SQL_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = db.execute(
                f"SELECT {_READ_COLUMNS} FROM {tables[algorithm]} WHERE entry_id IN ({marks})", chunk
            )
            parts.append(_columns(rows, nbits))
    return _concat(parts, nbits)


def _columns(rows: Iterator[tuple[Any, ...]], nbits: int) -> HashColumns:
    listed = list(rows)
    word_count = (nbits + 63) // 64
    ids = np.array([row[0] for row in listed], dtype=np.int64)
    if word_count == 1:
        values = np.array([row[1] or 0 for row in listed], dtype=np.int64).view(np.uint64).reshape(-1, 1)
    else:
        packed = b"".join(row[2] or bytes(8 * word_count) for row in listed)
        values = np.frombuffer(packed, dtype=">u8").astype(np.uint64).reshape(len(listed), word_count)
    quality = np.array([np.nan if row[3] is None else row[3] for row in listed], dtype=np.float32)
    flagged = np.array([bool(row[4]) for row in listed], dtype=bool)
    return ids, values, quality, flagged


def _concat(parts: list[HashColumns], nbits: int) -> HashColumns:
    word_count = (nbits + 63) // 64
    if not parts:
        return (
            np.zeros(0, dtype=np.int64),
            np.zeros((0, word_count), dtype=np.uint64),
            np.zeros(0, dtype=np.float32),
            np.zeros(0, dtype=bool),
        )
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
        np.concatenate([p[3] for p in parts]),
    )


def _distinct(ids: Ids, words: npt.NDArray[np.uint64]) -> tuple[Ids, npt.NDArray[np.uint64]]:
    """Rows with a repeated (id, hash) dropped."""
    if len(ids) == 0:
        return ids, words
    table = np.concatenate([ids[:, None].view(np.uint64), words], axis=1)
    unique = np.unique(table, axis=0)
    return unique[:, 0].view(np.int64), np.ascontiguousarray(unique[:, 1:])
