"""Each algorithm's hash rows in a table of its own, keyed by entry id (schema 5).

One `hashes_<n>` rowid table per algorithm (`algorithms.hash_table` names it): a bulk add of
new entries appends at the end of its B-tree instead of splitting pages in the middle of one
table keyed by (algorithm, entry), and the rows carry no algorithm name. A store in memory
catches up by generation: a row written by a small write is stamped and indexed by `rev`
(a partial index); a bulk append of entries above every id the table has held is stamped but
not indexed (the index was half of a bulk add's time) and logged instead as one id range in
`hash_appends`. "Rows written after generation g" is the indexed rows with `rev > g` plus the
appended rows inside the ranges logged after g: a range starts above every id its table held
before it, so nothing inside it is older. The view `hashes` (algorithm, entry_id, value, words,
quality, flagged, rev) unions the tables for reads of a few entries and for ad-hoc SQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

HASH_COLUMNS = "entry_id, value, words, quality, flagged, rev"
_VIEW_COLUMNS = f"algorithm, {HASH_COLUMNS}"
_EMPTY_VIEW = f"SELECT {', '.join(f'NULL AS {c.strip()}' for c in _VIEW_COLUMNS.split(','))} WHERE 0"

SCHEMA = """
CREATE TABLE IF NOT EXISTS hash_appends (
    hash_table TEXT NOT NULL,
    rev INTEGER NOT NULL,       -- the generation of the bulk write
    first INTEGER NOT NULL,     -- its appended rows' entry ids lie in first..last
    last INTEGER NOT NULL,
    PRIMARY KEY (hash_table, rev)
) WITHOUT ROWID;
"""


def _table_sql(table: str) -> list[str]:
    return [
        f"CREATE TABLE {table} (entry_id INTEGER PRIMARY KEY, value INTEGER, words BLOB,"
        " quality INTEGER, flagged INTEGER NOT NULL DEFAULT 0, rev INTEGER NOT NULL,"
        " appended INTEGER NOT NULL DEFAULT 0)",
        f"CREATE INDEX {table}_by_rev ON {table}(rev) WHERE appended = 0",
    ]


def hash_tables(db: sqlite3.Connection) -> dict[str, str]:
    """Every stored algorithm's hash table, by algorithm."""
    return {name: table for name, table in db.execute("SELECT name, hash_table FROM algorithms")}


def add_algorithm(db: sqlite3.Connection, algorithm: str, nbits: int) -> str:
    """Register a new algorithm, create its table and show it in the view; returns the table.
    Call inside the write transaction that stores its first rows."""
    used = [int(table.rsplit("_", 1)[1]) for table in hash_tables(db).values() if table]
    table = f"hashes_{max(used, default=0) + 1}"
    for statement in _table_sql(table):
        db.execute(statement)
    db.execute("INSERT INTO algorithms (name, nbits, hash_table) VALUES (?, ?, ?)", (algorithm, nbits, table))
    rebuild_view(db)
    return table


def rebuild_view(db: sqlite3.Connection) -> None:
    """The view `hashes` over every algorithm's table (an empty one before the first)."""
    arms = [
        f"SELECT {_quoted(name)} AS algorithm, {HASH_COLUMNS} FROM {table}"
        for name, table in sorted(hash_tables(db).items())
    ]
    db.execute("DROP VIEW IF EXISTS hashes")
    db.execute(f"CREATE VIEW hashes AS {' UNION ALL '.join(arms) or _EMPTY_VIEW}")


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def migrate_single_table(db: sqlite3.Connection) -> None:
    """Schema 4 -> 5: move the one `hashes` table's rows into a table per algorithm. Every row
    is indexed by its generation, as before, so stores and snapshots made before catch up."""
    if "hash_table" not in {row[1] for row in db.execute("PRAGMA table_info(algorithms)")}:
        db.execute("ALTER TABLE algorithms ADD COLUMN hash_table TEXT")
    kind = db.execute("SELECT type FROM sqlite_master WHERE name = 'hashes'").fetchone()
    if kind is None or kind[0] != "table":
        rebuild_view(db)
        return
    db.execute("ALTER TABLE hashes RENAME TO hashes_schema4")
    names = [row[0] for row in db.execute("SELECT name FROM algorithms ORDER BY name")]
    for number, name in enumerate(names, start=1):
        table = f"hashes_{number}"
        for statement in _table_sql(table):
            db.execute(statement)
        db.execute(
            f"INSERT INTO {table} ({HASH_COLUMNS}) SELECT {HASH_COLUMNS} FROM hashes_schema4"
            " WHERE algorithm = ? ORDER BY entry_id",
            (name,),
        )
        db.execute("UPDATE algorithms SET hash_table = ? WHERE name = ?", (table, name))
    db.execute("DROP TABLE hashes_schema4")  # its index hashes_by_rev goes with it
    rebuild_view(db)


def append_floor(db: sqlite3.Connection, table: str) -> int:
    """The highest entry id `table` has ever held a row for (stored, or appended and removed
    since): a bulk write's rows above it are appends."""
    stored = db.execute(f"SELECT max(entry_id) FROM {table}").fetchone()[0]
    logged = db.execute("SELECT max(last) FROM hash_appends WHERE hash_table = ?", (table,)).fetchone()[0]
    return max(stored or 0, logged or 0)


def log_append(db: sqlite3.Connection, table: str, generation: int, first: int, last: int) -> None:
    """Record that the write of `generation` appended rows with entry ids in first..last."""
    db.execute(
        "INSERT INTO hash_appends (hash_table, rev, first, last) VALUES (?, ?, ?, ?)",
        (table, generation, first, last),
    )


def rows_since_sql(table: str, columns: str) -> str:
    """A query for `columns` of `table`'s rows written after generation ? (bind it twice)."""
    prefixed = ", ".join(f"h.{c.strip()}" for c in columns.split(","))
    return (
        f"SELECT {columns} FROM {table} WHERE appended = 0 AND rev > ?"
        f" UNION ALL SELECT {prefixed} FROM hash_appends AS a CROSS JOIN {table} AS h"
        " ON h.entry_id BETWEEN a.first AND a.last"
        f" WHERE a.hash_table = {_quoted(table)} AND a.rev > ? AND h.appended = 1"
    )


def rows_since(db: sqlite3.Connection, table: str, columns: str, after: int) -> sqlite3.Cursor:
    """`columns` of every row of `table` written after generation `after` (all when 0)."""
    if after <= 0:
        return db.execute(f"SELECT {columns} FROM {table}")
    return db.execute(rows_since_sql(table, columns), (after, after))


def delete_entries(db: sqlite3.Connection, ids: Sequence[int]) -> None:
    """Delete every hash row of the given entries, in every algorithm's table."""
    for table in hash_tables(db).values():
        db.executemany(f"DELETE FROM {table} WHERE entry_id = ?", [(i,) for i in ids])
