"""The Index API on ClickHouse: chDB in-process, a server, or a sharded cluster.

Writes append: a changed key gets a new row version and its old (key, version) goes to
`superseded`; a removal appends a tombstone. Searches run inside ClickHouse (see `sql.py`),
choosing per batch between the multi-index pre-filter and a full scan; Python only normalises
queries, expands dihedral variants and sorts the few rows that come back (`index.queries`).

>>> index = ClickHouseIndex.open_chdb("chdb:///var/lib/lookalike")
>>> index.add_words(keys, "phash", words, 64)          # columnar bulk load
>>> index.range_search(query, "phash", 8)
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from lookalike.candidates.batch import region_boxes, variant_blobs
from lookalike.candidates.keys import KeyLayout
from lookalike.candidates.plan import family_of
from lookalike.errors import IndexStoreError, InvalidHashError
from lookalike.hash import Hash
from lookalike.index.base import (
    FROM_FILE,
    AddReport,
    Entry,
    Index,
    IndexItem,
    Match,
    Pairs,
    Query,
    checked_item,
)
from lookalike.index.clickhouse import candidates as candidate_sql
from lookalike.index.clickhouse import held_keys, snapshot
from lookalike.index.clickhouse.binding import Binder
from lookalike.index.clickhouse.compaction import compact_site
from lookalike.index.clickhouse.connection import (
    ChdbConnection,
    Connection,
    DriverConnection,
    Result,
    ServerAddress,
)
from lookalike.index.clickhouse.keys import KeyColumn
from lookalike.index.clickhouse.prefilter import build_probes, prefilter_pays, probes_per_row
from lookalike.index.clickhouse.schema import (
    ALGORITHM_TYPES,
    CHUNK_BITS,
    ENTRY_TYPES,
    LEGACY_CHUNK_BITS,
    LOCAL_KEY_TYPES,
    LOCAL_TYPES,
    SUPERSEDED_TYPES,
    VARIANT_TYPES,
    Tables,
    algorithm_ddl,
    base_ddl,
    distributed_ddl,
    family_ddl,
    family_keys_select,
    family_view_ddl,
    hash_types,
    origin_ddl,
    variant_boxes_ddl,
    word_count,
)
from lookalike.index.clickhouse.sql import (
    Dialect,
    QueryRows,
    distance_histogram,
    live_filter,
    range_full_scan,
    range_prefilter,
)
from lookalike.index.flags import MIN_QUALITY
from lookalike.index.queries import (
    as_query_list,
    build_matches,
    canonical_algorithm,
    check_lengths,
    expand_dihedral,
    new_algorithm_widths,
)
from lookalike.search.bits import popcount, words_of

WRITE_BATCH = 100_000
BULK_BATCH = 2_000_000  # hashes per columnar insert of add_words (fewer, larger parts)
COMPACT_FRACTION = 0.1  # replaced rows per stored entry that trigger a compaction after a write
COMPACT_MIN_ROWS = 10_000
STORED_ROWS_SECONDS = 10.0  # how long a table's row count guides the choice of plan
_SUPERSEDED_EMPTY = "superseded is empty"  # a fact of a chDB session (see ChdbSession.facts)
_ALGORITHMS = "algorithms"  # a fact of a chDB session: name -> bit length, as the table holds
STAGE_KEYS_ABOVE = 20_000
_SCRATCH = itertools.count()
KEY_PAGE = 1000
MAX_PROBES_PER_STATEMENT = 200_000
EXACT_ROWS_PER_STATEMENT = 256  # query rows per exact range statement: its memory grows with them
DATABASE = "lookalike"


if TYPE_CHECKING:
    from lookalike.candidates.judge import StoredHashes
    from lookalike.local.features import LocalFeatures

Plan = Literal["auto", "prefilter", "scan"]


@dataclass
class Hits:
    """Raw search answer: per row the query row, distance, stored key and id."""

    rows: npt.NDArray[np.int64]
    distances: npt.NDArray[np.int64]
    keys: list[str]
    ids: npt.NDArray[np.int64]

    @classmethod
    def empty(cls) -> Hits:
        nothing = np.zeros(0, dtype=np.int64)
        return cls(nothing, nothing.copy(), [], nothing.copy())

    @classmethod
    def concat(cls, parts: Sequence[Hits]) -> Hits:
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([p.rows for p in parts]),
            np.concatenate([p.distances for p in parts]),
            [k for p in parts for k in p.keys],
            np.concatenate([p.ids for p in parts]),
        )


@dataclass
class _Current:
    entry: Entry
    version: int


class ClickHouseIndex(Index):
    """An `Index` stored in ClickHouse (see the module docstring and docs/clickhouse.md)."""

    def __init__(
        self,
        connection: Connection,
        tables: Tables,
        url: str,
        *,
        plan: Plan = "auto",
        compact_fraction: float | None = COMPACT_FRACTION,
        compact_min_rows: int = COMPACT_MIN_ROWS,
        chunk_bits: int = CHUNK_BITS,
    ) -> None:
        """`plan`: how searches read: "auto" (the pre-filter where its estimated cost is below a
        full scan's), or always "prefilter" or "scan". `compact_fraction`: after a write, compact
        once replaced rows reach this fraction of the stored entries (and at least
        `compact_min_rows`); None leaves it to `compact()`. `chunk_bits`: the pre-filter chunk
        width for algorithms new to the index (an existing one keeps the width it was made with)."""
        self.url = url
        self._connection = connection
        self._tables = tables
        self._dialect = Dialect.of(connection.version, connection.functions)
        self.plan: Plan = plan
        self._stored_rows: dict[str, tuple[float, int]] = {}  # algorithm -> (when counted, rows)
        self.compact_fraction = compact_fraction
        self.compact_min_rows = compact_min_rows
        self.chunk_bits = chunk_bits
        self._chunk_bits: dict[str, int] = {}
        self._superseded_written = 0
        self._nbits: dict[str, int] = {}
        self._last_version = 0
        self._ddl_fanout: bool | None = None
        self._shards: list[Connection] | None = None
        self._families_ready: set[str] = set()
        # keys of the row versions the candidate stage read hashes of since its last nomination
        # (`keys_by_id` answers from it; superseding writes and new nominations clear it)
        self._version_keys: dict[int, str] = {}
        # per algorithm, the live versions its stored variants were last read at (variant_rows,
        # variant_changes: `Index.stored_variants` calls them, one after the other)
        self._variant_versions: dict[str, npt.NDArray[np.int64]] = {}
        self._closed = False
        self._create_base_tables()
        self._migrate_key_tables()
        self._migrate_local_keys()

    # ----- opening -------------------------------------------------------------------------------
    @classmethod
    def open_chdb(cls, url: str, **options: Any) -> ClickHouseIndex:
        """Open (creating) the index in a chDB data folder: `chdb:///path/to/folder`."""
        connection = ChdbConnection(url)
        try:
            return cls(connection, Tables(DATABASE), url, **options)
        except BaseException:
            connection.close()
            raise

    @classmethod
    def open_server(cls, url: str, **options: Any) -> ClickHouseIndex:
        """Open (creating) the index on a server or cluster:
        `clickhouse://user:password@host:port/database[?cluster=NAME&secure=1]`."""
        address = ServerAddress.parse(url)
        connection = DriverConnection(address, database="default")
        try:
            return cls(connection, Tables(address.database, address.cluster), address.redacted(), **options)
        except BaseException:
            connection.close()
            raise

    @property
    def connection(self) -> Connection:
        return self._connection

    @property
    def tables(self) -> Tables:
        return self._tables

    # ----- reads that bind scalars ---------------------------------------------------------------
    def _read(self, make_sql: Callable[[Binder, Tables], str]) -> Result:
        """Run a statement that binds scalar values. On a cluster of old servers (before 20.1,
        which lose bound scalar subqueries in distributed queries) it runs on every shard's local
        tables and the answers are concatenated; a shard that fails fails the whole read."""
        if not self._split_reads():
            binder = self._connection.binder()
            return self._connection.query(make_sql(binder, self._tables), binder)
        local = Tables(self._tables.database, self._tables.cluster, local_only=True)
        parts = []
        for shard in self._shard_connections():
            binder = shard.binder()
            parts.append(shard.query(make_sql(binder, local), binder))
        return Result.concat(parts)

    def _split_reads(self) -> bool:
        return bool(self._tables.cluster) and not self._dialect.closures

    def _shard_connections(self) -> list[Connection]:
        if self._shards is None:
            connection = self._connection
            assert isinstance(connection, DriverConnection) and self._tables.cluster
            self._shards = [
                connection.on_host(host, port, database="default")
                for host, port in connection.cluster_hosts(self._tables.cluster)
            ]
        return list(self._shards)

    # ----- schema --------------------------------------------------------------------------------
    def _create_base_tables(self) -> None:
        tables = self._tables
        self._run_ddl([f"CREATE DATABASE IF NOT EXISTS `{tables.database}`", *base_ddl(tables)])
        if tables.cluster:
            self._run_ddl(
                [
                    distributed_ddl(tables, tables.entries(True), tables.entries()),
                    distributed_ddl(tables, tables.superseded(True), tables.superseded()),
                    distributed_ddl(tables, tables.algorithms(True), tables.algorithms(), "name"),
                    distributed_ddl(tables, tables.variants(True), tables.variants()),
                    distributed_ddl(tables, tables.local_features(True), tables.local_features()),
                    distributed_ddl(tables, tables.local_keys(True), tables.local_keys(), "version"),
                ]
            )
        if not self._has_column(tables.entries(), "origin"):
            self._run_ddl(origin_ddl(tables))
        if not self._has_column(tables.variants(), "boxes"):
            self._run_ddl(variant_boxes_ddl(tables))

    def _has_column(self, table_name: str, column: str) -> bool:
        """Whether the table (as this server sees it) has a column later versions added."""
        binder = self._connection.binder()
        database = binder.scalar("db", "String", self._tables.database)
        table = binder.scalar("table", "String", table_name.split(".")[1].strip("`"))
        name = binder.scalar("column", "String", column)
        found = self._connection.query(
            f"SELECT name FROM system.columns WHERE database = {database} AND table = {table}"
            f" AND name = {name}",
            binder,
        )
        return bool(found.values("name"))

    def _create_algorithm_tables(self, algorithm: str, nbits: int) -> None:
        tables = self._tables
        self._run_ddl(algorithm_ddl(tables, algorithm, nbits, self.chunk_bits, self._dialect.tuned_storage))
        self._chunk_bits[algorithm] = self.chunk_bits
        if tables.cluster:
            self._run_ddl([distributed_ddl(tables, tables.hashes(algorithm, True), tables.hashes(algorithm))])
        found = family_of(algorithm)
        if found is not None and found[1].nbits == nbits:
            self._families_ready.discard(found[0])
            self._ensure_family(found[0], found[1], also=algorithm)

    def _ensure_family(self, family: str, layout: KeyLayout, also: str | None = None) -> None:
        """Create a candidate family's key table and its views from every member algorithm's hash
        table; hashes stored before a view existed (an index made by an older lookalike) are
        copied in once."""
        if family in self._families_ready:
            return
        tables = self._tables
        widths = dict(self._algorithms(refresh=True))
        if also is not None:  # an algorithm being registered now
            widths[also] = layout.nbits
        members = _family_members(widths, family, layout)
        existing = self._table_names()
        statements = [family_ddl(tables, family, layout, self._dialect.tuned_storage)]
        fresh = [m for m in members if _bare_name(tables.family_view(family, layout, m)) not in existing]
        statements += [family_view_ddl(tables, family, layout, member) for member in fresh]
        if tables.cluster:
            statements.append(
                distributed_ddl(
                    tables, tables.family(family, layout, True), tables.family(family, layout), "version"
                )
            )
        self._run_ddl(statements)
        target = tables.family(family, layout, True)
        for member in fresh:
            if _bare_name(tables.hashes(member, True)) in existing:
                copy = f"INSERT INTO {target} {family_keys_select(layout, tables.hashes(member, True))}"
                for site in self._shard_connections() if tables.cluster else [self._connection]:
                    site.execute(copy)
        self._drop_other_layouts(family, layout, existing)
        self._families_ready.add(family)

    def _drop_other_layouts(self, family: str, layout: KeyLayout, existing: set[str]) -> None:
        """Drop a family's key tables and views of another layout (an index made by an older
        lookalike): views first, so no write feeds a table being dropped. The current layout's
        tables were filled from the h_ tables just before. Every view of the current layout
        stays, listed in the algorithms table or not: algorithms first stored by one add are
        registered one after the other and listed together afterwards, and each registration
        used to drop the views the earlier ones had just made (the key table then held only the
        last one's keys)."""
        tables = self._tables
        current = {_bare_name(tables.family(family, layout, True)), _bare_name(tables.family(family, layout))}
        stale = [
            name
            for name in tables.family_objects(family, existing)
            if name not in current and not tables.is_family_view(name, family, layout)
        ]
        # views, then Distributed tables, then the shard-local tables they read
        ordered = sorted(stale, key=lambda name: (not name.startswith("kv"), name.endswith("_local"), name))
        if ordered:
            database = tables.database
            self._run_ddl([f"DROP TABLE IF EXISTS `{database}`.`{name}`" for name in ordered])

    def _migrate_key_tables(self) -> None:
        """Rebuild key tables of another layout (see `_drop_other_layouts`) when the index opens,
        so stale views stop feeding them and the first search pays nothing extra."""
        existing = self._table_names()
        if not any(name.startswith("k") for name in existing):
            return
        families: dict[str, KeyLayout] = {}
        for name, nbits in self._algorithms(refresh=True).items():
            found = family_of(name)
            if found is not None and found[1].nbits == nbits:
                families.setdefault(found[0], found[1])
        for family, layout in families.items():
            objects = self._tables.family_objects(family, existing)
            if objects and _bare_name(self._tables.family(family, layout, True)) not in objects:
                self._ensure_family(family, layout)

    def _migrate_local_keys(self) -> None:
        """Give an index made before stored keypoints kept signatures its `local_keypoints`, made
        from the stored local features, and then drop its `local_keys`: last, so that an
        interrupted migration starts over on the next open."""
        from lookalike.local.features import LocalFeatures

        tables = self._tables
        existing = self._table_names()
        legacy = [tables.legacy_local_keys(), tables.legacy_local_keys(True)]
        if not any(_bare_name(name) in existing for name in legacy):
            return
        fresh = list(dict.fromkeys([tables.local_keys(), tables.local_keys(True)]))
        self._run_ddl([f"DROP TABLE IF EXISTS {name}" for name in fresh])
        self._create_base_tables()
        last = -1
        while True:
            found = self._connection.query(
                f"SELECT version, data FROM {tables.local_features()} WHERE version > {last}"
                f" ORDER BY version LIMIT {MIGRATION_BATCH}"
            )
            versions = found.array("version", np.uint64).view(np.int64).tolist()
            if not versions:
                break
            data = [candidate_sql.as_bytes(value) for value in found.values("data")]
            stored = [(v, LocalFeatures.from_bytes(d)) for v, d in zip(versions, data, strict=True)]
            self._insert(tables.local_keys(), _local_key_columns(stored), LOCAL_KEY_TYPES)
            last = versions[-1]
        self._run_ddl([f"DROP TABLE IF EXISTS {name}" for name in dict.fromkeys(legacy)])

    def _table_names(self) -> set[str]:
        binder = self._connection.binder()
        database = binder.scalar("db", "String", self._tables.database)
        result = self._connection.query(f"SELECT name FROM system.tables WHERE database = {database}", binder)
        return {str(name) for name in result.values("name")}

    def _run_ddl(self, statements: Sequence[str]) -> None:
        """Run DDL on this server, or on every server of the cluster: `ON CLUSTER` where the
        cluster has distributed DDL (ZooKeeper / Keeper), else the same statement on each host."""
        cluster = self._tables.cluster
        connection = self._connection
        if cluster is None or not isinstance(connection, DriverConnection):
            for statement in statements:
                connection.execute(statement)
            return
        if self._ddl_fanout is None:
            try:
                connection.execute(_on_cluster(statements[0], cluster))
                self._ddl_fanout = False
                statements = statements[1:]
            except IndexStoreError as exc:
                if not any(sign in str(exc).lower() for sign in _NO_DISTRIBUTED_DDL):
                    raise
                self._ddl_fanout = True
        if not self._ddl_fanout:
            for statement in statements:
                connection.execute(_on_cluster(statement, cluster))
            return
        for host, port in connection.cluster_hosts(cluster):
            remote = connection.on_host(host, port, database="default")
            try:
                for statement in statements:
                    remote.execute(statement)
            finally:
                remote.close()

    def _algorithms(self, refresh: bool = False) -> dict[str, int]:
        connection = self._connection
        if refresh and isinstance(connection, ChdbConnection):
            # only this process writes a chDB path, and every handle on it registers through
            # the shared facts: what they hold is what the table holds
            known = connection.shared.facts.get(_ALGORITHMS)
            if known is not None:
                self._nbits = dict(known)
                return self._nbits
        if refresh or not self._nbits:
            result = self._connection.query(f"SELECT name, nbits FROM {self._tables.algorithms()}")
            found: dict[str, int] = {}
            for name, nbits in result.rows():
                if found.get(name, nbits) != nbits:
                    raise IndexStoreError(f"{self.url}: {name} is stored with two bit lengths")
                found[name] = int(nbits)
            self._nbits = found
            if isinstance(connection, ChdbConnection):
                connection.shared.facts[_ALGORITHMS] = dict(found)
        return self._nbits

    def disk_bytes(self) -> int | None:
        """Active parts of this index's database (on a cluster: as the first server sees it)."""
        try:
            result = self._connection.query(
                "SELECT sum(bytes_on_disk) AS b FROM system.parts WHERE active AND database = "
                + (binder := self._connection.binder()).scalar("db", "String", self._tables.database),
                binder,
            )
            return int(result.values("b")[0])
        except Exception:
            return None

    def algorithm_bits(self) -> dict[str, int]:
        """Every stored algorithm and its hash length in bits."""
        return dict(self._algorithms(refresh=True))

    def prefilter_bits(self, algorithm: str) -> int:
        """The chunk width of a stored algorithm's pre-filter: the one whose table exists."""
        if algorithm not in self._chunk_bits:
            tables = self._tables
            names = {
                bits: tables.prefilter(algorithm, bits, True).split(".")[1].strip("`")
                for bits in (CHUNK_BITS, LEGACY_CHUNK_BITS, self.chunk_bits)
            }
            binder = self._connection.binder()
            database = binder.scalar("db", "String", tables.database)
            candidates = binder.in_set("names", "String", sorted(set(names.values())))
            found = self._connection.query(
                f"SELECT name FROM system.tables WHERE database = {database} AND name IN {candidates}", binder
            ).values("name")
            present = [bits for bits, name in names.items() if name in found]
            if not present:
                raise IndexStoreError(f"{self.url}: no pre-filter table for {algorithm}")
            self._chunk_bits[algorithm] = present[0]
        return self._chunk_bits[algorithm]

    def _nbits_of(self, algorithm: str) -> int | None:
        known = self._algorithms()
        if algorithm not in known:
            known = self._algorithms(refresh=True)
        return known.get(algorithm)

    def _register(self, new: Mapping[str, int]) -> None:
        for algorithm, nbits in new.items():
            self._create_algorithm_tables(algorithm, nbits)
        if new:
            self._insert(
                self._tables.algorithms(), {"name": list(new), "nbits": list(new.values())}, ALGORITHM_TYPES
            )
            self._nbits.update(new)
            if isinstance(self._connection, ChdbConnection):
                self._connection.shared.facts.pop(_ALGORITHMS, None)

    # ----- writing -------------------------------------------------------------------------------
    def _versions(self, count: int) -> npt.NDArray[np.uint64]:
        """`count` fresh row versions, increasing (nanosecond clock, never repeating here)."""
        start = max(time.time_ns(), self._last_version + 1)
        self._last_version = start + count - 1
        return np.arange(start, start + count, dtype=np.uint64)

    def _insert(self, table: str, columns: Mapping[str, Any], types: Mapping[str, str]) -> None:
        if self._closed:
            raise IndexStoreError(f"{self.url}: the index is closed")
        try:
            self._connection.insert(table, columns, {name: types[name] for name in columns})
        finally:
            self._stored_changed()

    def _stored_changed(self) -> None:
        """After any write: stored hashes held in memory (`hold_stored_hashes`) may be stale."""
        if isinstance(self._connection, ChdbConnection):
            snapshot.drop(self._connection)

    def add(self, items: Iterable[IndexItem | tuple[str, Mapping[str, Hash]]]) -> AddReport:
        """Store items: an existing key is updated (new version), a sha256 already stored under
        another key is skipped and reported in `same_bytes`, except for files read from disk
        (origin FROM_FILE): every path is its own entry, so exact copies are found."""
        report = AddReport()
        iterator = iter(items)
        while batch := list(itertools.islice(iterator, WRITE_BATCH)):
            report = report.merge(self._write_batch([_normalise(item, self.url) for item in batch]))
        self._compact_if_grown()
        return report

    def add_words(
        self,
        keys: Sequence[str] | Any,
        algorithm: str,
        words: npt.NDArray[np.uint64],
        nbits: int,
        quality: Sequence[int | None] | npt.NDArray[np.integer[Any]] | None = None,
    ) -> AddReport:
        """Add one algorithm's hashes from an (n, words) uint64 array in columnar inserts (no Hash
        objects). `keys` may be a list, a NumPy or an Arrow string array; sorted unique keys take
        the fastest path. Keys already stored go through `add` and keep their other hashes."""
        column = KeyColumn.of(keys, self.url)
        rows = np.asarray(words, dtype=np.uint64).reshape(len(column), -1)
        if rows.shape[1] != word_count(nbits):
            raise InvalidHashError(f"{nbits}-bit hashes take {word_count(nbits)} words, got {rows.shape[1]}")
        algorithm = canonical_algorithm(algorithm)
        stored_nbits = self._nbits_of(algorithm)
        if stored_nbits is not None and stored_nbits != nbits:
            raise InvalidHashError(f"{algorithm} hashes in {self.url} have {stored_nbits} bits, not {nbits}")
        qualities = _quality_column(quality, len(column))
        report = AddReport()
        for start in range(0, len(column), BULK_BATCH):
            stop = min(start + BULK_BATCH, len(column))
            part_quality = None if qualities is None else qualities[start:stop]
            added = self._add_words_batch(
                column.slice(start, stop), algorithm, rows[start:stop], nbits, part_quality
            )
            report = report.merge(added)
        return report

    def _add_words_batch(
        self,
        keys: KeyColumn,
        algorithm: str,
        rows: npt.NDArray[np.uint64],
        nbits: int,
        quality: npt.NDArray[np.int16] | None,
    ) -> AddReport:
        ordered = keys.strictly_increasing()
        if not ordered:  # the last occurrence of a key wins
            positions = keys.last_occurrences()
            if len(positions) < len(keys):
                keys = keys.take(positions)
                rows = rows[positions]
                quality = None if quality is None else quality[positions]
        report = AddReport()
        if self._any_stored_between(*keys.bounds(ordered)):
            old, versions, known = self._live_states(keys)
            if old.any():
                part = None if quality is None else quality[old]
                report = self._add_to_stored(
                    keys.filter(old), algorithm, rows[old], nbits, part, versions[old], known[old]
                )
                keys = keys.filter(~old)
                rows = rows[~old]
                quality = None if quality is None else quality[~old]
        if not len(keys):
            return report
        if self._nbits_of(algorithm) is None:
            self._register({algorithm: nbits})
        count = len(keys)
        versions = self._versions(count)
        quality_column = quality if quality is not None else np.full(count, -1, dtype=np.int16)
        flagged = _flags(rows, nbits, quality_column)
        # `deleted` (0) and `metadata` ('' reads as {}) take their column defaults
        self._insert(
            self._tables.entries(),
            {
                "key": keys.values,
                "version": versions,
                "added_at": np.full(count, time.time()),
                "algorithms": _repeat(algorithm, count),
            },
            ENTRY_TYPES,
        )
        columns: dict[str, Any] = {
            "key": keys.values,
            "version": versions,
            "quality": quality_column,
            "flagged": flagged.astype(np.uint8),
        }
        for i in range(rows.shape[1]):
            columns[f"w{i}"] = np.ascontiguousarray(rows[:, i])
        self._insert(self._tables.hashes(algorithm), columns, hash_types(nbits))
        return report.merge(AddReport(added=count))

    def _add_to_stored(
        self,
        keys: KeyColumn,
        algorithm: str,
        rows: npt.NDArray[np.uint64],
        nbits: int,
        quality: npt.NDArray[np.int16] | None,
        versions: npt.NDArray[np.uint64],
        known: npt.NDArray[np.bool_],
    ) -> AddReport:
        """`add_words` for stored keys (their live `versions`, and whether each records an
        origin: `known`), over whole columns: a hash the live version lacks is appended under
        that version (no new entry version, nothing superseded; readers look for a version's
        hashes in every h_ table); the same hash again changes nothing; a changed hash, or an
        entry that records an origin (a write replaces it), takes `add`."""
        general = known.copy()
        quality_column = quality if quality is not None else np.full(len(keys), -1, dtype=np.int16)
        append = ~general
        same = np.zeros(len(keys), dtype=bool)
        if self._nbits_of(algorithm) is None:
            self._register({algorithm: nbits})
        else:
            present, words, stored_quality, _ = candidate_sql.stored_hashes(
                self._connection, self._read, self._tables, algorithm, nbits, versions.view(np.int64)
            )
            given = np.where(quality_column < 0, np.nan, quality_column.astype(np.float32))
            same = present & (words == rows).all(axis=1)
            same &= (stored_quality == given) | (np.isnan(stored_quality) & np.isnan(given))
            general |= present & ~same
            append &= ~present
        report = AddReport(unchanged=int((same & ~general).sum()))
        chosen = np.flatnonzero(general)
        if len(chosen):
            chosen_keys = keys.take(chosen).to_list()
            report = report.merge(
                self.add(
                    (
                        key,
                        {
                            algorithm: Hash.from_words(rows[i], nbits).with_quality(
                                None if quality_column[i] < 0 else int(quality_column[i])
                            )
                        },
                    )
                    for key, i in zip(chosen_keys, chosen.tolist(), strict=True)
                )
            )
        if append.any():
            columns: dict[str, Any] = {
                "key": keys.filter(append).values,
                "version": versions[append],
                "quality": quality_column[append],
                "flagged": _flags(rows[append], nbits, quality_column[append]).astype(np.uint8),
            }
            for i in range(rows.shape[1]):
                columns[f"w{i}"] = np.ascontiguousarray(rows[append, i])
            self._insert(self._tables.hashes(algorithm), columns, hash_types(nbits))
        return report.merge(AddReport(updated=int(append.sum())))

    def _live_states(
        self, keys: KeyColumn
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.uint64], npt.NDArray[np.bool_]]:
        """Per key: whether it is stored, its live version and whether that records an origin."""

        def sql(table: str, site: Tables) -> str:
            return (
                f"SELECT key, max(version) AS latest, argMax(isNotNull(origin), version) AS known"
                f" FROM {site.entries()} WHERE key IN (SELECT key FROM {table}) AND deleted = 0"
                f" AND {live_filter(site)} GROUP BY key"
            )

        result = candidate_sql.query_with_table(
            self._connection, self._read, self._tables, "keys", {"key": ("String", keys.values)}, sql
        )
        stored = np.zeros(len(keys), dtype=bool)
        versions = np.zeros(len(keys), dtype=np.uint64)
        known = np.zeros(len(keys), dtype=bool)
        if not len(result):
            return stored, versions, known
        positions = keys.positions_in(result.column("key"))
        stored = positions >= 0
        versions[stored] = result.array("latest", np.uint64)[positions[stored]]
        known[stored] = result.array("known", bool)[positions[stored]]
        return stored, versions, known

    def _write_batch(self, items: list[IndexItem]) -> AddReport:
        by_key: dict[str, IndexItem] = {}
        for item in items:  # the last item for a key wins
            by_key.pop(item.key, None)
            by_key[item.key] = item
        new_algorithms = self._check_nbits(by_key.values())
        keys = list(by_key)
        if len(keys) > STAGE_KEYS_ABOVE:  # a bulk load: read the state of the stored keys only
            keys = sorted(self._live_keys(KeyColumn.of(keys, self.url)))
        current = self._current(keys)
        owners = self._owners_by_sha([i.sha256 for i in by_key.values() if i.sha256])
        now = time.time()
        writes: list[tuple[IndexItem, float]] = []  # full new state of each written key
        dropped: list[tuple[str, int]] = []  # (key, version) removed whole
        superseded: list[tuple[str, int]] = []
        added = updated = unchanged = 0
        same_bytes: list[tuple[str, str]] = []
        for item in by_key.values():
            existing = current.get(item.key)
            owner = owners.get(item.sha256) if item.sha256 else None
            if owner is not None and owner != item.key and item.origin != FROM_FILE:
                same_bytes.append((item.key, owner))
                if existing is not None:  # this key now holds another entry's bytes
                    dropped.append((item.key, existing.version))
                continue
            if existing is None:
                writes.append((item, now))
                if item.sha256:
                    owners[item.sha256] = item.key
                added += 1
                continue
            state = _updated_state(item, existing.entry)
            if state is None:
                unchanged += 1
                continue
            writes.append((state, existing.entry.added_at))
            superseded.append((item.key, existing.version))
            updated += 1
        self._register(new_algorithms)
        with self._superseding(bool(superseded or dropped)):
            self._write_states(writes)
            self._write_tombstones(dropped)
            self._write_superseded(superseded + dropped)
        return AddReport(added, updated, unchanged, (), tuple(same_bytes))

    def _check_nbits(self, items: Iterable[IndexItem]) -> dict[str, int]:
        """Each algorithm keeps one bit length; returns the algorithms new to this index."""
        stored = self._algorithms(refresh=True)  # other writers may have added algorithms
        return new_algorithm_widths(items, stored.get, self.url)

    def _write_states(self, writes: Sequence[tuple[IndexItem, float]]) -> None:
        if not writes:
            return
        versions = self._versions(len(writes)).tolist()
        entries: dict[str, list[Any]] = {name: [] for name in ENTRY_TYPES}
        per_algorithm: dict[str, tuple[list[str], list[int], list[Hash]]] = {}
        for (item, added_at), version in zip(writes, versions, strict=True):
            metadata = json.dumps(dict(item.metadata), sort_keys=True) if item.metadata is not None else "{}"
            row = {
                "key": item.key,
                "version": version,
                "deleted": 0,
                "sha256": item.sha256,
                "byte_size": item.byte_size,
                "width": item.width,
                "height": item.height,
                "mtime": item.mtime,
                "added_at": added_at,
                "metadata": metadata,
                "algorithms": ",".join(sorted(item.hashes)),
                "origin": item.origin,
            }
            for name, value in row.items():
                entries[name].append(value)
            for algorithm, value in item.hashes.items():
                keys, row_versions, values = per_algorithm.setdefault(algorithm, ([], [], []))
                keys.append(item.key)
                row_versions.append(version)
                values.append(value)
        self._insert(self._tables.entries(), entries, ENTRY_TYPES)
        for algorithm, (keys, row_versions, values) in per_algorithm.items():
            nbits = self._nbits[algorithm]
            columns = _hash_columns(algorithm, nbits, keys, row_versions, values)
            self._insert(self._tables.hashes(algorithm), columns, hash_types(nbits))
        variant_columns: dict[str, list[Any]] = {name: [] for name in VARIANT_TYPES}
        for (item, _), version in zip(writes, versions, strict=True):
            for algorithm, blob, twin in variant_blobs(item.hashes):
                boxes = region_boxes(algorithm, item.hashes[algorithm], item.regions) or b""
                stored = (
                    item.key,
                    version,
                    algorithm,
                    blob.hex(),
                    twin,
                    boxes.hex(),
                )  # hex: text every driver takes
                for name, value in zip(VARIANT_TYPES, stored, strict=True):
                    variant_columns[name].append(value)
        if variant_columns["key"]:
            self._insert(self._tables.variants(), variant_columns, VARIANT_TYPES)
        local_columns: dict[str, list[Any]] = {name: [] for name in LOCAL_TYPES}
        for (item, _), version in zip(writes, versions, strict=True):
            if item.local is not None:
                mirrored = b"" if item.local_mirrored is None else item.local_mirrored.compact().to_bytes()
                features = (item.key, version, item.local.compact().to_bytes().hex(), mirrored.hex())
                for name, value in zip(LOCAL_TYPES, features, strict=True):
                    local_columns[name].append(value)
        if local_columns["key"]:
            self._insert(self._tables.local_features(), local_columns, LOCAL_TYPES)
            compact = [
                (version, item.local.compact())
                for (item, _), version in zip(writes, versions, strict=True)
                if item.local is not None
            ]
            self._insert(self._tables.local_keys(), _local_key_columns(compact), LOCAL_KEY_TYPES)

    def _write_tombstones(self, removed: Sequence[tuple[str, int]]) -> None:
        if not removed:
            return
        count = len(removed)
        self._insert(
            self._tables.entries(),
            {
                "key": [key for key, _ in removed],
                "version": self._versions(count),
                "deleted": np.ones(count, dtype=np.uint8),
                "added_at": np.full(count, time.time()),
                "metadata": _repeat("{}", count),
                "algorithms": _repeat("", count),
            },
            ENTRY_TYPES,
        )

    def _write_superseded(self, rows: Sequence[tuple[str, int]]) -> None:
        if rows:
            self._insert(
                self._tables.superseded(),
                {"key": [key for key, _ in rows], "version": np.array([v for _, v in rows], dtype=np.uint64)},
                SUPERSEDED_TYPES,
            )
            self._superseded_written += len(rows)

    def _compact_if_grown(self) -> None:
        """After writes that replaced rows: compact once the replaced rows are many."""
        if not self._superseded_written or self.compact_fraction is None:
            return
        self._superseded_written = 0
        tables = self._tables
        stale = self._count(tables.superseded())
        if stale >= self.compact_min_rows and stale >= self.compact_fraction * self._count(tables.entries()):
            self._drop_superseded()

    def compact(self) -> int:
        """Physically drop replaced versions and removed entries from every table and empty
        `superseded` (see `compaction.py`), then merge each table a match reads into one part;
        safe while others read. Returns the rows dropped.

        A bulk load leaves a key table with a part per insert (four algorithms of a family: four
        parts per batch) until ClickHouse happens to merge them, and a probe looks its key up in
        every part: at 100,000 images, four parts took a match from 63 to 95 ms."""
        dropped = self._drop_superseded()
        self._merge_search_parts()
        return dropped

    def _merge_search_parts(self) -> None:
        """OPTIMIZE ... FINAL the key (`k*`) and hash (`h_*`) tables that hold more than one active
        part, on every server that holds some."""
        for site in self._shard_connections() if self._tables.cluster else [self._connection]:
            binder = site.binder()
            database = binder.scalar("db", "String", self._tables.database)
            result = site.query(
                f"SELECT table, count() AS n FROM system.parts WHERE active AND database = {database}"
                " GROUP BY table",
                binder,
            )
            for table, parts in zip(result.values("table"), result.values("n"), strict=True):
                if int(parts) > 1 and str(table).startswith(("k", "h_")):
                    site.execute(f"OPTIMIZE TABLE `{self._tables.database}`.`{table}` FINAL")
        self._stored_changed()

    def _drop_superseded(self) -> int:
        """The first half of `compact`: replaced and removed rows dropped (see `compaction.py`)."""
        if self._closed:
            raise IndexStoreError(f"{self.url}: the index is closed")
        algorithms = {
            name: (nbits, self.prefilter_bits(name)) for name, nbits in self._algorithms(True).items()
        }
        modern = self._dialect.mutations_sync
        connection = self._connection
        existing = self._table_names()
        families = sorted(
            {
                found
                for name in algorithms
                if (found := family_of(name)) is not None
                and _bare_name(self._tables.family(found[0], found[1], True)) in existing
            },
            key=lambda found: found[0],
        )
        if self._tables.cluster:
            shards = self._shard_connections()
            return sum(compact_site(shard, self._tables, algorithms, modern, families) for shard in shards)
        try:
            dropped = compact_site(connection, self._tables, algorithms, modern, families)
        finally:
            self._stored_changed()
        if isinstance(connection, ChdbConnection):
            with connection.shared.facts_lock:  # superseded may be empty now: count it again
                connection.shared.facts.pop(_SUPERSEDED_EMPTY, None)
        return dropped

    def remove(self, keys: Iterable[str]) -> int:
        """Delete entries by key (a tombstone plus superseded marks); returns how many existed."""
        wanted = list(dict.fromkeys(keys))
        removed: list[tuple[str, int]] = []
        for start in range(0, len(wanted), WRITE_BATCH):
            live = self._live_versions(wanted[start : start + WRITE_BATCH])
            removed.extend(live.items())
        with self._superseding(bool(removed)):
            self._write_tombstones(removed)
            self._write_superseded(removed)
        self._compact_if_grown()
        return len(removed)

    # ----- reading -------------------------------------------------------------------------------
    def _live_versions(self, keys: Sequence[str]) -> dict[str, int]:
        """The live version of each of `keys` that is stored."""
        if not keys:
            return {}
        connection = self._connection
        if len(keys) > STAGE_KEYS_ABOVE and isinstance(connection, ChdbConnection):
            return self._live_versions_staged(connection, KeyColumn.of(keys, self.url).values)
        binder = connection.binder()
        key_set = binder.in_set("keys", "String", list(keys))
        result = connection.query(
            f"SELECT key, max(version) AS latest FROM {self._tables.entries()}"
            f" WHERE key IN {key_set} AND deleted = 0 AND {live_filter(self._tables)} GROUP BY key",
            binder,
        )
        return {str(k): int(v) for k, v in result.rows()}

    def _live_versions_staged(self, connection: ChdbConnection, keys: Any) -> dict[str, int]:
        """`_live_versions` for a bulk load: the keys travel as one Arrow stream into a scratch
        Memory table instead of a text parameter (a million keys: ~0.1 s instead of ~6 s)."""
        scratch = f"`{self._tables.database}`.`scratch_keys_{os.getpid()}_{next(_SCRATCH)}`"
        connection.execute(f"CREATE TABLE {scratch} (key String) ENGINE = Memory")
        try:
            connection.insert(scratch, {"key": keys}, {"key": "String"})
            result = connection.query(
                f"SELECT key, max(version) AS latest FROM {self._tables.entries()}"
                f" WHERE key IN (SELECT key FROM {scratch}) AND deleted = 0 AND {live_filter(self._tables)}"
                " GROUP BY key"
            )
        finally:
            connection.execute(f"DROP TABLE IF EXISTS {scratch}")
        return {str(k): int(v) for k, v in result.rows()}

    def _live_keys(self, keys: KeyColumn) -> set[str]:
        connection = self._connection
        if len(keys) > STAGE_KEYS_ABOVE and isinstance(connection, ChdbConnection):
            return set(self._live_versions_staged(connection, keys.values))
        return set(self._live_versions(keys.to_list()))

    def _any_stored_between(self, low: str, high: str) -> bool:
        """Whether any row has a key in [low, high]: new keys past the stored ones (a bulk load
        in key order) skip the existence check. `entries` is sorted by key, so this is cheap."""
        result = self._read(
            lambda binder, tables: (
                f"SELECT count() AS n FROM {tables.entries()}"
                f" WHERE key >= {binder.scalar('low', 'String', low)}"
                f" AND key <= {binder.scalar('high', 'String', high)}"
            )
        )
        return sum(int(n) for n in result.values("n")) > 0

    def _owners_by_sha(self, digests: Sequence[str]) -> dict[str, str]:
        if not digests:
            return {}
        wanted = sorted(set(digests))

        def sql(table: str, site: Tables) -> str:
            return (
                f"SELECT sha256, argMin(key, added_at) AS owner FROM {site.entries()}"
                f" WHERE sha256 IN (SELECT d FROM {table}) AND deleted = 0 AND {live_filter(site)}"
                " GROUP BY sha256"
            )

        columns = {"d": ("String", wanted)}
        result = candidate_sql.query_with_table(
            self._connection, self._read, self._tables, "digests", columns, sql
        )
        return {str(d): str(k) for d, k in result.rows()}

    def _current(self, keys: Sequence[str]) -> dict[str, _Current]:
        """Live entries (with their hashes and row version) of the stored keys among `keys`."""
        if not keys:
            return {}
        binder = self._connection.binder()
        key_set = binder.in_set("keys", "String", list(keys))
        names = ", ".join(name for name in ENTRY_TYPES if name != "deleted")
        result = self._connection.query(
            f"SELECT {names}, sipHash64(key) AS id FROM {self._tables.entries()}"
            f" WHERE key IN {key_set} AND deleted = 0 AND {live_filter(self._tables)}",
            binder,
        )
        rows: dict[str, dict[str, Any]] = {}
        columns = [*[n for n in ENTRY_TYPES if n != "deleted"], "id"]
        for values in result.rows():
            row = dict(zip(columns, values, strict=True))
            previous = rows.get(row["key"])
            if previous is None or row["version"] > previous["version"]:
                rows[row["key"]] = row
        hashes, flagged = self._hashes_of(rows.values())
        current: dict[str, _Current] = {}
        for key, row in rows.items():
            where = (key, int(row["version"]))
            entry = Entry(
                id=_signed(int(row["id"])),
                key=key,
                hashes=hashes.get(where, {}),
                sha256=row["sha256"],
                byte_size=row["byte_size"],
                width=row["width"],
                height=row["height"],
                mtime=row["mtime"],
                added_at=float(row["added_at"]),
                flagged=frozenset(flagged.get(where, ())),
                metadata=json.loads(row["metadata"]) if row["metadata"] else {},
                origin=row["origin"],
            )
            current[key] = _Current(entry, int(row["version"]))
        return current

    def _hashes_of(
        self, rows: Iterable[Mapping[str, Any]]
    ) -> tuple[dict[tuple[str, int], dict[str, Hash]], dict[tuple[str, int], set[str]]]:
        wanted: dict[str, list[tuple[str, int]]] = {}
        pairs_of_rows = [(row["key"], int(row["version"])) for row in rows]
        # every h_ table: `add_words` appends a new algorithm's hashes under the live version,
        # which the `algorithms` column (written with the version) does not list
        for algorithm in self._algorithms(refresh=True) if pairs_of_rows else ():
            wanted[algorithm] = pairs_of_rows
        hashes: dict[tuple[str, int], dict[str, Hash]] = {}
        flagged: dict[tuple[str, int], set[str]] = {}
        for algorithm, pairs in wanted.items():
            nbits = self._nbits_of(algorithm)
            if nbits is None:
                continue
            words = [f"w{i}" for i in range(word_count(nbits))]
            binder = self._connection.binder()
            version_set = binder.in_set("versions", "UInt64", sorted({v for _, v in pairs}))
            result = self._connection.query(
                f"SELECT key, version, quality, flagged, {', '.join(words)}"
                f" FROM {self._tables.hashes(algorithm)} WHERE version IN {version_set}",
                binder,
            )
            want = set(pairs)
            for key, version, quality, flag, *value in result.rows():
                where = (str(key), int(version))
                if where not in want:
                    continue
                restored = Hash.from_words(value, nbits).with_quality(None if quality < 0 else int(quality))
                hashes.setdefault(where, {})[algorithm] = restored
                if flag:
                    flagged.setdefault(where, set()).add(algorithm)
        return hashes, flagged

    def get(self, key: str) -> Entry | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, Entry]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Entry] = {}
        for start in range(0, len(wanted), WRITE_BATCH):
            found.update(
                {key: c.entry for key, c in self._current(wanted[start : start + WRITE_BATCH]).items()}
            )
        return found

    def entries(self) -> Iterator[Entry]:
        after = ""
        while True:
            page = sorted(set(self._read(functools.partial(_keys_after_sql, after)).values("key")))[:KEY_PAGE]
            if not page:
                return
            found = self.get_many(page)
            for key in page:
                if key in found:
                    yield found[key]
            after = page[-1]

    def __len__(self) -> int:
        result = self._connection.query(
            f"SELECT uniqExact(key) AS n FROM {self._tables.entries()}"
            f" WHERE deleted = 0 AND {live_filter(self._tables)}"
        )
        return int(result.values("n")[0])

    # ----- searching -----------------------------------------------------------------------------
    def range_search(  # type: ignore[override]
        self,
        queries: Query,
        algorithm: str,
        max_distance: int,
        *,
        dihedral: bool = False,
        include_flagged: bool = False,
    ) -> list[Match] | list[list[Match]]:
        """Every stored hash within `max_distance` of each query, sorted by (distance, key); the
        whole batch (and all dihedral variants) in one statement."""
        return self._search(queries, algorithm, int(max_distance), None, dihedral, include_flagged)

    def search(  # type: ignore[override]
        self,
        queries: Query,
        algorithm: str,
        k: int = 10,
        *,
        dihedral: bool = False,
        include_flagged: bool = False,
    ) -> list[Match] | list[list[Match]]:
        """The exact `k` nearest stored hashes for each query, sorted by (distance, key): a
        distance histogram picks each query's radius, then one range statement answers."""
        return self._search(queries, algorithm, None, int(k), dihedral, include_flagged)

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
        name = canonical_algorithm(algorithm)
        nbits = self._nbits_of(name)
        results: list[list[Match]]
        if nbits is None or not expanded or (max_distance is not None and max_distance < 0) or k == 0:
            results = [[] for _ in hashes]
        else:
            check_lengths(expanded, nbits, algorithm)
            words = words_of(expanded, nbits)
            if k is None:
                radius = np.full(len(expanded), max_distance, dtype=np.int64)
                hits = self.hits(name, nbits, QueryRows(words, radius), include_flagged)
                results = self._matches(len(hashes), owner, variant, hits, None)
            else:
                results = self._top_k(name, nbits, words, owner, variant, len(hashes), k, include_flagged)
        return results[0] if single else results

    def _matches(
        self,
        count: int,
        owner: npt.NDArray[np.int64],
        variant: npt.NDArray[np.int64],
        hits: Hits,
        k: int | None,
    ) -> list[list[Match]]:
        keys = dict(zip(hits.ids.tolist(), hits.keys, strict=True))
        return build_matches(
            count,
            owner[hits.rows],
            variant[hits.rows],
            hits.ids,
            hits.distances,
            lambda ids: {i: keys[i] for i in ids},
            k,
        )

    def _top_k(
        self,
        algorithm: str,
        nbits: int,
        words: npt.NDArray[np.uint64],
        owner: npt.NDArray[np.int64],
        variant: npt.NDArray[np.int64],
        count: int,
        k: int,
        include_flagged: bool,
    ) -> list[list[Match]]:
        radius_per_query = self._top_k_radii(algorithm, nbits, words, owner, count, k, include_flagged)
        pending = np.arange(count)
        results: list[list[Match]] = [[] for _ in range(count)]
        while len(pending):
            chosen = np.isin(owner, pending)
            rows = np.flatnonzero(chosen)
            hits = self.hits(
                algorithm, nbits, QueryRows(words[rows], radius_per_query[owner[rows]]), include_flagged
            )
            local_owner = owner[rows]
            found = self._matches(count, local_owner, variant[rows], hits, k)
            short = []
            for query in pending.tolist():
                results[query] = found[query]
                # fewer than k: superseded rows inflated the histogram; widen and ask again
                if len(found[query]) < k and radius_per_query[query] < nbits:
                    radius_per_query[query] = min(nbits, 2 * radius_per_query[query] + 2)
                    short.append(query)
            pending = np.array(short, dtype=np.int64)
        return results

    def _top_k_radii(
        self,
        algorithm: str,
        nbits: int,
        words: npt.NDArray[np.uint64],
        owner: npt.NDArray[np.int64],
        count: int,
        k: int,
        include_flagged: bool,
    ) -> npt.NDArray[np.int64]:
        """Per query, the smallest radius holding at least k stored hashes for some variant."""
        rows = QueryRows(words, np.zeros(len(words), dtype=np.int64))
        result = self._read(
            lambda binder, tables: distance_histogram(
                self._dialect, tables, algorithm, nbits, rows, include_flagged, binder
            )
        )
        counts = np.zeros((len(words), nbits + 1), dtype=np.int64)
        np.add.at(
            counts, (result.array("qi", np.int64), result.array("d", np.int64)), result.array("n", np.int64)
        )
        cumulative = np.cumsum(counts, axis=1)
        enough = cumulative >= k
        per_row = np.where(enough.any(axis=1), enough.argmax(axis=1), nbits)
        radii = np.full(count, nbits, dtype=np.int64)
        np.minimum.at(radii, owner, per_row)
        return radii

    def hits(self, algorithm: str, nbits: int, rows: QueryRows, include_flagged: bool) -> Hits:
        """Raw hits of a batch of query rows, each with its own radius (the pre-filter where its
        probes are few, else a full scan), in as few statements as the probe budget allows."""
        live = rows.radius >= 0
        if not live.all():
            keep = np.flatnonzero(live)
            found = self.hits(
                algorithm, nbits, QueryRows(rows.words[keep], rows.radius[keep]), include_flagged
            )
            return Hits(keep[found.rows], found.distances, found.keys, found.ids)
        if not len(rows):
            return Hits.empty()
        with self._reading() as stale:
            chunk_bits = self.prefilter_bits(algorithm) if self.plan != "scan" else 0
            per_row = probes_per_row(nbits, int(rows.radius.max()), chunk_bits) if chunk_bits else 0
            if not chunk_bits or (
                self.plan == "auto" and not prefilter_pays(per_row, self._stored(algorithm), chunk_bits)
            ):
                return self._run_hits(
                    lambda binder, tables: range_full_scan(
                        self._dialect, tables, algorithm, nbits, rows, include_flagged, binder, stale
                    )
                )
            step = max(1, MAX_PROBES_PER_STATEMENT // per_row)
            parts = []
            for start in range(0, len(rows), step):
                part = QueryRows(rows.words[start : start + step], rows.radius[start : start + step])
                probes = build_probes(part.words, part.radius, nbits, chunk_bits)
                found = self._run_hits(
                    functools.partial(
                        _prefilter_sql,
                        self._dialect,
                        algorithm,
                        nbits,
                        part,
                        probes,
                        chunk_bits,
                        include_flagged,
                        stale,
                    )
                )
                parts.append(Hits(found.rows + start, found.distances, found.keys, found.ids))
            return Hits.concat(parts)

    @contextmanager
    def _reading(self) -> Iterator[bool]:
        """Whether searches must filter superseded rows, kept true while they run. Always on a
        server (other processes write); on chDB this process alone writes the path, so while
        `superseded` is known empty the anti-join is skipped (about 1 ms a statement)."""
        connection = self._connection
        if not isinstance(connection, ChdbConnection):
            yield True
            return
        shared = connection.shared
        with shared.facts_lock:  # no superseding write starts until these statements ran
            empty = shared.facts.get(_SUPERSEDED_EMPTY)
            if empty is None:
                empty = self._count(self._tables.superseded()) == 0
                shared.facts[_SUPERSEDED_EMPTY] = empty
            yield not empty

    @contextmanager
    def _superseding(self, rows: bool) -> Iterator[None]:
        """Around a write that will add rows to `superseded` (`rows`): from its first insert on,
        searches on this chDB path filter them."""
        connection = self._connection
        if rows:
            self._version_keys.clear()
        if not rows or not isinstance(connection, ChdbConnection):
            yield
            return
        with connection.shared.facts_lock:
            connection.shared.facts[_SUPERSEDED_EMPTY] = False
            yield

    def _stored(self, algorithm: str) -> int:
        """About how many rows `h_<algorithm>` holds (counted again after STORED_ROWS_SECONDS)."""
        counted, rows = self._stored_rows.get(algorithm, (0.0, 0))
        if time.monotonic() - counted > STORED_ROWS_SECONDS:
            rows = self._count(self._tables.hashes(algorithm))
            self._stored_rows[algorithm] = (time.monotonic(), rows)
        return rows

    def _count(self, table: str) -> int:
        return int(self._connection.query(f"SELECT count() AS n FROM {table}").values("n")[0])

    def _run_hits(self, make_sql: Callable[[Binder, Tables], str]) -> Hits:
        result = self._read(make_sql)
        return Hits(
            result.array("qi", np.int64),
            result.array("d", np.int64),
            [str(k) for k in result.values("key")],
            result.array("id", np.uint64).view(np.int64),
        )

    def pairs(self, algorithm: str, max_distance: int, *, include_flagged: bool = False) -> Pairs:
        """Every pair within `max_distance`: each live hash is a query of a batched range search
        inside ClickHouse (each pair is reported from both sides)."""
        name = canonical_algorithm(algorithm)
        nbits = self._nbits_of(name)
        empty = np.zeros(0, dtype=np.int64)
        if nbits is None:
            return Pairs(empty, empty, empty, {})
        first: list[npt.NDArray[np.int64]] = []
        second: list[npt.NDArray[np.int64]] = []
        distances: list[npt.NDArray[np.int64]] = []
        keys_by_id: dict[int, str] = {}
        for ids, keys, words in self._stored_pages(name, nbits, include_flagged):
            radius = np.full(len(ids), max_distance, dtype=np.int64)
            hits = self.hits(name, nbits, QueryRows(words, radius), include_flagged)
            first.append(ids[hits.rows])
            second.append(hits.ids)
            distances.append(hits.distances)
            keys_by_id.update(zip(hits.ids.tolist(), hits.keys, strict=True))
            keys_by_id.update(zip(ids.tolist(), keys, strict=True))
        if not first:
            return Pairs(empty, empty, empty, {})
        a, b, d = np.concatenate(first), np.concatenate(second), np.concatenate(distances)
        different = a != b
        a, b, d = a[different], b[different], d[different]
        involved = np.union1d(a, b).tolist()
        entries = {e.id: e for e in self.get_many(keys_by_id[i] for i in involved).values()}
        return Pairs(a, b, d, entries)

    def _stored_pages(
        self, algorithm: str, nbits: int, include_flagged: bool, page: int = 5000
    ) -> Iterator[tuple[npt.NDArray[np.int64], list[str], npt.NDArray[np.uint64]]]:
        words = [f"w{i}" for i in range(word_count(nbits))]
        flag = "" if include_flagged else " AND flagged = 0"
        after = 0
        while True:
            result = self._read(functools.partial(_hashes_after_sql, algorithm, words, flag, after, page))
            if not len(result):
                return
            stacked = np.stack([result.array(w, np.uint64) for w in words], axis=1)
            yield (
                result.array("id", np.uint64).view(np.int64),
                [str(k) for k in result.values("key")],
                stacked,
            )
            after = max(
                int(v) for v in result.values("version")
            )  # shards' pages overlap: repeats are harmless

    # ----- the candidate stage (lookalike.candidates.stage.CandidateSource) ------------------------
    # Entries are named by their live row version (see candidates.py).
    def nominate(
        self,
        family: str,
        layout: KeyLayout,
        words: npt.NDArray[np.uint64],
        include_flagged: bool,
        owners: npt.NDArray[np.int64] | None = None,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        self._version_keys.clear()
        if isinstance(self._connection, ChdbConnection):
            held = held_keys.held(self._connection, family, layout)
            if held is not None:  # a whole-index job holds them (`hold_stored_hashes`)
                return held.probe(words, include_flagged, owners)
        # `owners` is not needed: distinct keys travel once, and ClickHouse sends each back once
        self._ensure_family(family, layout)
        with self._reading() as stale:
            return candidate_sql.nominate(
                self._connection, self._read, self._tables, family, layout, words, include_flagged, stale
            )

    def nominate_exact(
        self, algorithm: str, words: npt.NDArray[np.uint64], radius: int, include_flagged: bool
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        name = canonical_algorithm(algorithm)
        nbits = self._nbits_of(name)
        self._version_keys.clear()
        rows_found: list[npt.NDArray[np.int64]] = []
        ids_found: list[npt.NDArray[np.int64]] = []
        if nbits is not None:
            for start in range(0, len(words), EXACT_ROWS_PER_STATEMENT):
                part = words[start : start + EXACT_ROWS_PER_STATEMENT]
                rows = QueryRows(part, np.full(len(part), radius, dtype=np.int64))
                hits = self.hits(name, nbits, rows, include_flagged)
                versions = self._live_versions(sorted(set(hits.keys)))
                known = np.array([key in versions for key in hits.keys], dtype=bool)
                rows_found.append(hits.rows[known] + start)
                ids_found.append(np.array([versions[k] for k in hits.keys if k in versions], dtype=np.int64))
        if not rows_found:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty.copy()
        return np.concatenate(rows_found), np.concatenate(ids_found)

    def stored_hashes(self, algorithm: str, ids: npt.NDArray[np.int64]) -> StoredHashes:
        from lookalike.candidates.judge import StoredHashes

        name = canonical_algorithm(algorithm)
        nbits = self._nbits_of(name)
        if nbits is None:
            count = len(ids)
            return StoredHashes(
                np.zeros(count, dtype=bool),
                np.zeros((count, 1), dtype=np.uint64),
                np.full(count, np.nan, dtype=np.float32),
                np.zeros(count, dtype=bool),
            )
        return self.stored_hashes_many([name], ids)[name]

    def stored_hashes_many(
        self, algorithms: Sequence[str], ids: npt.NDArray[np.int64]
    ) -> dict[str, StoredHashes]:
        from lookalike.candidates.judge import StoredHashes

        names = {canonical_algorithm(a): a for a in algorithms}
        widths = {name: nbits for name in names if (nbits := self._nbits_of(name)) is not None}
        out: dict[str, StoredHashes] = {}
        if isinstance(self._connection, ChdbConnection):
            for name, table in snapshot.held(self._connection, list(widths)).items():
                out[names[name]] = StoredHashes(*table.lookup(ids))
                del widths[name]
        if widths:
            found = candidate_sql.stored_hashes_many(
                self._connection, self._read, self._tables, widths, ids, self._version_keys
            )
            out.update({names[name]: StoredHashes(*value) for name, value in found.items()})
        for missing in set(algorithms) - set(out):
            out[missing] = self.stored_hashes(missing, ids)
        return out

    def nominate_local(
        self, keys: npt.NDArray[np.uint32], tables: npt.NDArray[np.int64], limit: int | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.uint64]]:
        self._version_keys.clear()
        with self._reading() as stale:
            return candidate_sql.nominate_local(
                self._connection, self._read, self._tables, keys, tables, stale, limit
            )

    def variant_rows(self, algorithm: str) -> list[tuple[int, bytes]]:
        name = canonical_algorithm(algorithm)
        live = candidate_sql.live_versions(self._read)
        self._variant_versions[name] = live
        return candidate_sql.variant_rows(self._read, name, live)

    def stored_regions(
        self, ids: Iterable[int]
    ) -> dict[int, tuple[npt.NDArray[np.uint64], list[tuple[float, float, float, float]]]]:
        return candidate_sql.stored_regions(self._read, np.asarray(list(ids), dtype=np.int64))

    def variant_changes(
        self, algorithm: str, since: str
    ) -> tuple[npt.NDArray[np.int64], list[tuple[int, bytes]]] | None:
        """A version's variants never change (a write makes a new version), so what changed since
        the last read are the versions that stopped or started being live."""
        name = canonical_algorithm(algorithm)
        before = self._variant_versions.get(name)
        if before is None:
            return None
        live = candidate_sql.live_versions(self._read)
        self._variant_versions[name] = live
        gone = np.setdiff1d(before, live, assume_unique=True)
        new = np.setdiff1d(live, before, assume_unique=True)
        return np.concatenate([gone, new]), candidate_sql.variant_rows(self._read, name, live, new)

    def stored_local(
        self, ids: npt.NDArray[np.int64]
    ) -> dict[int, tuple[LocalFeatures, LocalFeatures | None]]:
        return candidate_sql.stored_local(
            self._connection, self._read, self._tables, np.asarray(ids, np.int64)
        )

    def hold_stored_hashes(self, algorithms: Sequence[str]) -> None:
        """On chDB, read the `h_*` tables of `algorithms` and of the other members of their
        candidate families into memory (`snapshot.py`), and build the families' key tables from
        them (`held_keys.py`): judging and probing then happen there until this process writes
        the index. Nothing on a server (other processes write it)."""
        if not isinstance(self._connection, ChdbConnection):
            return
        stored = self._algorithms()
        families: dict[str, tuple[KeyLayout, list[str]]] = {}
        for name in dict.fromkeys(canonical_algorithm(a) for a in algorithms):
            found = family_of(name)
            if found is not None and name in stored and found[0] not in families:
                families[found[0]] = (found[1], _family_members(stored, *found))
        names = dict.fromkeys(canonical_algorithm(a) for a in algorithms)
        names.update(dict.fromkeys(m for _, members in families.values() for m in members))
        widths = {name: nbits for name in names if (nbits := self._nbits_of(name)) is not None}
        snapshot.hold(self._connection, self._tables, widths, lambda: candidate_sql.live_versions(self._read))
        held_keys.hold(self._connection, families)

    def keys_by_id(self, ids: npt.NDArray[np.int64]) -> dict[int, str]:
        wanted = np.asarray(ids, dtype=np.int64)
        known = self._version_keys
        found = {version: known[version] for version in wanted.tolist() if version in known}
        if len(found) < len(wanted) and isinstance(self._connection, ChdbConnection):
            rest = wanted[[version not in found for version in wanted.tolist()]]
            for table in snapshot.snapshots(self._connection).tables.values():
                found.update(table.keys_of(rest))
        if len(found) < len(wanted):
            rest = wanted[[version not in found for version in wanted.tolist()]]
            found.update(candidate_sql.keys_by_version(self._connection, self._read, self._tables, rest))
        return found

    def ids_by_key(self, keys: Sequence[str]) -> dict[str, int]:
        return {key: _signed(version) for key, version in self._live_versions(list(keys)).items()}

    def entries_by_id(self, ids: Iterable[int] | npt.NDArray[np.int64]) -> dict[int, Entry]:
        keys = self.keys_by_id(np.asarray(list(ids), dtype=np.int64))
        found = self.get_many(keys.values())
        return {version: found[key] for version, key in keys.items() if key in found}

    def stored_ids(self) -> npt.NDArray[np.int64]:
        return candidate_sql.live_versions(self._read)

    def stored_variant_words(self, ids: npt.NDArray[np.int64]) -> dict[tuple[int, str], bytes]:
        return candidate_sql.stored_variants(self._connection, self._read, self._tables, ids)

    def fingerprint(self) -> str:
        result = self._connection.query(
            f"SELECT count() AS n, max(version) AS v FROM {self._tables.entries()}"
        )
        stale = self._count(self._tables.superseded())
        # hashes appended under a live version (`add_words`) change no entry row
        hashes = sum(
            self._count(self._tables.hashes(name)) for name in sorted(self._algorithms(refresh=True))
        )
        return f"{result.values('n')[0]}:{result.values('v')[0]}:{stale}:{hashes}"

    # ----- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        if not self._closed:
            self._closed = True
            for shard in self._shards or []:
                shard.close()
            self._connection.close()


def _keys_after_sql(after: str, binder: Binder, tables: Tables) -> str:
    return (
        f"SELECT DISTINCT key FROM {tables.entries()}"
        f" WHERE key > {binder.scalar('after', 'String', after)} AND deleted = 0"
        f" AND {live_filter(tables)} ORDER BY key LIMIT {KEY_PAGE}"
    )


def _hashes_after_sql(
    algorithm: str, words: list[str], flag: str, after: int, page: int, binder: Binder, tables: Tables
) -> str:
    return (
        f"SELECT version, key, sipHash64(key) AS id, {', '.join(words)} FROM {tables.hashes(algorithm)}"
        f" WHERE version > {binder.scalar('after', 'UInt64', after)}{flag} AND {live_filter(tables)}"
        f" ORDER BY version LIMIT {page}"
    )


def _prefilter_sql(
    dialect: Dialect,
    algorithm: str,
    nbits: int,
    rows: QueryRows,
    probes: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]],
    chunk_bits: int,
    include_flagged: bool,
    stale: bool,
    binder: Binder,
    tables: Tables,
) -> str:
    return range_prefilter(
        dialect, tables, algorithm, nbits, rows, probes, chunk_bits, include_flagged, binder, stale
    )


