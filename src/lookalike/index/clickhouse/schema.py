"""The ClickHouse tables of a lookalike index, and the DDL that makes them.

    entries        one row per written version of a key: catalog facts, `deleted` for removals
                   (ReplacingMergeTree(version) ORDER BY key: merges keep only the newest)
    superseded     (key, version) of every row a later write replaced or removed
    algorithms     algorithm name -> bit length
    h_<algorithm>  the hashes: key, version, quality, flagged, w0..w{n-1} (UInt64 big-endian
                   words, as `Hash.words()`), ORDER BY version
    m13_<algorithm>  the multi-index pre-filter (`m_<algorithm>` with 16-bit chunks, the first
                   layout): one row per (hash, chunk of <= 13 bits): `cv` = chunk number * 2**13
                   + chunk value, version, the words; ORDER BY cv in small granules; filled by
                   a materialized view on h_<algorithm>, so one columnar insert feeds both
    k40_<family>   a candidate family's key tables (`lookalike.candidates.keys`): tk = table
                   number << 32 | key, version, flagged; ORDER BY (tk, version); filled by views
                   `kv40_<family>_<algorithm>` on each member's h_ table. The name carries the
                   layout's table count; an index whose key tables have another layout (`k_*`,
                   the first one's 20 tables) gets them rebuilt from its h_ tables when opened

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
from collections.abc import Iterable
from dataclasses import dataclass

from lookalike.candidates.keys import KeyLayout
from lookalike.search.mih import Chunk, chunk_layout

# Chunks of at most 13 bits (64-bit hashes: 13+13+13+13+12): at 10M rows a query with r=10
# probes 147 chunk values reading ~220k rows, where 16-bit chunks probe 428 scattered values;
# ClickHouse pays per range read more than per row. Indexes made with 16-bit chunks (the first
# layout) keep them: their tables carry the old names (`m_*`), newer ones say the width (`m13_*`).
CHUNK_BITS = 13
LEGACY_CHUNK_BITS = 16
LEGACY_KEY_TABLES = 20  # the first candidate key layout's table count (unnamed in `k_*` tables)
PREFILTER_GRANULARITY = 256  # rows per mark in m_*: a probe reads one or two small granules
# Storage tuned for random 64-bit words (ClickHouse >= 21; older servers get the defaults):
# they do not compress, so they are stored raw (no LZ4 pass on insert or read), and m_* keeps
# compressed blocks about one granule long, so a probe reads only the granules it asked for.
PREFILTER_BLOCK_SETTINGS = ", min_compress_block_size = 2048, max_compress_block_size = 8192"
HASH_GRANULARITY = 256  # rows per mark in h_*, read by version
RAW = "CODEC(NONE)"


def word_count(nbits: int) -> int:
    return (nbits + 63) // 64


def prefilter_chunks(nbits: int, chunk_bits: int) -> tuple[Chunk, ...]:
    """The chunks (at most `chunk_bits` wide, never crossing a word) the pre-filter indexes;
    a probe's `cv` is chunk number * 2**chunk_bits + chunk value."""
    return chunk_layout(nbits, 0, chunk_bits)


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

    def variants(self, local: bool = False) -> str:
        return self._name("variants", local)

    def local_features(self, local: bool = False) -> str:
        return self._name("local_features", local)

    def local_keys(self, local: bool = False) -> str:
        """Stored keypoints' descriptor keys and signatures (`lookalike.local.keypoint_tables`)."""
        return self._name("local_keypoints", local)

    def legacy_local_keys(self, local: bool = False) -> str:
        """The keys of an index made before keypoints kept signatures (no `sig` column)."""
        return self._name("local_keys", local)

    def algorithms(self, local: bool = False) -> str:
        return self._name("algorithms", local)

    def hashes(self, algorithm: str, local: bool = False) -> str:
        return self._name(f"h_{algorithm_suffix(algorithm)}", local)

    def prefilter(self, algorithm: str, chunk_bits: int, local: bool = False) -> str:
        return self._name(f"m{_width_tag(chunk_bits)}_{algorithm_suffix(algorithm)}", local)

    def prefilter_view(self, algorithm: str, chunk_bits: int) -> str:
        return self._name(f"mv{_width_tag(chunk_bits)}_{algorithm_suffix(algorithm)}", True)

    def family(self, family: str, layout: KeyLayout, local: bool = False) -> str:
        return self._name(f"k{layout_tag(layout)}_{algorithm_suffix(family)}", local)

    def family_view(self, family: str, layout: KeyLayout, algorithm: str) -> str:
        tag = layout_tag(layout)
        return self._name(f"kv{tag}_{algorithm_suffix(family)}_{algorithm_suffix(algorithm)}", True)

    def is_family_view(self, name: str, family: str, layout: KeyLayout) -> bool:
        """Whether the bare `name` is a view feeding this layout's key table of `family`."""
        return name.startswith(f"kv{layout_tag(layout)}_{algorithm_suffix(family)}_")

    def family_objects(self, family: str, names: Iterable[str]) -> list[str]:
        """The bare names among `names` of any layout's key tables and views of `family` (the
        local and the Distributed table on a cluster)."""
        pattern = re.compile(rf"^kv?\d*_{re.escape(algorithm_suffix(family))}(_local)?($|_)")
        return sorted(name for name in names if pattern.match(name))


