"""The ClickHouse tables of a lookalike index, and the DDL that makes them.

    entries        one row per written version of a key: catalog facts, `deleted` for removals
                   (ReplacingMergeTree(version) ORDER BY key: merges keep only the newest)
    superseded     (key, version) of every row a later write replaced or removed
    algorithms     algorithm name -> bit length
    h_<algorithm>  the hashes: key, version, quality, flagged, w0..w{n-1} (UInt64 big-endian
                   words, as `Hash.words()`), ORDER BY version
    m_<algorithm>  the multi-index pre-filter: one row per (hash, 16-bit chunk), `cv` =
                   chunk number * 65536 + chunk value, ORDER BY cv; filled by a materialized view
                   on h_<algorithm>, so one columnar insert feeds both

A row is live when its (key, version) is not in `superseded` (and, in `entries`, not deleted).
Searches filter on that instead of `FINAL`: the anti-join reads only the few rows that already
passed the distance test, and it stays exact with the pre-filter, which `FINAL` cannot use.

On a cluster every table above is a `_local` table on each shard plus a Distributed table of the
plain name, sharded by `sipHash64(key)`, so all rows of a key (every version, its superseded
marks, its pre-filter rows) live on one shard and each shard answers liveness alone.

Identifiers come only from code: table names from the canonical algorithm name (registry names or
`[a-z0-9_.:-]` words) made safe and suffixed with a digest, never from query values.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from lookalike.search.mih import Chunk, chunk_layout

CHUNK_BITS = 16
PREFILTER_GRANULARITY = 1024  # rows per mark in m_*: a probe reads ~one small granule


def word_count(nbits: int) -> int:
    return (nbits + 63) // 64


def prefilter_chunks(nbits: int) -> tuple[Chunk, ...]:
    """The 16-bit chunks (at most; never crossing a word) that the pre-filter indexes."""
    return chunk_layout(nbits, 0, CHUNK_BITS)


def algorithm_suffix(algorithm: str) -> str:
    """A table-name suffix for an algorithm: its letters and digits plus a digest (no collisions)."""
    readable = re.sub(r"[^a-z0-9]+", "_", algorithm.lower()).strip("_")[:40]
    digest = hashlib.blake2b(algorithm.encode(), digest_size=4).hexdigest()
    return f"{readable}_{digest}"


@dataclass(frozen=True)
class Tables:
    """Qualified table names for one index (a database, optionally a cluster)."""

    database: str
    cluster: str | None = None
    local_only: bool = False  # every name is the shard-local table (reads sent to each shard)

    def _name(self, base: str, local: bool) -> str:
        suffix = "_local" if (local or self.local_only) and self.cluster else ""
        return f"`{self.database}`.`{base}{suffix}`"

    def entries(self, local: bool = False) -> str:
        return self._name("entries", local)

    def superseded(self, local: bool = False) -> str:
        return self._name("superseded", local)

    def algorithms(self, local: bool = False) -> str:
        return self._name("algorithms", local)

    def hashes(self, algorithm: str, local: bool = False) -> str:
        return self._name(f"h_{algorithm_suffix(algorithm)}", local)

    def prefilter(self, algorithm: str, local: bool = False) -> str:
        return self._name(f"m_{algorithm_suffix(algorithm)}", local)

    def prefilter_view(self, algorithm: str) -> str:
        return self._name(f"mv_{algorithm_suffix(algorithm)}", True)


ENTRY_TYPES = {
    "key": "String",
    "version": "UInt64",
    "deleted": "UInt8",
    "sha256": "Nullable(String)",
    "byte_size": "Nullable(Int64)",
    "width": "Nullable(Int32)",
    "height": "Nullable(Int32)",
    "mtime": "Nullable(Float64)",
    "added_at": "Float64",
    "metadata": "String",
    "algorithms": "String",  # comma-separated names of the h_* tables holding this version
}
SUPERSEDED_TYPES = {"key": "String", "version": "UInt64"}
ALGORITHM_TYPES = {"name": "String", "nbits": "UInt32"}


def hash_types(nbits: int) -> dict[str, str]:
    columns = {"key": "String", "version": "UInt64", "quality": "Int16", "flagged": "UInt8"}
    columns.update({f"w{i}": "UInt64" for i in range(word_count(nbits))})
    return columns


def _columns(types: dict[str, str]) -> str:
    return ", ".join(f"`{name}` {type_name}" for name, type_name in types.items())


def _chunk_sql(chunk: Chunk) -> str:
    shifted = f"bitShiftRight(w{chunk.word}, {chunk.shift})" if chunk.shift else f"w{chunk.word}"
    return f"bitAnd({shifted}, {(1 << chunk.width) - 1})"


def base_ddl(tables: Tables) -> list[str]:
    """CREATE statements for the tables every index has (local tables on a cluster)."""
    return [
        f"CREATE TABLE IF NOT EXISTS {tables.entries(True)} ({_columns(ENTRY_TYPES)})"
        " ENGINE = ReplacingMergeTree(version) ORDER BY key",
        f"CREATE TABLE IF NOT EXISTS {tables.superseded(True)} ({_columns(SUPERSEDED_TYPES)})"
        " ENGINE = MergeTree ORDER BY (key, version)",
        f"CREATE TABLE IF NOT EXISTS {tables.algorithms(True)} ({_columns(ALGORITHM_TYPES)})"
        " ENGINE = MergeTree ORDER BY name",
    ]


def algorithm_ddl(tables: Tables, algorithm: str, nbits: int) -> list[str]:
    """CREATE statements for one algorithm's hash table, pre-filter table and view."""
    words = [f"w{i}" for i in range(word_count(nbits))]
    chunks = prefilter_chunks(nbits)
    values = ", ".join(_chunk_sql(chunk) for chunk in chunks)
    prefilter_types = {"cv": "UInt32", "version": "UInt64", "flagged": "UInt8"}
    prefilter_types.update({w: "UInt64" for w in words})
    word_list = ", ".join(words)
    return [
        f"CREATE TABLE IF NOT EXISTS {tables.hashes(algorithm, True)} ({_columns(hash_types(nbits))})"
        " ENGINE = MergeTree ORDER BY version",
        f"CREATE TABLE IF NOT EXISTS {tables.prefilter(algorithm, True)} ({_columns(prefilter_types)})"
        f" ENGINE = MergeTree ORDER BY cv SETTINGS index_granularity = {PREFILTER_GRANULARITY}",
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {tables.prefilter_view(algorithm)}"
        f" TO {tables.prefilter(algorithm, True)}"
        f" AS SELECT toUInt32((chunk_number - 1) * {1 << CHUNK_BITS} + chunk_value) AS cv,"
        f" version, flagged, {word_list}"
        f" FROM {tables.hashes(algorithm, True)}"
        f" ARRAY JOIN arrayEnumerate([{values}]) AS chunk_number, [{values}] AS chunk_value",
    ]


def distributed_ddl(tables: Tables, local: str, distributed: str, shard_by: str = "key") -> str:
    """A Distributed table over `local` on every shard, rows placed by `shard_by` (the key)."""
    assert tables.cluster is not None
    database, table = (part.strip("`") for part in local.split("."))
    return (
        f"CREATE TABLE IF NOT EXISTS {distributed} AS {local}"
        f" ENGINE = Distributed(`{tables.cluster}`, `{database}`, `{table}`, sipHash64({shard_by}))"
    )