MIGRATION_BATCH = 10_000  # stored local features read at a time when an old index gains signatures

# what a server without ZooKeeper / Keeper answers to ON CLUSTER
_NO_DISTRIBUTED_DDL = ("zookeeper", "keeper", "ddl background thread is not initialized")


def _local_key_columns(stored: Sequence[tuple[int, LocalFeatures]]) -> dict[str, Any]:
    """The `local_keypoints` rows of stored keypoints: (row version, stored compact features) each."""
    from lookalike.local.retrieval import DESCRIPTOR_LAYOUT, descriptor_signatures, descriptor_words

    held = [(version, descriptor_words(features)) for version, features in stored if len(features)]
    if not held:
        return {name: np.zeros(0, np.uint64) for name in LOCAL_KEY_TYPES}
    words = np.concatenate([w for _, w in held])
    owners = np.repeat(np.array([v for v, _ in held], dtype=np.int64), [len(w) for _, w in held])
    return keypoint_rows(owners, DESCRIPTOR_LAYOUT.keys(words), descriptor_signatures(words))


def keypoint_rows(
    owners: npt.NDArray[np.int64], keys: npt.NDArray[np.uint32], signatures: npt.NDArray[np.uint64]
) -> dict[str, npt.NDArray[np.uint64]]:
    """`local_keypoints` columns of keypoints: one row per (keypoint, table), `tk` = table << 32 |
    key, beside the keypoint's row version and signature."""
    tables = keys.shape[1]
    table_keys = keys.astype(np.uint64) | (np.arange(tables, dtype=np.uint64) << np.uint64(32))[None, :]
    return {
        "tk": table_keys.ravel(),
        "version": np.repeat(owners.astype(np.uint64), tables),
        "sig": np.repeat(signatures.astype(np.uint64), tables),
    }