def layout_tag(layout: KeyLayout) -> str:
    """What a key table's name says of its layout: its table count (`k35_*`); the first layout
    (20 tables, 3 of the 6 lowest DCT rows) made `k_*` tables before names carried it."""
    return "" if layout.table_count == LEGACY_KEY_TABLES else str(layout.table_count)


def _width_tag(chunk_bits: int) -> str:
    return "" if chunk_bits == LEGACY_CHUNK_BITS else str(chunk_bits)


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
    # comma-separated names of the h_* tables written with this version (`add_words` may append
    # another algorithm's hashes under a live version later: readers look in every h_* table)
    "algorithms": "String",
    "origin": "Nullable(String)",  # where the key came from (index.base.FROM_FILE, ...); added later
}
SUPERSEDED_TYPES = {"key": "String", "version": "UInt64"}
# Each hash's query variants after the first (itself), big-endian words in hex; or the name of the
# entry's hash with the same variants (`same_as`): what a duplicate search searches with.
VARIANT_TYPES = {
    "key": "String",
    "version": "UInt64",
    "algorithm": "String",
    "words": "String",
    "same_as": "String",
    "boxes": "String",  # phash_eq_regions: where each variant's picture lies (region_boxes), hex
}
ALGORITHM_TYPES = {"name": "String", "nbits": "UInt32"}
# Compact keypoints (lookalike.local.features.LocalFeatures.to_bytes), hex; and of the mirror image
LOCAL_TYPES = {"key": "String", "version": "UInt64", "data": "String", "mirrored": "String"}
# The descriptor keys of every stored keypoint (lookalike.local.retrieval): tk = table << 32 | key
LOCAL_KEY_TYPES = {"tk": "UInt64", "version": "UInt64", "sig": "UInt64"}


def origin_ddl(tables: Tables) -> list[str]:
    """ALTER statements that give an index made before origins were recorded its `origin` column
    (NULL, unknown, in every existing row): the shard-local table first, then the Distributed one.
    (No `IF NOT EXISTS`: 18.16 does not know it; the caller looks first.)"""
    names = [tables.entries(True), *([tables.entries()] if tables.cluster else [])]
    return [f"ALTER TABLE {name} ADD COLUMN `origin` {ENTRY_TYPES['origin']}" for name in names]


def variant_boxes_ddl(tables: Tables) -> list[str]:
    """ALTER statements that give an index made before region boxes were stored its `boxes`
    column ('' in every existing row), as `origin_ddl` does for origins."""
    names = [tables.variants(True), *([tables.variants()] if tables.cluster else [])]
    return [f"ALTER TABLE {name} ADD COLUMN `boxes` {VARIANT_TYPES['boxes']}" for name in names]


def hash_types(nbits: int) -> dict[str, str]:
    columns = {"key": "String", "version": "UInt64", "quality": "Int16", "flagged": "UInt8"}
    columns.update({f"w{i}": "UInt64" for i in range(word_count(nbits))})
    return columns


def _columns(types: dict[str, str], raw: frozenset[str] = frozenset()) -> str:
    """Column definitions; the columns named in `raw` are stored without compression."""
    return ", ".join(
        f"`{name}` {type_name}{' ' + RAW if name in raw else ''}" for name, type_name in types.items()
    )


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
        f"CREATE TABLE IF NOT EXISTS {tables.variants(True)} ({_columns(VARIANT_TYPES)})"
        " ENGINE = MergeTree ORDER BY (version, algorithm)",
        f"CREATE TABLE IF NOT EXISTS {tables.local_features(True)} ({_columns(LOCAL_TYPES)})"
        " ENGINE = MergeTree ORDER BY version",
        f"CREATE TABLE IF NOT EXISTS {tables.local_keys(True)} ({_columns(LOCAL_KEY_TYPES)})"
        f" ENGINE = MergeTree ORDER BY (tk, version) SETTINGS index_granularity = {PREFILTER_GRANULARITY}",
    ]


