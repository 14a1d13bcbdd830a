"""The search statements: Hamming distance in SQL, range queries, distance histograms.

Distance is the sum over the hash's uint64 words of popcount(stored XOR query), written with
what the engine has: `bitHammingDistance` (ClickHouse >= 21.1, chDB), else `bitCount(bitXor())`
(>= 20.3), else a SWAR popcount in plain arithmetic (Debian's 18.16). Hashes longer than 64 bits
are words too, so UInt256's pre-23.11 `bitHammingDistance` (it counted only the low 64 bits)
never matters.

Every statement answers a whole batch: the queries are a bound table or bound arrays, and the
result has one row per (query row, stored hash) within that query's radius: `qi, d, key, id`.
Two plans exist for each: a full scan (distance in PREWHERE, so other columns are read only
where it passes) and the multi-index pre-filter (read the granules of the `m_*` table that hold
the probed chunk values, check the exact distance there, then fetch key and id of the survivors
by version, which is h's sort key).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lookalike.index.clickhouse.binding import Binder
from lookalike.index.clickhouse.schema import Tables, word_count

LE_R = "{distance} <= r"
_M1 = 0x5555555555555555
_M2 = 0x3333333333333333
_M4 = 0x0F0F0F0F0F0F0F0F
_H01 = 0x0101010101010101


def swar_popcount(x: str) -> str:
    """popcount of a UInt64 expression using only bitAnd, shifts, + and * (no bitCount)."""
    a = f"(bitAnd({x}, {_M1}) + bitAnd(bitShiftRight({x}, 1), {_M1}))"
    b = f"(bitAnd({a}, {_M2}) + bitAnd(bitShiftRight({a}, 2), {_M2}))"
    c = f"bitAnd({b} + bitShiftRight({b}, 4), {_M4})"
    return f"bitShiftRight(toUInt64({c} * {_H01}), 56)"


@dataclass(frozen=True)
class Dialect:
    """What the engine offers: its popcount functions (from `system.functions`) and, by server
    version, the rest (see docs/clickhouse.md, "Which server versions give what")."""

    functions: frozenset[str]
    version: tuple[int, ...] = (99,)

    @classmethod
    def of(cls, version: tuple[int, ...], functions: frozenset[str]) -> Dialect:
        return cls(functions, version)

    @property
    def closures(self) -> bool:
        """A lambda may read table columns (18.16's cannot: "Unknown identifier")."""
        return self.version >= (20,)

    @property
    def index_hint(self) -> bool:
        """`indexHint(condition)`: the condition selects granules but filters no rows."""
        return self.version >= (22,)

    @property
    def tuned_storage(self) -> bool:
        """Column codecs and per-table `min/max_compress_block_size` (MergeTree settings)."""
        return self.version >= (21,)

    @property
    def mutations_sync(self) -> bool:
        """ALTER ... DELETE can wait for its mutation (`mutations_sync`); else poll for it."""
        return self.version >= (21,)

    def prewhere(self, condition: str, rest: str) -> str:
        """`PREWHERE condition WHERE rest`; old servers get one WHERE (18.16 loses bound scalar
        subqueries in PREWHERE of a distributed query: "Not found column _subqueryN")."""
        if self.closures:
            return f" PREWHERE {condition} WHERE {rest}"
        return f" WHERE ({condition}) AND {rest}"

    def word_distance(self, stored: str, query: str) -> str:
        if "bitHammingDistance" in self.functions:
            return f"bitHammingDistance({stored}, {query})"
        if "bitCount" in self.functions:
            return f"bitCount(bitXor({stored}, {query}))"
        return swar_popcount(f"bitXor({stored}, {query})")

    def distance(self, stored: Sequence[str], query: Sequence[str]) -> str:
        if not self.functions:
            # SWAR names its operand 8 times; a lambda names each XOR once (a distributed 18.16
            # query cannot repeat a bound scalar subquery: each copy gets its own column name)
            xors = ", ".join(f"bitXor({s}, {q})" for s, q in zip(stored, query, strict=True))
            return f"toUInt32(arraySum(arrayMap(x -> {swar_popcount('x')}, [{xors}])))"
        terms = [self.word_distance(s, q) for s, q in zip(stored, query, strict=True)]
        return "toUInt32(" + " + ".join(terms) + ")"


def live_filter(tables: Tables, prefix: str = "", stale: bool = True) -> str:
    """Rows no later write has replaced (evaluated per shard: a key's rows share one shard);
    `stale=False`: the caller knows `superseded` is empty, so every row is live."""
    if not stale:
        return "1"
    return f"({prefix}key, {prefix}version) NOT IN (SELECT key, version FROM {tables.superseded(True)})"


def _words(nbits: int, prefix: str = "") -> list[str]:
    return [f"{prefix}w{i}" for i in range(word_count(nbits))]


@dataclass(frozen=True)
class QueryRows:
    """The batch to search: one row per (query, variant), its words and its radius."""

    words: npt.NDArray[np.uint64]  # (n, words)
    radius: npt.NDArray[np.int64]  # (n,)

    def __len__(self) -> int:
        return len(self.words)


def range_full_scan(
    dialect: Dialect,
    tables: Tables,
    algorithm: str,
    nbits: int,
    rows: QueryRows,
    include_flagged: bool,
    binder: Binder,
    stale: bool = True,
) -> str:
    stored = _words(nbits)
    flag = "" if include_flagged else " AND flagged = 0"
    h = tables.hashes(algorithm)
    live = live_filter(tables, stale=stale)
    if len(rows) == 1:
        query = [binder.scalar(f"q{i}", "UInt64", int(v)) for i, v in enumerate(rows.words[0])]
        radius = binder.scalar("r", "UInt32", int(rows.radius[0]))
        distance = dialect.distance(stored, query)
        return (
            f"SELECT toUInt32(0) AS qi, {distance} AS d, key, sipHash64(key) AS id FROM {h}"
            f"{dialect.prewhere(f'd <= {radius}{flag}', live)}"
        )
    positions = binder.array("qi", "UInt32", list(range(len(rows))))
    radii = binder.array("qr", "UInt32", rows.radius.tolist())
    over = _over_queries(dialect, binder, rows, stored)
    return (
        f"SELECT hit.1 AS qi, hit.2 AS d, key, sipHash64(key) AS id FROM {h}"
        f" ARRAY JOIN arrayFilter(t -> t.2 <= t.3, {over.map('(i, {distance}, r)', positions, radii)}) AS hit"
        f"{dialect.prewhere(f'arrayExists({over.lambda_(LE_R, radii)}){flag}', live)}"
    )


def range_prefilter(
    dialect: Dialect,
    tables: Tables,
    algorithm: str,
    nbits: int,
    rows: QueryRows,
    probes: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]],
    chunk_bits: int,
    include_flagged: bool,
    binder: Binder,
    stale: bool = True,
) -> str:
    """Candidates from `m_*` (the granules holding a probed chunk value), exact distance there,
    then key and id from `h_*` by version. `probes` = (query row, cv) pairs."""
    stored = _words(nbits)
    flag = "" if include_flagged else " AND flagged = 0"
    h = tables.hashes(algorithm)
    m = tables.prefilter(algorithm, chunk_bits, True)
    probe_rows, probe_cvs = probes
    cv_set = binder.in_set("cvs", "UInt32", sorted(set(probe_cvs.tolist())))
    # every m row within the radius is a true match, whatever its chunk: the probed values need
    # only pick the granules (indexHint), not filter rows
    probed = f"indexHint(cv IN {cv_set})" if dialect.index_hint else f"cv IN {cv_set}"
    if len(rows) == 1:
        query = [binder.scalar(f"q{i}", "UInt64", int(v)) for i, v in enumerate(rows.words[0])]
        radius = binder.scalar("r", "UInt32", int(rows.radius[0]))
        inner_query = [binder.scalar(f"mq{i}", "UInt64", int(v)) for i, v in enumerate(rows.words[0])]
        inner_radius = binder.scalar("mr", "UInt32", int(rows.radius[0]))
        distance = dialect.distance(stored, query)
        candidates = (
            f"version IN (SELECT version FROM {m} WHERE {probed}"
            f" AND {dialect.distance(stored, inner_query)} <= {inner_radius}){flag} AND d <= {radius}"
        )
        return (
            f"SELECT toUInt32(0) AS qi, {distance} AS d, key, sipHash64(key) AS id FROM {h}"
            f"{dialect.prewhere(candidates, live_filter(tables, stale=stale))}"
        )
    columns = {
        "qi": ("UInt32", probe_rows.tolist()),
        "cv": ("UInt32", probe_cvs.tolist()),
        "r": ("UInt32", rows.radius[probe_rows].tolist()),
    }
    for i in range(len(stored)):
        columns[f"q{i}"] = ("UInt64", rows.words[probe_rows, i].tolist())
    probe_table = binder.table("probes", columns)
    distance = dialect.distance([f"m.{w}" for w in stored], [f"p.q{i}" for i in range(len(stored))])
    word_list = ", ".join(stored)
    carried = ", ".join(f"m.{w} AS m{w}" for w in stored)
    candidates = (
        f"SELECT DISTINCT p.qi AS qi, m.version AS version, {carried}, {distance} AS d"
        f" FROM (SELECT cv, version, {word_list} FROM {m} WHERE {probed}) AS m"
        f" INNER JOIN {probe_table} AS p ON m.cv = p.cv WHERE {distance} <= p.r"
    )
    same_words = " AND ".join(f"h.{w} = c.m{w}" for w in stored)
    rest = f"{same_words} AND {live_filter(tables, 'h.', stale)}"
    h_flag = "" if include_flagged else " AND h.flagged = 0"
    found = f"h.version IN (SELECT version FROM ({candidates})){h_flag}"
    return (
        f"SELECT c.qi AS qi, c.d AS d, h.key AS key, sipHash64(h.key) AS id FROM {h} AS h"
        f" INNER JOIN ({candidates}) AS c ON h.version = c.version{dialect.prewhere(found, rest)}"
    )