def _hash_columns(
    algorithm: str, nbits: int, keys: list[str], versions: list[int], values: list[Hash]
) -> dict[str, Any]:
    """The columns of an `h_*` insert, built over whole arrays (a bulk load has millions)."""
    width = word_count(nbits)
    packed = b"".join(int(value).to_bytes(8 * width, "big") for value in values)
    words = np.frombuffer(packed, dtype=">u8").astype(np.uint64).reshape(len(values), width)
    quality = np.array([-1 if v.quality is None else int(v.quality) for v in values], dtype=np.int16)
    flagged = _flags(words, nbits, quality)
    columns: dict[str, Any] = {
        "key": keys,
        "version": np.array(versions, dtype=np.uint64),
        "quality": quality,
        "flagged": flagged.astype(np.uint8),
    }
    for i in range(width):
        columns[f"w{i}"] = np.ascontiguousarray(words[:, i])
    return columns


def _family_members(widths: Mapping[str, int], family: str, layout: KeyLayout) -> list[str]:
    """The stored algorithms (name -> bits) whose hashes fill `family`'s key table."""
    return [
        name
        for name, nbits in widths.items()
        if (found := family_of(name)) is not None and found[0] == family and nbits == layout.nbits
    ]


def _bare_name(qualified: str) -> str:
    """`table` of "`database`.`table`"."""
    return qualified.split(".", 1)[1].strip("`")


