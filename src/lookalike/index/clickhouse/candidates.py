"""The candidate stage on ClickHouse: key probes as a join, stored hashes fetched by row version.

A candidate family's keys live in `k40_<family>` (filled by a materialized view on each member's
`h_*` table, `schema.family_view_ddl`), sorted by (table, key). A batch of probes becomes a table
(an Arrow stream into a scratch Memory table on chDB, external data on a server), the key table
is read only where its primary key meets a probed key, and the join hands back (probe row, row
version) pairs; ClickHouse never materialises the batch per stored row, so memory follows the
probes, not the table. Every statement carries a memory ceiling: past it ClickHouse stops the
query and lookalike reports a clean `IndexStoreError` instead of exhausting the machine.

Entries are named by their live row version here (every hash of one written state shares it, and
`h_*` tables are sorted by it), so judging a candidate reads its hashes by primary key.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from lookalike.candidates.batch import REGION_ALGORITHM, regions_of_rows
from lookalike.candidates.keys import KeyLayout
from lookalike.index.clickhouse.binding import Binder
from lookalike.index.clickhouse.connection import ChdbConnection, Connection, Result
from lookalike.index.clickhouse.schema import Tables, word_count
from lookalike.index.clickhouse.sql import live_filter
from lookalike.local.features import LocalFeatures
from lookalike.search.mih import expand_ranges
from lookalike.sorted_arrays import distinct_sorted, sorted_unique

Ids = npt.NDArray[np.int64]
PROBES_PER_STATEMENT = 250_000
IDS_PER_STATEMENT = 100_000
STAGE_ABOVE = 5_000  # bound tables larger than this travel to chDB as Arrow into a scratch table
MEMORY_CEILING = 2_000_000_000  # bytes a candidate statement may use (max_memory_usage)
# Threads per candidate statement: each reads and joins its own blocks, so memory grows with the
# thread count, which ClickHouse sets to the machine's cores; a probe join gains little past 4.
STATEMENT_THREADS = int(os.environ.get("LOOKALIKE_CLICKHOUSE_THREADS", min(os.cpu_count() or 1, 4)))
SETTINGS = f" SETTINGS max_memory_usage = {MEMORY_CEILING}, max_threads = {STATEMENT_THREADS}"
# A statement with a few thousand probes (one match) reads as many small granule ranges: one
# thread does it faster than several (no splitting of ranges between threads, no merging of
# their outputs); measured 20 ms against 34 ms with two threads here at 10,000 images.
ONE_THREAD_BELOW = 20_000
_SCRATCH = itertools.count()

Column = tuple[str, Sequence[Any] | npt.NDArray[Any]]


Read = Callable[[Callable[[Binder, Tables], str]], Result]


def query_with_table(
    connection: Connection,
    read: Read,
    tables: Tables,
    name: str,
    columns: Mapping[str, Column],
    make_sql: Callable[[str, Tables], str],
) -> Result:
    """Run `make_sql(table expression, tables)` with `columns` bound as a table: on chDB a large
    batch goes in as Arrow (a scratch Memory table); otherwise through `read`, which binds the
    values and, on a cluster of old servers, runs the statement on each shard's local tables."""
    count = len(next(iter(columns.values()))[1]) if columns else 0
    if count > STAGE_ABOVE and isinstance(connection, ChdbConnection):
        with bound_table(connection, connection.binder(), tables.database, name, columns) as table:
            return connection.query(make_sql(table, tables))
    listed = {c: (t, list(np.asarray(v).tolist())) for c, (t, v) in columns.items()}
    return read(lambda binder, site_tables: make_sql(binder.table(name, listed), site_tables))


def settings(count: int) -> str:
    """The SETTINGS clause of a candidate statement over `count` probed values."""
    threads = 1 if count < ONE_THREAD_BELOW else STATEMENT_THREADS
    return f" SETTINGS max_memory_usage = {MEMORY_CEILING}, max_threads = {threads}"


def query_with_set(
    connection: Connection,
    read: Read,
    tables: Tables,
    name: str,
    type_name: str,
    values: npt.NDArray[Any],
    make_sql: Callable[[str, Tables], str],
) -> Result:
    """Run `make_sql(set expression, tables)` with the candidate statements' `settings`, where the
    set expression (what follows `IN`) holds `values`: a constant set when small (the primary key
    analysis reads it as it parses, with no subquery to run first), on chDB a scratch table filled
    from Arrow when large."""
    tail = settings(len(values))
    if len(values) > STAGE_ABOVE and isinstance(connection, ChdbConnection):
        columns: dict[str, Column] = {"v": (type_name, values)}
        with bound_table(connection, connection.binder(), tables.database, name, columns) as table:
            return connection.query(make_sql(table, tables) + tail)
    listed = np.asarray(values).tolist()
    return read(lambda binder, site: make_sql(binder.in_set(name, type_name, listed), site) + tail)