def distance_histogram(
    dialect: Dialect,
    tables: Tables,
    algorithm: str,
    nbits: int,
    rows: QueryRows,
    include_flagged: bool,
    binder: Binder,
) -> str:
    """How many stored hashes lie at each distance from each query row (stale rows included:
    an upper bound on live counts, used to pick a radius for top-k)."""
    stored = _words(nbits)
    where = "" if include_flagged else " WHERE flagged = 0"
    h = tables.hashes(algorithm)
    if len(rows) == 1:
        query = [binder.scalar(f"q{i}", "UInt64", int(v)) for i, v in enumerate(rows.words[0])]
        return (
            f"SELECT toUInt32(0) AS qi, {dialect.distance(stored, query)} AS d, count() AS n FROM {h}"
            f"{where} GROUP BY d"
        )
    positions = binder.array("qi", "UInt32", list(range(len(rows))))
    over = _over_queries(dialect, binder, rows, stored)
    return (
        f"SELECT hit.1 AS qi, hit.2 AS d, count() AS n FROM {h}"
        f" ARRAY JOIN {over.map('(i, {distance})', positions)} AS hit{where} GROUP BY qi, d"
    )


@dataclass(frozen=True)
class _OverQueries:
    """Lambdas over the bound query arrays that compute each stored row's distance to every
    query. Without closures, the row's words enter as arrays too (`replicate`)."""

    distance: str
    params: list[str]
    arrays: list[str]

    def lambda_(self, body: str, *extra: str) -> str:
        names = [*self.params, *(["r"] if extra else [])]
        arrays = ", ".join([*self.arrays, *extra])
        return f"({', '.join(names)}) -> {body.format(distance=self.distance)}, {arrays}"

    def map(self, body: str, positions: str, *extra: str) -> str:
        names = ["i", *self.params, *(["r"] if extra else [])]
        arrays = [positions, *self.arrays, *extra]
        return f"arrayMap(({', '.join(names)}) -> {body.format(distance=self.distance)}, {', '.join(arrays)})"


def _over_queries(dialect: Dialect, binder: Binder, rows: QueryRows, stored: list[str]) -> _OverQueries:
    arrays = [binder.array(f"qw{i}", "UInt64", rows.words[:, i].tolist()) for i in range(len(stored))]
    query_names = [f"a{i}" for i in range(len(stored))]
    if dialect.closures:
        return _OverQueries(dialect.distance(stored, query_names), query_names, arrays)
    row_names = [f"s{i}" for i in range(len(stored))]
    replicated = [f"replicate({column}, {arrays[0]})" for column in stored]
    return _OverQueries(
        dialect.distance(row_names, query_names), [*query_names, *row_names], [*arrays, *replicated]
    )