def _on_cluster(statement: str, cluster: str) -> str:
    """Insert `ON CLUSTER name` after the object name of a CREATE or ALTER TABLE statement."""
    if statement.startswith("ALTER TABLE "):
        name, _, rest = statement[len("ALTER TABLE ") :].partition(" ")
        return f"ALTER TABLE {name} ON CLUSTER `{cluster}` {rest}"
    for marker in ("IF NOT EXISTS ",):
        head, found, tail = statement.partition(marker)
        if found:
            name, _, rest = tail.partition(" ")
            return f"{head}{found}{name} ON CLUSTER `{cluster}` {rest}".rstrip()
    raise ValueError(f"cannot place ON CLUSTER in {statement[:60]!r}")


def _normalise(item: IndexItem | tuple[str, Mapping[str, Hash]], url: str) -> IndexItem:
    return checked_item(item, url)


def _updated_state(item: IndexItem, current: Entry) -> IndexItem | None:
    """The new state of an existing entry after `item`, or None when nothing changes (the same
    rules as the SQLite index: new bytes replace every hash, else hashes and facts merge)."""
    if item.sha256 is not None and current.sha256 is not None and item.sha256 != current.sha256:
        return item
    hashes = {**current.hashes, **item.hashes}
    state = IndexItem(
        item.key,
        hashes,
        item.sha256 or current.sha256,
        item.byte_size if item.byte_size is not None else current.byte_size,
        item.width if item.width is not None else current.width,
        item.height if item.height is not None else current.height,
        item.mtime if item.mtime is not None else current.mtime,
        item.metadata if item.metadata is not None else current.metadata,
        item.origin,  # a write replaces where the key came from
    )
    same_hashes = set(hashes) == set(current.hashes) and all(
        value == current.hashes[name] and value.quality == current.hashes[name].quality
        for name, value in hashes.items()
    )
    same_facts = (
        state.sha256 == current.sha256
        and state.byte_size == current.byte_size
        and state.width == current.width
        and state.height == current.height
        and state.mtime == current.mtime
        and dict(state.metadata or {}) == dict(current.metadata)
        and state.origin == current.origin
    )
    return None if same_hashes and same_facts else state