@contextmanager
def bound_table(
    connection: Connection, binder: Binder, database: str, name: str, columns: Mapping[str, Column]
) -> Iterator[str]:
    """A table expression holding `columns`: bound values when small or on a server, else an
    Arrow stream into a scratch Memory table that is dropped afterwards."""
    count = len(next(iter(columns.values()))[1]) if columns else 0
    if count <= STAGE_ABOVE or not isinstance(connection, ChdbConnection):
        yield binder.table(name, {c: (t, list(np.asarray(v).tolist())) for c, (t, v) in columns.items()})
        return
    scratch = f"`{database}`.`scratch_{name}_{os.getpid()}_{next(_SCRATCH)}`"
    structure = ", ".join(f"`{column}` {type_name}" for column, (type_name, _) in columns.items())
    connection.execute(f"CREATE TABLE {scratch} ({structure}) ENGINE = Memory")
    try:
        connection.insert(
            scratch, {c: v for c, (_, v) in columns.items()}, {c: t for c, (t, _) in columns.items()}
        )
        yield scratch
    finally:
        connection.execute(f"DROP TABLE IF EXISTS {scratch}")


def nominate(
    connection: Connection,
    read: Read,
    tables: Tables,
    family: str,
    layout: KeyLayout,
    words: npt.NDArray[np.uint64],
    include_flagged: bool,
    stale: bool,
) -> tuple[Ids, Ids]:
    """(row of `words`, row version) for every live stored hash of `family` sharing a key."""
    flag = "" if include_flagged else " AND flagged = 0"
    met = probe_keys(
        connection, read, tables, layout, words, stale, lambda site: site.family(family, layout), flag
    )
    return met.owners, met.versions


def nominate_local(
    connection: Connection,
    read: Read,
    tables: Tables,
    keys: npt.NDArray[np.uint32],
    table_numbers: Ids,
    stale: bool,
    limit: int | None = None,
) -> tuple[Ids, Ids, npt.NDArray[np.uint64]]:
    """(probe, row version, keypoint signature) for every live stored keypoint whose descriptor
    key in table `table_numbers[p]` is `keys[p]`; with `limit`, keys that many keypoints hold
    return none (counted and dropped in ClickHouse: at a million images the commonest keys hold
    thousands)."""
    table_keys = (table_numbers.astype(np.uint64) << np.uint64(32)) | keys.astype(np.uint64)
    probes, owners = _sorted_probes(table_keys[:, None])
    met = _meet(
        connection, read, tables, probes, owners, stale, lambda site: site.local_keys(), "", limit, True
    )
    return met.owners, met.versions, met.signatures


def probe_keys(
    connection: Connection,
    read: Read,
    tables: Tables,
    layout: KeyLayout,
    words: npt.NDArray[np.uint64],
    stale: bool,
    table_of: Callable[[Tables], str],
    condition: str,
) -> Meetings:
    """(row of `words`, row version, table number) for every live stored row of a key table
    sharing a key with a row of `words`."""
    keys = layout.keys(words).astype(np.uint64)
    tables_of = np.arange(layout.table_count, dtype=np.uint64) << np.uint64(32)
    probes, owners = _sorted_probes(keys | tables_of[None, :])
    return _meet(connection, read, tables, probes, owners, stale, table_of, condition, None)


@dataclass(frozen=True)
class Meetings:
    """Stored key rows met by probes: the probe's owner, the row's version and table number, and
    (of keypoint rows) the keypoint's signature."""

    owners: Ids
    versions: Ids
    table_numbers: Ids
    signatures: npt.NDArray[np.uint64]