def algorithm_ddl(
    tables: Tables, algorithm: str, nbits: int, chunk_bits: int = CHUNK_BITS, tuned: bool = True
) -> list[str]:
    """CREATE statements for one algorithm's hash table, pre-filter table and view (`tuned`:
    the server takes codecs and per-table compression block sizes, ClickHouse >= 21)."""
    words = [f"w{i}" for i in range(word_count(nbits))]
    raw_hash = frozenset(words) if tuned else frozenset()
    raw_prefilter = frozenset([*words, "version"]) if tuned else frozenset()
    chunks = prefilter_chunks(nbits, chunk_bits)
    values = ", ".join(_chunk_sql(chunk) for chunk in chunks)
    prefilter = tables.prefilter(algorithm, chunk_bits, True)
    prefilter_types = {"cv": "UInt32", "version": "UInt64"}
    prefilter_types.update({w: "UInt64" for w in words})
    word_list = ", ".join(words)
    settings = f"index_granularity = {PREFILTER_GRANULARITY}" + (PREFILTER_BLOCK_SETTINGS if tuned else "")
    # h_* is read by version (the candidate stage's stored hashes, a search's survivors): small
    # granules and blocks, so reading one version costs 256 rows, not 8,192 (which at 10M
    # images made a match read most of every h_* table)
    hash_settings = (
        f" SETTINGS index_granularity = {HASH_GRANULARITY}{PREFILTER_BLOCK_SETTINGS}" if tuned else ""
    )
    return [
        f"CREATE TABLE IF NOT EXISTS {tables.hashes(algorithm, True)}"
        f" ({_columns(hash_types(nbits), raw_hash)}) ENGINE = MergeTree ORDER BY version{hash_settings}",
        f"CREATE TABLE IF NOT EXISTS {prefilter}"
        f" ({_columns(prefilter_types, raw_prefilter)}) ENGINE = MergeTree ORDER BY cv SETTINGS {settings}",
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {tables.prefilter_view(algorithm, chunk_bits)}"
        f" TO {prefilter}"
        f" AS SELECT toUInt32((chunk_number - 1) * {1 << chunk_bits} + chunk_value) AS cv,"
        f" version, {word_list}"
        f" FROM {tables.hashes(algorithm, True)}"
        f" ARRAY JOIN arrayEnumerate([{values}]) AS chunk_number, [{values}] AS chunk_value",
    ]


# tk = table number << 32 | key: one sortable column, so a probe set prunes by primary key
FAMILY_TYPES = {"tk": "UInt64", "version": "UInt64", "flagged": "UInt8"}


def _hash_byte_sql(layout: KeyLayout, byte: int) -> str:
    """Key byte `byte` of a hash (`KeyLayout.byte_bits`) from its big-endian words w0, w1, ...:
    a whole byte of a word, or 8 bits gathered from a column of the hash."""
    positions = layout.byte_bits(byte)
    if positions == tuple(range(positions[0], positions[0] + 8)) and positions[0] % 8 == 0:
        return f"bitAnd(bitShiftRight(w{byte // 8}, {56 - 8 * (byte % 8)}), 255)"
    bits = [
        f"bitShiftLeft(bitAnd(bitShiftRight(w{p // 64}, {63 - p % 64}), 1), {7 - i})"
        for i, p in enumerate(positions)
    ]
    gathered = bits[0]
    for bit in bits[1:]:
        gathered = f"bitOr({gathered}, {bit})"
    return gathered


def family_keys_select(layout: KeyLayout, source: str) -> str:
    """SELECT of (tk, version, flagged) rows, one per key table (tk = table number << 32 | key),
    from a hash table: the candidate keys of `lookalike.candidates.keys`, computed by ClickHouse."""
    keys = []
    for chosen in layout.tables:
        key = _hash_byte_sql(layout, chosen[0])
        for byte in chosen[1:]:
            key = f"bitOr(bitShiftLeft({key}, 8), {_hash_byte_sql(layout, byte)})"
        keys.append(f"toUInt64({key})")
    listed = ", ".join(keys)
    return (
        "SELECT bitOr(bitShiftLeft(toUInt64(table_number - 1), 32), table_key) AS tk, version, flagged"
        f" FROM {source} ARRAY JOIN arrayEnumerate([{listed}]) AS table_number, [{listed}] AS table_key"
    )


def family_ddl(tables: Tables, family: str, layout: KeyLayout, tuned: bool = True) -> str:
    """The key table of a candidate family: rows (table number and key, row version), sorted by
    key so a probe reads one granule; ReplacingMergeTree folds the rows two algorithms of the
    family give for the same hash (an untrimmed picture's trimmed hash). `tuned` (ClickHouse >=
    21): compressed blocks about a granule long, so a probe decompresses 2-8 KiB per column, not
    the 64 KiB default block (at 100,000 images a match's ~2,000 probes went from 74 to 13 ms
    with one part)."""
    return (
        f"CREATE TABLE IF NOT EXISTS {tables.family(family, layout, True)} ({_columns(FAMILY_TYPES)})"
        " ENGINE = ReplacingMergeTree ORDER BY (tk, version)"
        f" SETTINGS index_granularity = {PREFILTER_GRANULARITY}{PREFILTER_BLOCK_SETTINGS if tuned else ''}"
    )


def family_view_ddl(tables: Tables, family: str, layout: KeyLayout, algorithm: str) -> str:
    """The view that fills a family's key table from one member algorithm's hash table."""
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {tables.family_view(family, layout, algorithm)}"
        f" TO {tables.family(family, layout, True)}"
        f" AS {family_keys_select(layout, tables.hashes(algorithm, True))}"
    )


def distributed_ddl(tables: Tables, local: str, distributed: str, shard_by: str = "key") -> str:
    """A Distributed table over `local` on every shard, rows placed by `shard_by` (the key)."""
    assert tables.cluster is not None
    database, table = (part.strip("`") for part in local.split("."))
    return (
        f"CREATE TABLE IF NOT EXISTS {distributed} AS {local}"
        f" ENGINE = Distributed(`{tables.cluster}`, `{database}`, `{table}`, sipHash64({shard_by}))"
    )