def _signed(value: int) -> int:
    """The int64 holding the same 64 bits (ids are sipHash64(key), read as signed everywhere)."""
    return value - (1 << 64) if value >> 63 else value


def _flags(rows: npt.NDArray[np.uint64], nbits: int, quality: npt.NDArray[np.int16]) -> npt.NDArray[np.bool_]:
    """`is_flagged` for many hashes at once: quality below the minimum, or all bits equal."""
    ones = popcount(rows).sum(axis=1, dtype=np.int64)
    low_quality = (quality >= 0) & (quality < MIN_QUALITY)
    flat: npt.NDArray[np.bool_] = (ones == 0) | (ones == nbits)
    return low_quality | flat


def _repeat(value: str, count: int) -> Any:
    try:
        import pyarrow as pa
    except ImportError:
        return [value] * count
    return pa.array([value], type=pa.string()).take(np.zeros(count, dtype=np.int64))


def _quality_column(
    quality: Sequence[int | None] | npt.NDArray[np.integer[Any]] | None, count: int
) -> npt.NDArray[np.int16] | None:
    """Quality per hash as int16, -1 where unknown (None)."""
    if quality is None:
        return None
    if isinstance(quality, np.ndarray) and quality.dtype.kind in "iu":
        column = quality.astype(np.int16)
    else:
        column = np.array([-1 if q is None else int(q) for q in quality], dtype=np.int16)
    if len(column) != count:
        raise InvalidHashError(f"{count} hashes but {len(column)} quality values")
    return column