def _meet(
    connection: Connection,
    read: Read,
    tables: Tables,
    probes: npt.NDArray[np.uint64],
    owners: Ids,
    stale: bool,
    table_of: Callable[[Tables], str],
    condition: str,
    limit: int | None,
    signatures: bool = False,
) -> Meetings:
    """(owner, row version, table number) of every live stored row of a key table whose
    `table << 32 | key` is one of the sorted `probes` (`owners` beside them), and with
    `signatures` each row's `sig`.

    ClickHouse reads the key table where its primary key meets the probed keys and returns
    (key, version); which probe rows asked for each key is known here, so the join back to the
    rows is a sorted lookup in NumPy, not a join in SQL."""
    distinct = distinct_sorted(probes)
    found_tk: list[npt.NDArray[np.uint64]] = []
    found_version: list[Ids] = []
    found_sig: list[npt.NDArray[np.uint64]] = []
    sig, sigs = (", sig", ", groupArray(sig) AS sigs") if signatures else ("", "")
    for start in range(0, len(distinct), PROBES_PER_STATEMENT):
        chunk = distinct[start : start + PROBES_PER_STATEMENT]

        def sql(probed: str, site: Tables) -> str:
            # k rows live on the shard of their entry (the views fill local tables), so liveness
            # is decided per shard against the local `superseded`
            live = f" AND version NOT IN (SELECT version FROM {site.superseded(True)})" if stale else ""
            rows = f"FROM {table_of(site)} WHERE tk IN {probed}{condition}{live}"
            if limit is None:
                return f"SELECT tk, version{sig} {rows}"
            joined = "versions AS version, sigs AS sig" if signatures else "versions AS version"
            return (
                f"SELECT tk, version{sig} FROM "
                f"(SELECT tk, groupArray(version) AS versions{sigs} {rows} "
                f"GROUP BY tk HAVING count() < {int(limit)}) ARRAY JOIN {joined}"
            )

        result = query_with_set(connection, read, tables, "probes", "UInt64", chunk, sql)
        found_tk.append(result.array("tk", np.uint64))
        found_version.append(result.array("version", np.uint64).view(np.int64))
        if signatures:
            found_sig.append(result.array("sig", np.uint64))
    if not found_tk:
        empty = np.zeros(0, dtype=np.int64)
        return Meetings(empty, empty.copy(), empty.copy(), np.zeros(0, dtype=np.uint64))
    tk, version = np.concatenate(found_tk), np.concatenate(found_version)
    low = np.searchsorted(probes, tk, side="left")
    high = np.searchsorted(probes, tk, side="right")
    positions, which = expand_ranges(low.astype(np.int64), (high - low).astype(np.int64), np.arange(len(tk)))
    met_sig = np.concatenate(found_sig)[which] if signatures else np.zeros(len(which), dtype=np.uint64)
    return Meetings(owners[positions], version[which], (tk[which] >> np.uint64(32)).astype(np.int64), met_sig)


def _sorted_probes(table_keys: npt.NDArray[np.uint64]) -> tuple[npt.NDArray[np.uint64], Ids]:
    """The (rows, tables) probed keys flat and sorted, with the row of each, rows ascending
    within a key. One sort of (key, row) packed into one word where both fit: a duplicate-search
    batch probes ~5 million keys, and an argsort then a gather by it took 4x as long."""
    rows, tables = table_keys.shape
    row_bits = max(int(rows - 1).bit_length(), 1)
    if not table_keys.size or int(table_keys.max()).bit_length() + row_bits > 64:
        probes = table_keys.ravel()
        order = np.argsort(probes, kind="stable")
        return probes[order], np.repeat(np.arange(rows, dtype=np.int64), tables)[order]
    packed = table_keys << np.uint64(row_bits)
    packed |= np.arange(rows, dtype=np.uint64)[:, None]
    packed = np.sort(packed, axis=None)
    return packed >> np.uint64(row_bits), (packed & np.uint64((1 << row_bits) - 1)).view(np.int64)


def by_version(
    connection: Connection,
    read: Read,
    tables: Tables,
    ids: Ids,
    select: Callable[[str, Tables], str],
) -> Result:
    """Run `select(version set, tables)` over `ids` in statements of bounded size."""
    wanted = sorted_unique(ids)
    parts = []
    for start in range(0, max(len(wanted), 1), IDS_PER_STATEMENT):
        chunk = wanted[start : start + IDS_PER_STATEMENT].view(np.uint64)
        parts.append(
            query_with_set(
                connection,
                read,
                tables,
                "versions",
                "UInt64",
                chunk,
                select,
            )
        )
    return Result.concat(parts)


Found = tuple[npt.NDArray[np.bool_], npt.NDArray[np.uint64], npt.NDArray[np.float32], npt.NDArray[np.bool_]]


