"""The embedded default index: a SQLite catalog with hashes searched in memory.

The catalog (one file, WAL mode: readers keep reading while one writer adds) holds one row per
image and, in a table per algorithm (`sqlite_hash_tables`), one row per hash of it. Hashes of up
to 64 bits are one signed INTEGER (`Hash.to_int64()`), so they stay readable and comparable in
SQL; longer ones are a BLOB of big-endian uint64 words (`Hash.words()`), which loads into NumPy
with one `frombuffer` and fits any length (PDQ's 256 bits, `phash:16`, `phash:32`) without
schema changes.

Searches run on an in-memory `HashStore` per algorithm, built lazily on first use, kept up to date
by reading only what changed since (every write bumps a generation counter and stamps its rows
with it, bulk appends log their id range; removals leave tombstones), and snapshotted next to the database
(`index.db.search/<algorithm>.npz`) so a large index opens in well under a second.

>>> index = SQLiteIndex.open("sqlite:///photos.db")
>>> index.add_files(["a.jpg", "b.jpg"], hashes=["phash", "colorhash"])
>>> index.range_search(lookalike.hash_file("c.jpg", ["phash"])["phash"], "phash", 8)
[Match(distance=2, key='/home/me/a.jpg')]
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np
import numpy.typing as npt

from lookalike.candidates.batch import REGION_ALGORITHM, region_boxes, regions_of_rows, variant_blobs
from lookalike.errors import IndexStoreError, InvalidHashError
from lookalike.hash import Hash
from lookalike.index import sqlite_hash_tables as hash_tables
from lookalike.index.base import (
    FROM_FILE,
    AddReport,
    Entry,
    FileState,
    Index,
    IndexItem,
    Match,
    Pairs,
    Query,
    checked_item,
    checked_keys,
    hash_revisions,
)
from lookalike.index.flags import flagged_words, is_flagged
from lookalike.index.queries import (
    as_query_list,
    build_matches,
    canonical_algorithm,
    check_lengths,
    expand_dihedral,
    new_algorithm_widths,
)
from lookalike.index.sqlite_bulk import RecentKeyIds, insert_entries, insert_hash_rows
from lookalike.index.sqlite_candidates import CandidateCache, changed_entries, family_members
from lookalike.search.bits import words_of
from lookalike.search.store import HashStore

if TYPE_CHECKING:
    from lookalike.candidates.judge import StoredHashes
    from lookalike.candidates.keys import KeyLayout
    from lookalike.local.features import LocalFeatures
    from lookalike.regions import RelativeBox

# 2: entries.origin (where the key came from; NULL in older indexes)
# 3: variants (each hash's query variants, so a duplicate search needs neither files nor a cache)
#    and local_features (compact keypoints, for geometric verification)
# 4: variants.rev (the generation that wrote a variants row, so stored variants catch up by it)
#    and variants.boxes (where each region variant's picture lies, so a reverse match says where)
# 5: a hash table per algorithm (`sqlite_hash_tables`; `hashes` is now a view over them)
SCHEMA_VERSION = 5
WRITE_BATCH = 5000
BULK_WRITE_BATCH = 20_000  # keys per transaction of add_words
BULK_CHECKPOINT_KEYS = 100_000  # keys add_words writes between two copies of the WAL into the database
SQL_CHUNK = 500  # values per IN (...) list
SNAPSHOT_MIN_CHANGES = 20_000  # rows synced since the last snapshot before close() writes a new one


_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    sha256 TEXT,
    byte_size INTEGER,
    width INTEGER,
    height INTEGER,
    mtime REAL,
    added_at REAL NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    origin TEXT
);
CREATE INDEX IF NOT EXISTS entries_by_sha256 ON entries(sha256) WHERE sha256 IS NOT NULL;
-- each algorithm's hashes are in its table hashes_<n> (sqlite_hash_tables): entry_id, value
-- (hashes of <= 64 bits: the signed int64 of the bits), words (longer hashes: big-endian
-- uint64 words), quality, flagged, rev (the generation that wrote the row), appended
CREATE TABLE IF NOT EXISTS algorithms (name TEXT PRIMARY KEY, nbits INTEGER NOT NULL, hash_table TEXT);
CREATE TABLE IF NOT EXISTS variants (
    entry_id INTEGER NOT NULL,
    algorithm TEXT NOT NULL,
    words BLOB,                 -- the hash's variants after the first (itself): big-endian words
    same_as TEXT,               -- or: the same variants as this algorithm's (a twin hash)
    rev INTEGER NOT NULL DEFAULT 0, -- the generation that wrote this row (0: before schema 4)
    boxes BLOB,                 -- phash_eq_regions: each variant's picture, 4 float32 (region_boxes)
    PRIMARY KEY (entry_id, algorithm)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS local_features (
    entry_id INTEGER PRIMARY KEY,
    data BLOB NOT NULL,         -- lookalike.local.features.LocalFeatures.to_bytes (compact)
    mirrored BLOB,              -- the same for the image flipped left to right
    rev INTEGER NOT NULL        -- the generation that wrote it
);
CREATE INDEX IF NOT EXISTS local_features_by_rev ON local_features(rev);
CREATE TABLE IF NOT EXISTS tombstones (entry_id INTEGER NOT NULL, rev INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS tombstones_by_rev ON tombstones(rev);
"""
    + hash_tables.SCHEMA
)

_ENTRY_COLUMNS = "id, key, sha256, byte_size, width, height, mtime, added_at, metadata, origin"


Method = TypeVar("Method", bound=Callable[..., Any])


def _serialised(method: Method) -> Method:
    """One thread at a time on the connection (a server may share one index between threads)."""

    @functools.wraps(method)
    def locked(self: SQLiteIndex, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return cast(Method, locked)


def sqlite_path(url: str | os.PathLike[str] | None) -> str:
    """The file path of a `sqlite:///relative.db` / `sqlite:////absolute.db` URL or a bare path."""
    text = "lookalike.db" if url is None else os.fspath(url)
    if text.startswith("sqlite://"):
        text = text[len("sqlite://") :]
        text = text[1:] if text.startswith("/") else text
    return text or "lookalike.db"


@dataclass
class _LoadedStore:
    store: HashStore
    rev: int
    changes_since_snapshot: int = 0
    from_snapshot: bool = False


@dataclass
class _Existing:
    id: int
    sha256: str | None
    facts: tuple[Any, ...]  # byte_size, width, height, mtime, metadata json
    origin: str | None


@dataclass
class _Writes:
    new_entries: list[tuple[Any, ...]] = field(default_factory=list)
    fact_updates: list[tuple[Any, ...]] = field(default_factory=list)
    hash_rows: list[tuple[Any, ...]] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)  # entries removed whole
    rehashed: list[int] = field(default_factory=list)  # entries whose hashes are all replaced
    variant_rows: list[tuple[Any, ...]] = field(default_factory=list)
    local_rows: list[tuple[Any, ...]] = field(default_factory=list)


