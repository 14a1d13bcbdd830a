"""Compaction: physically drop the rows later writes replaced, then forget them in `superseded`.

Searches hide a replaced row by its (key, version) in `superseded`; the row itself stays in
`entries`, `h_*` and `m_*` until this runs. On one server (or chDB, or each shard of a cluster):

1. copy `superseded` into a scratch table: the rows to drop (writes arriving later wait for the
   next compaction);
2. delete those rows, and removal tombstones, from `entries`, every `h_*` and `m_*`
   (ALTER ... DELETE, waited for);
3. wait until every query already running when step 2 ends has finished: such a query may still
   read the old parts, so it must keep finding the dropped rows in `superseded`;
4. delete the copied rows from `superseded` and drop the scratch table.

A reader therefore sees every stale row either filtered by `superseded` or gone; never both
missing. A failure leaves a consistent index (rows dropped but still listed is harmless).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Mapping, Sequence

from lookalike.candidates.keys import KeyLayout
from lookalike.errors import IndexStoreError
from lookalike.index.clickhouse.connection import Connection
from lookalike.index.clickhouse.schema import Tables, word_count

WAIT_SECONDS = 900.0  # for a mutation, or for queries older than it, before giving up
_SCRATCH = itertools.count()
_MARK = "lookalike-compaction"  # in the text of our own polls, so they never wait for themselves


def compact_site(
    connection: Connection,
    tables: Tables,
    algorithms: Mapping[str, tuple[int, int]],
    modern: bool,
    families: Sequence[tuple[str, KeyLayout]] = (),
) -> int:
    """Compact the tables one server holds (`tables` names its local tables; `algorithms` maps
    each algorithm to its bit length and pre-filter chunk width); returns how many superseded
    rows were dropped.
    `modern`: the server has `mutations_sync` (>= 21); `families`: the candidate families (and
    their key layouts) whose key tables exist (their rows go by version)."""
    scratch = f"`{tables.database}`.`compacting_{os.getpid()}_{next(_SCRATCH)}`"
    connection.execute(
        f"CREATE TABLE {scratch} (key String, version UInt64) ENGINE = MergeTree ORDER BY (key, version)"
    )
    try:
        connection.execute(f"INSERT INTO {scratch} SELECT key, version FROM {tables.superseded(True)}")
        stale = _count(connection, f"SELECT count() AS n FROM {scratch}")
        tombstones = _count(connection, f"SELECT count() AS n FROM {tables.entries(True)} WHERE deleted = 1")
        if stale == 0 and tombstones == 0:
            return 0
        listed = f"(key, version) IN (SELECT key, version FROM {scratch})"
        _delete(connection, tables.entries(True), f"deleted = 1 OR {listed}", modern)
        for algorithm, (nbits, chunk_bits) in algorithms.items():
            # m_* rows have no key: they go by (version, words) of the listed h_* rows, first
            row = ", ".join(["version", *(f"w{i}" for i in range(word_count(nbits)))])
            hashes = tables.hashes(algorithm, True)
            stale_rows = f"({row}) IN (SELECT {row} FROM {hashes} WHERE {listed})"
            _delete(connection, tables.prefilter(algorithm, chunk_bits, True), stale_rows, modern)
            _delete(connection, hashes, listed, modern)
        for family, layout in families:
            stale_versions = f"version IN (SELECT version FROM {scratch})"
            _delete(connection, tables.family(family, layout, True), stale_versions, modern)
        _delete(connection, tables.variants(True), listed, modern)
        _delete(connection, tables.local_features(True), listed, modern)
        _delete(connection, tables.local_keys(True), f"version IN (SELECT version FROM {scratch})", modern)
        _wait_for_older_queries(connection, tables.database)
        _delete(connection, tables.superseded(True), listed, modern)
        return stale
    finally:
        connection.execute(f"DROP TABLE IF EXISTS {scratch}")


def _count(connection: Connection, sql: str) -> int:
    return int(connection.query(sql).values("n")[0])


def _delete(connection: Connection, table: str, condition: str, modern: bool) -> None:
    """ALTER TABLE ... DELETE, returning once the mutation has rewritten every part."""
    settings = " SETTINGS mutations_sync = 2" if modern else ""
    connection.execute(f"ALTER TABLE {table} DELETE WHERE {condition}{settings}")
    database, name = (part.strip("`") for part in table.split("."))
    _poll(connection, f"compaction of {table}", lambda: _pending_mutations(connection, database, name) == 0)


def _pending_mutations(connection: Connection, database: str, table: str) -> int:
    binder = connection.binder()
    result = connection.query(
        f"SELECT count() AS n FROM system.mutations WHERE is_done = 0"
        f" AND database = {binder.scalar('db', 'String', database)}"
        f" AND table = {binder.scalar('t', 'String', table)}",
        binder,
    )
    return int(result.values("n")[0])


def _wait_for_older_queries(connection: Connection, database: str) -> None:
    """Return once every query now running on this server that names `database` has ended."""
    waiting: set[str] | None = None

    def ended() -> bool:
        nonlocal waiting
        binder = connection.binder()
        running = connection.query(
            f"SELECT query_id FROM system.processes /* {_MARK} */"
            f" WHERE position(query, {binder.scalar('db', 'String', database)}) > 0"
            f" AND position(query, {binder.scalar('mark', 'String', _MARK)}) = 0",
            binder,
        )
        now = {str(query_id) for query_id in running.values("query_id")}
        waiting = now if waiting is None else waiting & now
        return not waiting

    _poll(connection, "compaction waiting for older queries", ended)


def _poll(connection: Connection, what: str, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    pause = 0.005
    while not done():
        if time.monotonic() > deadline:
            raise IndexStoreError(f"{connection.url}: {what} did not finish in {WAIT_SECONDS:.0f} s")
        time.sleep(pause)
        pause = min(0.5, pause * 2)