def stored_hashes_many(
    connection: Connection,
    read: Read,
    tables: Tables,
    widths: Mapping[str, int],
    ids: Ids,
    keys: dict[int, str] | None = None,
) -> dict[str, Found]:
    """`stored_hashes` of several algorithms in one statement (UNION ALL; shorter hashes padded
    with zero words, and cut back here). With `keys`, each row version's key is added to it: the
    `h_*` tables hold it beside the words, sorted by version, where `entries` (sorted by key)
    would be read whole to find a version."""
    names = list(widths)
    width = max((word_count(nbits) for nbits in widths.values()), default=1)

    def select(versions: str, site: Tables) -> str:
        parts = []
        for number, name in enumerate(names):
            have = word_count(widths[name])
            words = ", ".join(f"w{i}" if i < have else f"toUInt64(0) AS w{i}" for i in range(width))
            # the key from the first table only: reading it from every h_* table costs a string
            # column each (a version the first table lacks gets its key from `entries`)
            key = (" key," if number == 0 else " '' AS key,") if keys is not None else ""
            parts.append(
                f"SELECT toUInt16({number}) AS a, version, quality, flagged,{key} {words}"
                f" FROM {site.hashes(name)} WHERE version IN {versions}"
            )
        return "SELECT * FROM (" + " UNION ALL ".join(parts) + ")"

    result = by_version(connection, read, tables, ids, select)
    if keys is not None and len(result):
        first = result.array("a", np.int64) == 0
        versions = result.array("version", np.uint64).view(np.int64)[first].tolist()
        keys.update(
            zip(
                versions,
                (k for k, f in zip(result.values("key"), first.tolist(), strict=True) if f),
                strict=True,
            )
        )
    which = result.array("a", np.int64)
    out = {}
    for number, name in enumerate(names):
        chosen = which == number
        out[name] = _place(result, chosen, ids, word_count(widths[name]))
    return out


def stored_hashes(
    connection: Connection, read: Read, tables: Tables, algorithm: str, nbits: int, ids: Ids
) -> Found:
    """(present, words, quality, flagged) of `algorithm`'s hashes at these row versions."""
    return stored_hashes_many(connection, read, tables, {algorithm: nbits}, ids)[algorithm]


def _place(result: Result, chosen: npt.NDArray[np.bool_], ids: Ids, word_total: int) -> Found:
    """The rows of `result` marked `chosen`, placed in the order of `ids`."""
    words = [f"w{i}" for i in range(word_total)]
    found = result.array("version", np.uint64).view(np.int64)[chosen]
    order = np.argsort(found, kind="stable")
    found = found[order]
    stacked = (
        np.stack([result.array(w, np.uint64)[chosen][order] for w in words], axis=1)
        if len(found)
        else np.zeros((0, len(words)), dtype=np.uint64)
    )
    quality = result.array("quality", np.float32)[chosen][order]
    quality[quality < 0] = np.nan
    flagged = result.array("flagged", np.uint8)[chosen][order].astype(bool)
    count = len(ids)
    present = np.zeros(count, dtype=bool)
    out_words = np.zeros((count, word_total), dtype=np.uint64)
    out_quality = np.full(count, np.nan, dtype=np.float32)
    out_flagged = np.zeros(count, dtype=bool)
    if len(found):
        positions = np.minimum(np.searchsorted(found, ids), len(found) - 1)
        present = found[positions] == ids
        out_words[present] = stacked[positions[present]]
        out_quality[present] = quality[positions[present]]
        out_flagged[present] = flagged[positions[present]]
    return present, out_words, out_quality, out_flagged


def keys_by_version(connection: Connection, read: Read, tables: Tables, ids: Ids) -> dict[int, str]:
    """Keys of the live entries at these row versions."""
    result = by_version(
        connection,
        read,
        tables,
        ids,
        lambda versions, site: (
            f"SELECT version, key FROM {site.entries()} WHERE version IN {versions} AND deleted = 0"
            f" AND {live_filter(site)}"
        ),
    )
    return dict(
        zip(
            result.array("version", np.uint64).view(np.int64).tolist(),
            map(str, result.values("key")),
            strict=True,
        )
    )


def live_versions(read: Read) -> Ids:
    """Every live entry's row version, sorted."""
    result = read(
        lambda binder, site: (
            f"SELECT version FROM {site.entries()} WHERE deleted = 0 AND {live_filter(site)}{SETTINGS}"
        )
    )
    return sorted_unique(result.array("version", np.uint64).view(np.int64))