class SQLiteIndex(Index):
    """The SQLite-backed `Index` (see the module docstring)."""

    def __init__(self, path: str, *, timeout: float = 30.0, snapshots: bool = True) -> None:
        self.path = path
        self._count_cache: tuple[int, int] | None = None
        self.url = f"sqlite:///{path}"
        self._lock = threading.RLock()
        self._snapshots = snapshots and path != ":memory:"
        folder = os.path.dirname(path)
        if path != ":memory:" and folder and not os.path.isdir(folder):
            relative = " (sqlite:///x.db is relative; sqlite:////abs/x.db is absolute)"
            hint = "" if os.path.isabs(path) else relative
            raise IndexStoreError(f"{path}: cannot create an index there: no folder {folder}{hint}")
        try:
            self._db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._init_schema()
        except sqlite3.DatabaseError as exc:
            raise IndexStoreError(f"{path}: cannot open as a lookalike index: {exc}") from exc
        self._nbits: dict[str, int] = {}
        self._tables: dict[str, str] = {}  # algorithm -> its hash table
        self._stores: dict[str, _LoadedStore] = {}
        self._uuid = str(self._meta("uuid"))
        snapshot_folder = Path(f"{self.path}.search") if self._snapshots else None
        self._candidates = CandidateCache(snapshot_folder, self._uuid)
        self._recent_ids = RecentKeyIds()

    @classmethod
    def open(cls, url: str | os.PathLike[str] | None = None, **options: Any) -> SQLiteIndex:
        """Open or create the index at `sqlite:///path` (or a bare path; default `./lookalike.db`)."""
        return cls(sqlite_path(url), **options)

    # ----- schema and transactions -----------------------------------------------------------------
    def _init_schema(self) -> None:
        with self._transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            version = self._meta("schema_version")
            if version is None:
                self._db.executemany(
                    "INSERT INTO meta (name, value) VALUES (?, ?)",
                    [("schema_version", SCHEMA_VERSION), ("uuid", uuid.uuid4().hex), ("generation", 0)],
                )
                hash_tables.rebuild_view(self._db)
            elif int(version) > SCHEMA_VERSION:
                raise IndexStoreError(
                    f"{self.path}: schema version {version} is newer than this lookalike ({SCHEMA_VERSION})"
                )
            elif int(version) < SCHEMA_VERSION:
                self._migrate()
            self._db.execute("CREATE INDEX IF NOT EXISTS variants_by_rev ON variants(rev)")
            for name in _searched_variant_algorithms():
                # only the entries that store such variants (a scan of every hash's variants,
                # crops' included, would read about 1 KB an image)
                self._db.execute(
                    f"CREATE INDEX IF NOT EXISTS variants_of_{name} ON variants(entry_id)"
                    f" WHERE algorithm = '{name}'"
                )

    def _migrate(self) -> None:
        """Bring an older index up to date: entries gain `origin`, NULL (unknown) for those stored
        before, so none of them may be acted on until `index add` hashes it again; the variants
        table starts empty (the next `index add` stores them, through the hash cache); variants
        stored before gain `rev` 0 (written before any structure in memory was made), the
        variants and local features of entries removed before are dropped, and the hashes move
        into a table per algorithm (schema 5)."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(entries)")}
        if "origin" not in columns:
            self._db.execute("ALTER TABLE entries ADD COLUMN origin TEXT")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(variants)")}
        if "rev" not in columns:
            self._db.execute("ALTER TABLE variants ADD COLUMN rev INTEGER NOT NULL DEFAULT 0")
        if "boxes" not in columns:
            self._db.execute("ALTER TABLE variants ADD COLUMN boxes BLOB")
        for table in ("variants", "local_features"):  # `remove` before schema 4 left them behind
            self._db.execute(f"DELETE FROM {table} WHERE entry_id NOT IN (SELECT id FROM entries)")
        hash_tables.migrate_single_table(self._db)
        self._db.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (SCHEMA_VERSION,))

    def _meta(self, name: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    @contextmanager
    def _transaction(self, write: bool = True) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _bump_generation(self) -> int:
        generation = int(self._meta("generation")) + 1
        self._db.execute("UPDATE meta SET value = ? WHERE name = 'generation'", (generation,))
        return generation

    @_serialised
    def generation(self) -> int:
        """Increases with every committed change (other processes' too)."""
        return int(self._meta("generation"))

    def disk_bytes(self) -> int:
        """The database, its WAL and the search snapshots."""
        base = Path(self.path)
        files = [base, base.with_name(base.name + "-wal"), base.with_name(base.name + "-shm")]
        files += list(Path(f"{self.path}.search").glob("*.npz"))
        return sum(f.stat().st_size for f in files if f.exists())

    @_serialised
    def algorithm_bits(self) -> dict[str, int]:
        """Every stored algorithm and its hash length in bits."""
        return {name: int(nbits) for name, nbits in self._db.execute("SELECT name, nbits FROM algorithms")}

    def _algorithm_nbits(self, algorithm: str) -> int | None:
        if algorithm not in self._nbits:
            for name, nbits, table in self._db.execute("SELECT name, nbits, hash_table FROM algorithms"):
                self._nbits[name] = int(nbits)
                self._tables[name] = table
        return self._nbits.get(algorithm)

    def _hash_table(self, algorithm: str) -> str | None:
        """The table of `algorithm`'s hash rows, None if none is stored."""
        self._algorithm_nbits(algorithm)
        return self._tables.get(algorithm)

    # ----- writing ---------------------------------------------------------------------------------
    @_serialised
    def add(self, items: Iterable[IndexItem | tuple[str, Mapping[str, Hash]]]) -> AddReport:
        """Store items in transactions of a few thousand: an existing key is updated, a sha256
        already stored under another key is skipped (reported in `same_bytes`), except for files
        read from disk (origin FROM_FILE): every path is its own entry, so exact copies are found.

        >>> index.add([("cat.jpg", {"phash": Hash.from_hex("c3e0f0f8c4c0e0f0")})])
        AddReport(added=1, updated=0, unchanged=0, failed=(), same_bytes=())
        """
        report = AddReport()
        iterator = iter(items)
        while batch := list(itertools.islice(iterator, WRITE_BATCH)):
            report = report.merge(self._write_batch([self._normalise_item(item) for item in batch]))
        return report

    def add_words(
        self,
        keys: Sequence[str],
        algorithm: str,
        words: npt.NDArray[np.uint64],
        nbits: int,
        quality: Sequence[int | None] | None = None,
    ) -> AddReport:
        """Add one algorithm's hashes from an (n, words) uint64 array without building `Hash`
        objects: the fast path for hash lists of millions. A new key gets an entry; a stored key
        gains the hash or has it replaced and keeps everything else, as with `add`; a repeated
        key keeps its last hash. Each batch is a few statements over whole arrays (keys and ids
        joined through `json_each`, rows inserted from one JSON array and one BLOB: see
        `sqlite_bulk`, stored hashes compared in NumPy), so adding a second algorithm to stored
        keys costs about what adding the first did."""
        rows = np.asarray(words, dtype=np.uint64).reshape(len(keys), -1)
        if rows.shape[1] != (nbits + 63) // 64:
            raise InvalidHashError(f"{nbits}-bit hashes take {(nbits + 63) // 64} words, got {rows.shape[1]}")
        if nbits % 64 and int((rows[:, 0] >> np.uint64(nbits % 64)).max(initial=0)):
            raise InvalidHashError(f"some hashes have bits set above bit {nbits}")
        listed = checked_keys(keys, self.path)
        algorithm = canonical_algorithm(algorithm)
        scores = None if quality is None else np.array(quality, dtype=float)  # None reads as NaN
        if scores is not None:  # stored as an integer: compare and flag what is stored
            scores = np.trunc(scores)
        last = {} if len(set(listed)) == len(listed) else dict(zip(listed, range(len(listed)), strict=True))
        if last:  # a repeated key: its last write wins
            keep = np.fromiter(last.values(), dtype=np.int64, count=len(last))
            listed, rows = list(last), rows[keep]
            scores = None if scores is None else scores[keep]
        report = AddReport()
        with self._checkpoints_every(BULK_CHECKPOINT_KEYS // BULK_WRITE_BATCH) as written:
            for start in range(0, len(listed), BULK_WRITE_BATCH):
                stop = min(start + BULK_WRITE_BATCH, len(listed))
                part = None if scores is None else scores[start:stop]
                report = report.merge(
                    self._write_words(listed[start:stop], algorithm, rows[start:stop], nbits, part)
                )
                written()
        return report

    @contextmanager
    def _checkpoints_every(self, transactions: int) -> Iterator[Callable[[], None]]:
        """Copy the WAL into the database after every `transactions` commits (call the yielded
        function after each) and at the end, not whenever it passes 1,000 pages: in a bulk add
        that copied and synced the same pages over and over (a fifth of its time)."""
        count = itertools.count(1)

        def written() -> None:
            if next(count) % transactions == 0:
                with self._lock:
                    self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")

        with self._lock:
            pages = int(self._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
            self._db.execute("PRAGMA wal_autocheckpoint = 0")
        try:
            yield written
        finally:
            with self._lock:
                self._db.execute(f"PRAGMA wal_autocheckpoint = {pages}")
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    @_serialised
    def _write_words(
        self,
        keys: list[str],
        algorithm: str,
        words: npt.NDArray[np.uint64],
        nbits: int,
        quality: npt.NDArray[np.float64] | None,
    ) -> AddReport:
        """One transaction of `add_words` (keys unique): insert the new keys, write the hashes
        that are absent or differ for the stored ones; nothing (not even the generation) changes
        when every hash is already stored as given."""
        with self._transaction():
            known = self._algorithm_nbits(algorithm)
            if known is not None and known != nbits:
                raise InvalidHashError(f"{algorithm} hashes in {self.path} have {known} bits, not {nbits}")
            seen = int(self._meta("generation"))
            ids, had_origin = self._recent_ids.lookup(self._db, keys, seen)
            stored = ids >= 0
            count = len(keys) - int(stored.sum())
            write = ~stored
            if count:
                first_id = self._next_entry_id()
                ids[write] = np.arange(first_id, first_id + count)
                insert_entries(
                    self._db, first_id, list(itertools.compress(keys, write.tolist())), time.time()
                )
            replaced = np.zeros(len(keys), dtype=bool)
            if stored.any():
                present, same = self._compare_stored(
                    algorithm, nbits, ids[stored], words[stored], quality, stored
                )
                write[stored] = ~same
                replaced[stored] = present & ~same
            cleared = stored & had_origin  # a write replaces where the key came from (FROM_FILE...)
            after = seen
            if write.any() or cleared.any():
                generation = seen + 1
                scores = None if quality is None else quality[write]
                flags = flagged_words(words[write], nbits, scores, algorithm)
                if known is None:
                    self._tables[algorithm] = hash_tables.add_algorithm(self._db, algorithm, nbits)
                    self._nbits[algorithm] = nbits
                insert_hash_rows(
                    self._db,
                    self._tables[algorithm],
                    ids[write],
                    words[write],
                    nbits,
                    scores,
                    flags,
                    generation,
                )
                if replaced.any():  # a replaced hash given without variants drops its stored ones
                    self._db.execute(
                        "DELETE FROM variants WHERE algorithm = ?"
                        " AND entry_id IN (SELECT value FROM json_each(?))",
                        (algorithm, json.dumps(ids[replaced].tolist())),
                    )
                if cleared.any():
                    self._db.execute(
                        "UPDATE entries SET origin = NULL WHERE id IN (SELECT value FROM json_each(?))",
                        (json.dumps(ids[cleared].tolist()),),
                    )
                after = self._bump_generation()
        self._recent_ids.remember(keys, ids, after)
        updated = int((stored & (write | cleared)).sum())
        return AddReport(added=count, updated=updated, unchanged=int(stored.sum()) - updated)

    def _compare_stored(
        self,
        algorithm: str,
        nbits: int,
        ids: npt.NDArray[np.int64],
        words: npt.NDArray[np.uint64],
        quality: npt.NDArray[np.float64] | None,
        rows: npt.NDArray[np.bool_],
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """For stored entries `ids` given `words` (and `quality[rows]`): whether each has a hash
        of `algorithm`, and whether it is the same hash with the same quality."""
        present = np.zeros(len(ids), dtype=bool)
        same = np.zeros(len(ids), dtype=bool)
        table = self._hash_table(algorithm)
        probe = f"SELECT EXISTS (SELECT 1 FROM {table} WHERE entry_id BETWEEN ? AND ?)"
        if table is None or not self._db.execute(probe, (int(ids.min()), int(ids.max()))).fetchone()[0]:
            return present, same  # a new algorithm for these entries (a bulk load's next hash)
        found = self._db.execute(
            # CROSS JOIN keeps json_each outside: else the planner may scan every hash of the
            # algorithm once per given id
            "SELECT j.key, h.value, h.words, h.quality FROM json_each(?) AS j"
            f" CROSS JOIN {table} AS h ON h.entry_id = j.value",
            (json.dumps(ids.tolist()),),
        ).fetchall()
        if not found:
            return present, same
        positions = np.array([row[0] for row in found], dtype=np.int64)
        if nbits <= 64:
            stored_words = np.array([row[1] for row in found], dtype=np.int64).view(np.uint64).reshape(-1, 1)
        else:
            packed = b"".join(row[2] for row in found)
            stored_words = np.frombuffer(packed, dtype=">u8").astype(np.uint64).reshape(len(found), -1)
        stored_quality = np.array([np.nan if row[3] is None else row[3] for row in found], dtype=float)
        given_quality = np.full(len(ids), np.nan) if quality is None else quality[rows]
        wanted = given_quality[positions]
        equal = (stored_words == words[positions]).all(axis=1) & (
            (stored_quality == wanted) | (np.isnan(stored_quality) & np.isnan(wanted))
        )
        present[positions] = True
        same[positions] = equal
        return present, same

    def _normalise_item(self, item: IndexItem | tuple[str, Mapping[str, Hash]]) -> IndexItem:
        return checked_item(item, self.path)

    def _check_nbits(self, items: Sequence[IndexItem]) -> dict[str, int]:
        """Each algorithm keeps one bit length; returns algorithms new to this index."""
        return new_algorithm_widths(items, self._algorithm_nbits, self.path)

    @_serialised
    def _write_batch(self, items: list[IndexItem]) -> AddReport:
        by_key: dict[str, IndexItem] = {}
        for item in items:  # the last item for a key wins
            by_key.pop(item.key, None)
            by_key[item.key] = item
        now = time.time()
        with self._transaction():
            new_algorithms = self._check_nbits(list(by_key.values()))
            existing = self._existing_by_key(list(by_key))
            owners = self._owners_by_sha([i.sha256 for i in by_key.values() if i.sha256])
            stored = self._stored_hashes([e.id for e in existing.values()])
            generation = int(self._meta("generation")) + 1
            next_id = self._next_entry_id()
            writes = _Writes()
            added = updated = unchanged = 0
            same_bytes: list[tuple[str, str]] = []
            for item in by_key.values():
                current = existing.get(item.key)
                owner = owners.get(item.sha256) if item.sha256 else None
                if owner is not None and owner[1] != item.key and item.origin != FROM_FILE:
                    same_bytes.append((item.key, owner[1]))
                    if current is not None:  # this path now holds another entry's bytes
                        writes.dropped.append(current.id)
                    continue
                if current is None:
                    writes.new_entries.append(
                        (next_id, item.key, item.sha256, *_facts(item), item.origin, now)
                    )
                    writes.hash_rows.extend(_hash_rows(next_id, item.hashes, generation))
                    writes.variant_rows.extend(_variant_rows(next_id, item.hashes, item.regions))
                    writes.local_rows.extend(_local_rows(next_id, item))
                    if item.sha256:
                        owners[item.sha256] = (next_id, item.key)
                    next_id += 1
                    added += 1
                    continue
                changed = self._plan_update(item, current, stored.get(current.id, {}), generation, writes)
                updated += changed
                unchanged += not changed
            if (
                writes.new_entries
                or writes.fact_updates
                or writes.hash_rows
                or writes.dropped
                or writes.variant_rows
            ):
                self._apply(writes, new_algorithms, generation)
        return AddReport(added, updated, unchanged, (), tuple(same_bytes))

    def _plan_update(
        self,
        item: IndexItem,
        current: _Existing,
        stored: Mapping[str, tuple[Any, Any, Any]],
        generation: int,
        writes: _Writes,
    ) -> bool:
        """Queue the writes that bring an existing entry up to `item`; True if anything changes."""
        facts = _facts(item)
        merged = tuple(new if new is not None else old for new, old in zip(facts, current.facts, strict=True))
        if item.metadata is None:
            merged = (*merged[:-1], current.facts[-1])
        content_changed = (
            item.sha256 is not None and current.sha256 is not None and item.sha256 != current.sha256
        )
        if content_changed:
            writes.rehashed.append(current.id)
            writes.fact_updates.append((item.sha256, *facts, item.origin, current.id))
            writes.hash_rows.extend(_hash_rows(current.id, item.hashes, generation))
            writes.variant_rows.extend(_variant_rows(current.id, item.hashes, item.regions))
            writes.local_rows.extend(_local_rows(current.id, item))
            return True
        rows = [
            row
            for row in _hash_rows(current.id, item.hashes, generation)
            if stored.get(row[0]) != (row[2], row[3], row[4])
        ]
        sha = item.sha256 or current.sha256
        facts_changed = merged != current.facts or sha != current.sha256 or item.origin != current.origin
        if facts_changed:
            writes.fact_updates.append((sha, *merged, item.origin, current.id))
        writes.hash_rows.extend(rows)
        written = {row[0] for row in rows}
        carried = {a: v for a, v in item.hashes.items() if a in written or v.variants}
        writes.variant_rows.extend(_variant_rows(current.id, carried, item.regions))
        writes.local_rows.extend(_local_rows(current.id, item))
        return facts_changed or bool(rows)

    def _apply(self, writes: _Writes, new_algorithms: Mapping[str, int], generation: int) -> None:
        db = self._db
        for algorithm, nbits in new_algorithms.items():
            self._tables[algorithm] = hash_tables.add_algorithm(db, algorithm, nbits)
        gone = writes.dropped + writes.rehashed
        if gone:
            db.executemany(
                "INSERT INTO tombstones (entry_id, rev) VALUES (?, ?)", [(i, generation) for i in gone]
            )
            hash_tables.delete_entries(db, gone)
            db.executemany("DELETE FROM variants WHERE entry_id = ?", [(i,) for i in gone])
            db.executemany("DELETE FROM local_features WHERE entry_id = ?", [(i,) for i in gone])
            db.executemany("DELETE FROM entries WHERE id = ?", [(i,) for i in writes.dropped])
        db.executemany(
            "INSERT INTO entries (id, key, sha256, byte_size, width, height, mtime, metadata, origin,"
            " added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            writes.new_entries,
        )
        db.executemany(
            "UPDATE entries SET sha256 = ?, byte_size = ?, width = ?, height = ?, mtime = ?, metadata = ?,"
            " origin = ? WHERE id = ?",
            writes.fact_updates,
        )
        db.executemany(
            "DELETE FROM variants WHERE entry_id = ? AND algorithm = ?",
            [row[:2] for row in writes.variant_rows if row[2] is None and row[3] is None],
        )
        db.executemany(
            "INSERT OR REPLACE INTO local_features (entry_id, data, mirrored, rev) VALUES (?, ?, ?, ?)",
            [(*row, generation) for row in writes.local_rows],
        )
        db.executemany(
            "INSERT OR REPLACE INTO variants (entry_id, algorithm, words, same_as, boxes, rev)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(*row, generation) for row in writes.variant_rows if row[2] is not None or row[3] is not None],
        )
        for algorithm, rows in itertools.groupby(
            sorted(writes.hash_rows, key=lambda r: r[0]), lambda r: r[0]
        ):
            db.executemany(
                f"INSERT OR REPLACE INTO {self._hash_table(algorithm)} ({hash_tables.HASH_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [row[1:] for row in rows],
            )
        self._bump_generation()
        self._nbits.update(new_algorithms)

    def _next_entry_id(self) -> int:
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'entries'").fetchone()
        top = self._db.execute("SELECT max(id) FROM entries").fetchone()[0]
        return max(row[0] if row else 0, top or 0) + 1

    def _existing_by_key(self, keys: Sequence[str]) -> dict[str, _Existing]:
        found: dict[str, _Existing] = {}
        for chunk in _chunks(keys):
            marks = ",".join("?" * len(chunk))
            for row in self._db.execute(
                "SELECT id, key, sha256, byte_size, width, height, mtime, metadata, origin FROM entries"
                f" WHERE key IN ({marks})",
                chunk,
            ):
                found[row[1]] = _Existing(row[0], row[2], tuple(row[3:8]), row[8])
        return found

    def _owners_by_sha(self, digests: Sequence[str]) -> dict[str, tuple[int, str]]:
        found: dict[str, tuple[int, str]] = {}
        for chunk in _chunks(sorted(set(digests))):
            marks = ",".join("?" * len(chunk))
            for entry_id, key, digest in self._db.execute(
                f"SELECT id, key, sha256 FROM entries WHERE sha256 IN ({marks}) ORDER BY id", chunk
            ):
                found.setdefault(digest, (entry_id, key))
        return found

    def _stored_hashes(self, ids: Sequence[int]) -> dict[int, dict[str, tuple[Any, Any, Any]]]:
        found: dict[int, dict[str, tuple[Any, Any, Any]]] = {}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            for entry_id, algorithm, value, words, quality in self._db.execute(
                f"SELECT entry_id, algorithm, value, words, quality FROM hashes WHERE entry_id IN ({marks})",
                chunk,
            ):
                found.setdefault(entry_id, {})[algorithm] = (value, words, quality)
        return found

    @_serialised
    def remove(self, keys: Iterable[str]) -> int:
        """Delete entries by key; returns how many existed."""
        wanted = list(dict.fromkeys(keys))
        with self._transaction():
            ids = [e.id for e in self._existing_by_key(wanted).values()]
            if ids:
                generation = self._bump_generation()
                self._db.executemany(
                    "INSERT INTO tombstones (entry_id, rev) VALUES (?, ?)", [(i, generation) for i in ids]
                )
                hash_tables.delete_entries(self._db, ids)
                for table in ("variants", "local_features"):
                    self._db.executemany(f"DELETE FROM {table} WHERE entry_id = ?", [(i,) for i in ids])
                self._db.executemany("DELETE FROM entries WHERE id = ?", [(i,) for i in ids])
        return len(ids)

    # ----- reading ---------------------------------------------------------------------------------
    def get(self, key: str) -> Entry | None:
        return self.get_many([key]).get(key)

    @_serialised
    def get_many(self, keys: Iterable[str]) -> dict[str, Entry]:
        rows: list[tuple[Any, ...]] = []
        for chunk in _chunks(list(keys)):
            marks = ",".join("?" * len(chunk))
            rows.extend(
                self._db.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE key IN ({marks})", chunk)
            )
        return {entry.key: entry for entry in self._entries_from_rows(rows)}

    @_serialised
    def entries_by_id(self, ids: Iterable[int] | npt.NDArray[np.int64]) -> dict[int, Entry]:
        rows: list[tuple[Any, ...]] = []
        for chunk in _chunks([int(i) for i in ids]):
            marks = ",".join("?" * len(chunk))
            rows.extend(
                self._db.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE id IN ({marks})", chunk)
            )
        return {entry.id: entry for entry in self._entries_from_rows(rows)}

    @_serialised
    def file_states(self, keys: Sequence[str]) -> dict[str, FileState]:
        states: dict[str, FileState] = {}
        for chunk in _chunks(list(keys)):
            marks = ",".join("?" * len(chunk))
            with self._transaction(write=False):
                rows = self._db.execute(
                    "SELECT e.id, e.key, e.byte_size, e.mtime, json_extract(e.metadata, '$.mode'),"
                    " json_extract(e.metadata, '$.revisions'), e.origin,"
                    " EXISTS (SELECT 1 FROM variants v WHERE v.entry_id = e.id),"
                    " EXISTS (SELECT 1 FROM local_features f WHERE f.entry_id = e.id)"
                    f" FROM entries e WHERE e.key IN ({marks})",
                    chunk,
                ).fetchall()
                names: dict[int, set[str]] = {}
                ids = [row[0] for row in rows]
                found = self._db.execute(
                    f"SELECT entry_id, algorithm FROM hashes WHERE entry_id IN ({','.join('?' * len(ids))})",
                    ids,
                )
                for entry_id, algorithm in found:
                    names.setdefault(entry_id, set()).add(algorithm)
            for entry_id, key, byte_size, mtime, mode, revisions, origin, variants, local in rows:
                recorded = hash_revisions({"revisions": json.loads(revisions)} if revisions else None)
                hashed_in = mode if isinstance(mode, str) else None
                algorithms = frozenset(names.get(entry_id, ()))
                states[key] = FileState(
                    byte_size, mtime, algorithms, hashed_in, recorded, origin, bool(variants), bool(local)
                )
        return states

    def entries(self) -> Iterator[Entry]:
        last = 0
        while True:
            with self._lock:
                rows = self._db.execute(
                    f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE id > ? ORDER BY id LIMIT 1000", (last,)
                ).fetchall()
                page = self._entries_from_rows(rows)
            if not rows:
                return
            yield from page
            last = rows[-1][0]

    @_serialised
    def __len__(self) -> int:
        # count(*) walks the whole table (~10 ms per million rows): remember it per generation.
        with self._transaction(write=False):
            generation = int(self._meta("generation"))
            if self._count_cache is None or self._count_cache[0] != generation:
                count = int(self._db.execute("SELECT count(*) FROM entries").fetchone()[0])
                self._count_cache = (generation, count)
        return self._count_cache[1]

    def _entries_from_rows(self, rows: Sequence[tuple[Any, ...]]) -> list[Entry]:
        hashes: dict[int, dict[str, Hash]] = {}
        flagged: dict[int, set[str]] = {}
        ids = [row[0] for row in rows]
        self._algorithm_nbits("")  # refresh the bit lengths other writers may have added
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            for entry_id, algorithm, value, words, quality, flag in self._db.execute(
                "SELECT entry_id, algorithm, value, words, quality, flagged FROM hashes"
                f" WHERE entry_id IN ({marks})",
                chunk,
            ):
                nbits = self._nbits[algorithm]
                restored = (
                    Hash.from_int64(value, nbits)
                    if words is None
                    else Hash.from_words(np.frombuffer(words, dtype=">u8"), nbits)
                )
                hashes.setdefault(entry_id, {})[algorithm] = restored.with_quality(quality)
                if flag:
                    flagged.setdefault(entry_id, set()).add(algorithm)
        return [
            Entry(
                id=row[0],
                key=row[1],
                hashes=hashes.get(row[0], {}),
                sha256=row[2],
                byte_size=row[3],
                width=row[4],
                height=row[5],
                mtime=row[6],
                added_at=row[7],
                flagged=frozenset(flagged.get(row[0], ())),
                metadata=json.loads(row[8]) if row[8] else {},
                origin=row[9],
            )
            for row in rows
        ]

    def _keys_of(self, ids: Sequence[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            found.update(
                self._db.execute(f"SELECT id, key FROM entries WHERE id IN ({marks})", chunk).fetchall()
            )
        return found

    # ----- searching -------------------------------------------------------------------------------
    def range_search(  # type: ignore[override]
        self,
        queries: Query,
        algorithm: str,
        max_distance: int,
        *,
        dihedral: bool = False,
        include_flagged: bool = False,
    ) -> list[Match] | list[list[Match]]:
        """Every stored hash within `max_distance` of each query, sorted by (distance, key).

        >>> index.range_search(query, "phash", 8)              # one Hash -> list[Match]
        >>> index.range_search([q1, q2], "phash", 8)           # many -> list[list[Match]]
        >>> index.range_search(q, "phash", 8, dihedral=True)   # any rotation or flip of q
        """
        return self._search(queries, algorithm, max_distance, None, dihedral, include_flagged)

    def search(  # type: ignore[override]
        self,
        queries: Query,
        algorithm: str,
        k: int = 10,
        *,
        dihedral: bool = False,
        include_flagged: bool = False,
    ) -> list[Match] | list[list[Match]]:
        """The exact `k` nearest stored hashes for each query, sorted by (distance, key)."""
        return self._search(queries, algorithm, None, k, dihedral, include_flagged)

    @_serialised
    def _search(
        self,
        queries: Query,
        algorithm: str,
        max_distance: int | None,
        k: int | None,
        dihedral: bool,
        include_flagged: bool,
    ) -> list[Match] | list[list[Match]]:
        hashes, single = as_query_list(queries)
        expanded, owner, variant = expand_dihedral(hashes, dihedral)
        loaded = self._loaded_store(canonical_algorithm(algorithm))
        if loaded is None or not expanded:
            results: list[list[Match]] = [[] for _ in hashes]
        else:
            store = loaded.store
            check_lengths(expanded, store.nbits, algorithm)
            words = words_of(expanded, store.nbits)
            if k is not None:
                hits = store.knn(words, k, include_flagged)
            else:
                hits = store.range_search(words, int(max_distance or 0), include_flagged)
            results = build_matches(
                len(hashes),
                owner[hits.query],
                variant[hits.query],
                hits.ids,
                hits.distances,
                self._keys_of,
                k,
            )
        return results[0] if single else results

    @_serialised
    def pairs(self, algorithm: str, max_distance: int, *, include_flagged: bool = False) -> Pairs:
        """Every pair of entries within `max_distance`, found by the in-memory store's self-join."""
        loaded = self._loaded_store(canonical_algorithm(algorithm))
        if loaded is None:
            empty = np.zeros(0, dtype=np.int64)
            return Pairs(empty, empty, empty, {})
        first, second, distances = loaded.store.pairs(max_distance, include_flagged)
        entries = self.entries_by_id(np.union1d(first, second).tolist())
        return Pairs(first.astype(np.int64), second.astype(np.int64), distances.astype(np.int64), entries)

    # ----- the candidate stage (lookalike.candidates.stage.CandidateSource) ------------------------
    @_serialised
    def nominate(
        self,
        family: str,
        layout: KeyLayout,
        words: npt.NDArray[np.uint64],
        include_flagged: bool,
        owners: npt.NDArray[np.int64] | None = None,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(row of `words`, entry id) for every stored hash of `family` sharing a candidate key
        (rows of one owner probe a key once: `KeyTables.probe`)."""
        with self._transaction(write=False):
            generation = int(self._meta("generation"))
            members = family_members(self._algorithm_widths(), family)
            tables = self._candidates.keys(self._db, family, layout, members, generation, include_flagged)
        keys = layout.keys(words)
        parts = [table.probe(keys, owners) for table in tables]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    @_serialised
    def nominate_exact(
        self, algorithm: str, words: npt.NDArray[np.uint64], radius: int, include_flagged: bool
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(row of `words`, entry id) for every stored hash within `radius` (exact)."""
        loaded = self._loaded_store(canonical_algorithm(algorithm))
        if loaded is None:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty.copy()
        hits = loaded.store.range_search(words, radius, include_flagged)
        return hits.query, hits.ids

    @_serialised
    def stored_hashes(self, algorithm: str, ids: npt.NDArray[np.int64]) -> StoredHashes:
        """One algorithm's stored hashes for these entries (absent ones marked)."""
        return self._candidate_words([algorithm], ids)[algorithm]

    @_serialised
    def stored_hashes_many(
        self, algorithms: Sequence[str], ids: npt.NDArray[np.int64]
    ) -> dict[str, StoredHashes]:
        """`stored_hashes` of several algorithms in one read transaction (a match judges five)."""
        return self._candidate_words(algorithms, ids)

    def _candidate_words(
        self, algorithms: Sequence[str], ids: npt.NDArray[np.int64]
    ) -> dict[str, StoredHashes]:
        from lookalike.candidates.judge import StoredHashes

        found: dict[str, StoredHashes] = {}
        with self._transaction(write=False):
            generation = int(self._meta("generation"))
            for algorithm in algorithms:
                name = canonical_algorithm(algorithm)
                nbits = self._algorithm_nbits(name)
                if nbits is None:
                    count = len(ids)
                    found[algorithm] = StoredHashes(
                        np.zeros(count, dtype=bool),
                        np.zeros((count, 1), dtype=np.uint64),
                        np.full(count, np.nan, dtype=np.float32),
                        np.zeros(count, dtype=bool),
                    )
                    continue
                store = self._candidates.words(self._db, name, nbits, generation)
                found[algorithm] = StoredHashes(*store.lookup(ids))
        return found

    @_serialised
    def keys_by_id(self, ids: npt.NDArray[np.int64]) -> dict[int, str]:
        """Keys of these entries (removed ones are left out)."""
        return self._keys_of([int(i) for i in ids])

    @_serialised
    def ids_by_key(self, keys: Sequence[str]) -> dict[str, int]:
        return {key: found.id for key, found in self._existing_by_key(list(keys)).items()}

    @_serialised
    def stored_ids(self) -> npt.NDArray[np.int64]:
        return np.array([row[0] for row in self._db.execute("SELECT id FROM entries ORDER BY id")], np.int64)

    def stored_variant_words(self, ids: npt.NDArray[np.int64]) -> dict[tuple[int, str], bytes]:
        return self._stored_variants(ids)

    @_serialised
    def nominate_local(
        self, keys: npt.NDArray[np.uint32], tables: npt.NDArray[np.int64], limit: int | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.uint64]]:
        """(probe, entry id, keypoint signature) for every stored keypoint whose descriptor key in
        table `tables[p]` is `keys[p]`, skipping keys `limit` keypoints hold."""
        with self._transaction(write=False):
            generation = int(self._meta("generation"))
            held = self._candidates.local_keys(self._db, generation)
        return held.probe_keys(keys, tables, limit)

    @_serialised
    def stored_local(
        self, ids: npt.NDArray[np.int64]
    ) -> dict[int, tuple[LocalFeatures, LocalFeatures | None]]:
        from lookalike.local.features import LocalFeatures

        found: dict[int, tuple[LocalFeatures, LocalFeatures | None]] = {}
        for chunk in _chunks([int(i) for i in ids]):
            marks = ",".join("?" * len(chunk))
            for entry_id, data, mirrored in self._db.execute(
                f"SELECT entry_id, data, mirrored FROM local_features WHERE entry_id IN ({marks})", chunk
            ):
                flipped = None if mirrored is None else LocalFeatures.from_bytes(mirrored)
                found[entry_id] = (LocalFeatures.from_bytes(data), flipped)
        return found

    @_serialised
    def _stored_variants(self, ids: npt.NDArray[np.int64]) -> dict[tuple[int, str], bytes]:
        """(entry id, algorithm) -> the stored words of that hash's other variants."""
        if not len(ids):
            return {}
        rows = self._db.execute(
            "SELECT entry_id, algorithm, words, same_as FROM variants WHERE entry_id BETWEEN ? AND ?",
            (int(ids[0]), int(ids[-1])),
        ).fetchall()
        found = {(entry, algorithm): blob for entry, algorithm, blob, _ in rows if blob is not None}
        for entry, algorithm, _, twin in rows:
            if twin is not None and (entry, twin) in found:
                found[(entry, algorithm)] = found[(entry, twin)]
        return found

    @_serialised
    def variant_rows(self, algorithm: str) -> list[tuple[int, bytes]]:
        name = canonical_algorithm(algorithm)
        if not _plain_name(name):
            return super().variant_rows(name)
        with self._transaction(write=False):
            rows = self._db.execute(_variant_words_sql(name)).fetchall()
        return [(int(entry), bytes(blob)) for entry, blob in rows if blob]

    @_serialised
    def stored_regions(
        self, ids: Iterable[int]
    ) -> dict[int, tuple[npt.NDArray[np.uint64], list[tuple[float, float, float, float]]]]:
        listed = [int(i) for i in ids]
        if not listed:
            return {}
        with self._transaction(write=False):
            sql = _variant_words_sql(REGION_ALGORITHM, boxes=True, among=True)
            rows = self._db.execute(sql, (json.dumps(listed),)).fetchall()
        return regions_of_rows(rows)

    @_serialised
    def variant_changes(
        self, algorithm: str, since: str
    ) -> tuple[npt.NDArray[np.int64], list[tuple[int, bytes]]] | None:
        name = canonical_algorithm(algorithm)
        uuid_part, _, generation = since.rpartition(":")
        if uuid_part != self._uuid or not generation.isdigit() or not _plain_name(name):
            return None
        with self._transaction(write=False):
            changed = changed_entries(self._db, int(generation))
            sql = _variant_words_sql(name, among=True)
            rows = self._db.execute(sql, (json.dumps(changed.tolist()),)).fetchall()
        return changed, [(int(entry), bytes(blob)) for entry, blob in rows if blob]

    @_serialised
    def fingerprint(self) -> str:
        return f"{self._uuid}:{self.generation()}"

    def _algorithm_widths(self) -> dict[str, int]:
        self._algorithm_nbits("")
        return dict(self._nbits)

    # ----- the in-memory search structures ---------------------------------------------------------
    def _loaded_store(self, algorithm: str) -> _LoadedStore | None:
        """The algorithm's HashStore, brought up to the latest committed generation."""
        with self._transaction(write=False):
            generation = int(self._meta("generation"))
            loaded = self._stores.get(algorithm)
            if loaded is not None and loaded.rev == generation:
                return loaded
            nbits = self._algorithm_nbits(algorithm)
            if nbits is None:
                return None
            if loaded is None:
                loaded = self._read_snapshot(algorithm, nbits, generation) or _LoadedStore(
                    HashStore(nbits), 0
                )
                self._stores[algorithm] = loaded
            self._sync(loaded, algorithm, generation)
        return loaded

    def _sync(self, loaded: _LoadedStore, algorithm: str, generation: int) -> None:
        store = loaded.store
        removed: list[int] = []
        if loaded.rev > 0:
            tombstones = self._db.execute("SELECT entry_id FROM tombstones WHERE rev > ?", (loaded.rev,))
            removed = [row[0] for row in tombstones]
            store.remove(removed)
        table = self._hash_table(algorithm)
        assert table is not None  # the caller found its bit length
        rows = hash_tables.rows_since(self._db, table, "entry_id, value, words, flagged", loaded.rev)
        ids, words, flags = _columns(rows, store.nbits)
        if len(ids):
            store.add(ids, words, flags)
        loaded.changes_since_snapshot += len(ids) + len(removed)
        loaded.rev = generation

    def _snapshot_path(self, algorithm: str) -> Path:
        return Path(f"{self.path}.search") / f"{algorithm.replace(':', '-')}.npz"

    def _read_snapshot(self, algorithm: str, nbits: int, generation: int) -> _LoadedStore | None:
        path = self._snapshot_path(algorithm)
        if not self._snapshots or not path.exists():
            return None
        try:
            store, extra = HashStore.load(path)
        except (OSError, ValueError, KeyError):
            return None  # unreadable or stale format: rebuild from the catalog
        rev = int(extra.get("rev", -1))
        if extra.get("uuid") != self._uuid or store.nbits != nbits or not 0 < rev <= generation:
            return None
        return _LoadedStore(store, rev, 0, from_snapshot=True)

    @_serialised
    def persist_search(self, force: bool = False) -> None:
        """Snapshot the in-memory search structures next to the database so the next open is fast.

        `close()` does it for structures built or changed much since their last snapshot."""
        if not self._snapshots:
            return
        self._candidates.persist(0 if force else SNAPSHOT_MIN_CHANGES)
        for algorithm, loaded in self._stores.items():
            if not force and loaded.from_snapshot and loaded.changes_since_snapshot < SNAPSHOT_MIN_CHANGES:
                continue
            if loaded.rev == 0:
                continue
            path = self._snapshot_path(algorithm)
            try:
                path.parent.mkdir(exist_ok=True)
                loaded.store.save(path, uuid=self._uuid, rev=loaded.rev)
            except OSError:
                continue  # a read-only location: the next open rebuilds from the catalog
            loaded.from_snapshot, loaded.changes_since_snapshot = True, 0

    def search_memory(self) -> int:
        """Bytes held by the loaded in-memory search and candidate structures."""
        return sum(loaded.store.nbytes() for loaded in self._stores.values()) + self._candidates.nbytes()

    @_serialised
    def close(self) -> None:
        try:
            self.persist_search()
        finally:
            self._db.close()


def _facts(item: IndexItem) -> tuple[Any, ...]:
    metadata = json.dumps(dict(item.metadata), sort_keys=True) if item.metadata is not None else "{}"
    return (item.byte_size, item.width, item.height, item.mtime, metadata)


def _local_rows(entry_id: int, item: IndexItem) -> list[tuple[Any, ...]]:
    if item.local is None:
        return []
    mirrored = None if item.local_mirrored is None else item.local_mirrored.compact().to_bytes()
    return [(entry_id, item.local.compact().to_bytes(), mirrored)]


def _searched_variant_algorithms() -> list[str]:
    """Algorithms whose stored variants queries search (`Algorithm.stored_variants_searched`),
    by the names the index stores them under."""
    import lookalike.algorithms  # noqa: F401 - registers them
    from lookalike.algorithms.registry import algorithm_names, get_algorithm

    return [name for name in algorithm_names() if get_algorithm(name).stored_variants_searched]


def _plain_name(name: str) -> bool:
    """Whether an algorithm name may go into SQL as a literal (letters, digits, ':' and '_')."""
    return name.replace(":", "").replace("_", "").isalnum()


def _variant_words_sql(algorithm: str, *, boxes: bool = False, among: bool = False) -> str:
    """SELECT (entry id, variant words of `algorithm`, a twin's where the row names one[, region
    boxes]); the name goes in as a literal (`_plain_name`), so the partial index serves it; with
    `among`, only the entries in a JSON list parameter."""
    return (
        f"SELECT v.entry_id, coalesce(v.words, t.words){', v.boxes' if boxes else ''} FROM variants v"
        " LEFT JOIN variants t ON t.entry_id = v.entry_id AND t.algorithm = v.same_as"
        f" WHERE v.algorithm = '{algorithm}'"
        + (" AND v.entry_id IN (SELECT value FROM json_each(?))" if among else "")
    )


def _variant_rows(
    entry_id: int, hashes: Mapping[str, Hash], regions: Sequence[RelativeBox] = ()
) -> list[tuple[Any, ...]]:
    """(entry id, algorithm, variant words, twin, region boxes) per hash
    (`candidates.batch.variant_blobs`, `region_boxes`); a hash without variants gets (id,
    algorithm, None, None, None): any stored before are dropped."""
    carried = {algorithm: (blob or None, twin or None) for algorithm, blob, twin in variant_blobs(hashes)}
    return [
        (entry_id, algorithm, *carried.get(algorithm, (None, None)), region_boxes(algorithm, value, regions))
        for algorithm, value in hashes.items()
    ]


def _hash_rows(entry_id: int, hashes: Mapping[str, Hash], generation: int) -> list[tuple[Any, ...]]:
    rows = []
    for algorithm, value in hashes.items():
        if value.nbits <= 64:
            stored: tuple[Any, Any] = (value.to_int64(), None)
        else:
            stored = (None, value.words().astype(">u8").tobytes())
        rows.append(
            (algorithm, entry_id, *stored, value.quality, int(is_flagged(value, algorithm)), generation)
        )
    return rows


def _columns(
    rows: Iterable[tuple[int, int | None, bytes | None, int]], nbits: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint64], npt.NDArray[np.bool_]]:
    """Hash rows from SQL as arrays: ids, (n, words) uint64, flagged."""
    word_count = (nbits + 63) // 64
    if word_count == 1:
        table = np.fromiter(
            ((entry_id, value, flag) for entry_id, value, _, flag in rows),
            dtype=[("id", np.int64), ("value", np.int64), ("flag", np.int8)],
        )
        return table["id"], table["value"].view(np.uint64).reshape(-1, 1), table["flag"].astype(bool)
    listed = list(rows)
    ids = np.array([row[0] for row in listed], dtype=np.int64)
    packed = b"".join(row[2] or b"" for row in listed)
    words = np.frombuffer(packed, dtype=">u8").astype(np.uint64).reshape(len(listed), word_count)
    flags = np.array([bool(row[3]) for row in listed], dtype=bool)
    return ids, words, flags


def _chunks(values: Sequence[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(values), SQL_CHUNK):
        yield list(values[start : start + SQL_CHUNK])