def stored_variants(
    connection: Connection, read: Read, tables: Tables, ids: Ids
) -> dict[tuple[int, str], bytes]:
    """(row version, algorithm) -> the stored words of that hash's other variants."""
    result = by_version(
        connection,
        read,
        tables,
        ids,
        lambda versions, site: (
            f"SELECT version, algorithm, words, same_as FROM {site.variants()} WHERE version IN {versions}"
        ),
    )
    rows = list(
        zip(
            result.array("version", np.uint64).view(np.int64).tolist(),
            map(str, result.values("algorithm")),
            result.values("words"),
            map(str, result.values("same_as")),
            strict=True,
        )
    )
    found = {(v, a): as_bytes(w) for v, a, w, twin in rows if not twin}
    for version, algorithm, _, twin in rows:
        if twin and (version, twin) in found:
            found[(version, algorithm)] = found[(version, twin)]
    return found


def variant_rows(read: Read, algorithm: str, live: Ids, among: Ids | None = None) -> list[tuple[int, bytes]]:
    """(live row version, stored variant words) of every entry storing variants of `algorithm`
    (a twin's words where it names one), of the versions in `among` if given; `live`: the live
    versions (`live_versions`)."""

    if among is not None and not len(among):
        return []
    result = read(lambda binder, site: _variant_words_sql(binder, site, algorithm, among))
    versions = result.array("version", np.uint64).view(np.int64)
    alive = np.isin(versions, live).tolist()
    return [
        (version, blob)
        for version, words, kept in zip(versions.tolist(), result.values("words"), alive, strict=True)
        if kept and (blob := as_bytes(words))
    ]


def stored_regions(
    read: Read, ids: Ids
) -> dict[int, tuple[npt.NDArray[np.uint64], list[tuple[float, float, float, float]]]]:
    """`Index.stored_regions` of these row versions: their `phash_eq_regions` variants and boxes."""
    if not len(ids):
        return {}
    result = read(lambda binder, site: _variant_words_sql(binder, site, REGION_ALGORITHM, ids, boxes=True))
    versions = result.array("version", np.uint64).view(np.int64).tolist()
    words = [as_bytes(value) for value in result.values("words")]
    boxes = [as_bytes(value) for value in result.values("boxes")]
    return regions_of_rows(list(zip(versions, words, boxes, strict=True)))


def _variant_words_sql(
    binder: Any, site: Any, algorithm: str, among: Ids | None, *, boxes: bool = False
) -> str:
    """SELECT version, words (a twin's where the row names one)[, boxes] of `algorithm`'s stored
    variants, of the versions in `among` if given."""
    chosen = (
        "" if among is None else f" AND v.version IN {binder.in_set('among', 'UInt64', _unsigned(among))}"
    )
    extra = ", v.boxes AS boxes" if boxes else ""
    return (
        f"SELECT v.version AS version, if(v.same_as = '', v.words, t.words) AS words{extra}"
        f" FROM {site.variants()} AS v LEFT JOIN {site.variants()} AS t"
        " ON t.version = v.version AND t.algorithm = v.same_as"
        f" WHERE v.algorithm = {binder.scalar('algorithm', 'String', algorithm)}{chosen}{SETTINGS}"
    )


def _unsigned(versions: Ids) -> list[int]:
    """Row versions (held as int64 views) as the UInt64 values a query binds."""
    return np.asarray(versions, dtype=np.int64).view(np.uint64).tolist()  # type: ignore[no-any-return]


def as_bytes(value: Any) -> bytes:
    """Variant words as stored: hex text (a String column every driver reads back the same)."""
    return bytes.fromhex(value.decode() if isinstance(value, bytes) else str(value))


def stored_local(
    connection: Connection, read: Read, tables: Tables, ids: Ids
) -> dict[int, tuple[LocalFeatures, LocalFeatures | None]]:
    """Stored local features (and mirrored ones) at these row versions."""
    result = by_version(
        connection,
        read,
        tables,
        ids,
        lambda versions, site: (
            f"SELECT version, data, mirrored FROM {site.local_features()} WHERE version IN {versions}"
        ),
    )
    found = {}
    versions = result.array("version", np.uint64).view(np.int64).tolist()
    for version, data, mirrored in zip(
        versions, result.values("data"), result.values("mirrored"), strict=True
    ):
        flipped = as_bytes(mirrored)
        found[version] = (
            LocalFeatures.from_bytes(as_bytes(data)),
            LocalFeatures.from_bytes(flipped) if flipped else None,
        )
    return found
