"""Stored hashes held in memory on chDB, for jobs that judge candidates all over the index.

A duplicate search of a million images nominates about 1.2 million (query, row version) pairs
per batch of 2,000 queries, and judging them read every candidate's hashes back out of the
`h_*` tables by version (`candidates.stored_hashes_many`): four hours for the job. The job reads
every stored hash anyway, so it reads each judged algorithm's table once (its live rows), sorted
by version, and looks candidates up with a binary search (`HashTable.lookup`): five 256-bit
hashes cost about 45 bytes an image, ~225 MB at a million images (with the keys of one table).

Only this process writes a chDB path (`ChdbSession.facts`), so the tables stay valid until it
writes: every write on the path drops them (`drop`), and a snapshot read while a write ran is
not kept (`Snapshots.writes` counts the writes). A server has other writers: never held there.
The candidate key tables built from these hashes (`held_keys.py`) are held and dropped with them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from lookalike.index.clickhouse.connection import ChdbConnection
from lookalike.index.clickhouse.schema import Tables, word_count

if TYPE_CHECKING:
    from lookalike.index.clickhouse.held_keys import HeldKeys

Ids = npt.NDArray[np.int64]
Found = tuple[npt.NDArray[np.bool_], npt.NDArray[np.uint64], npt.NDArray[np.float32], npt.NDArray[np.bool_]]
_FACT = "stored-hash-snapshots"
# what one process may hold: 10M images of five 256-bit hashes fit (about 2.2 GB); with the key
# tables built from them (`held_keys.py`, counted at their build's peak), about 1.5M images
MEMORY_CEILING = 4 * 2**30
ROW_BYTES = 8 + 4 + 1  # version, quality, flagged, beside the words


@dataclass(frozen=True)
class HashTable:
    """One algorithm's stored hashes, every row of its `h_*` table, sorted by row version; the
    keys of the versions when read with them (the first table a job reads)."""

    versions: Ids
    words: npt.NDArray[np.uint64]
    quality: npt.NDArray[np.float32]  # NaN: no quality stored
    flagged: npt.NDArray[np.bool_]
    keys: Any = None  # an Arrow string array, row for row with `versions`

    @property
    def nbytes(self) -> int:
        held = self.versions.nbytes + self.words.nbytes + self.quality.nbytes + self.flagged.nbytes
        return held + (int(self.keys.nbytes) if self.keys is not None else 0)

    def positions(self, ids: Ids) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
        """Each id's row (valid where `present`)."""
        if not len(self.versions):
            return np.zeros(len(ids), dtype=np.intp), np.zeros(len(ids), dtype=bool)
        rows = np.minimum(np.searchsorted(self.versions, ids), len(self.versions) - 1)
        return rows, self.versions[rows] == ids

    def lookup(self, ids: Ids) -> Found:
        """(present, words, quality, flagged) at these row versions, as
        `candidates.stored_hashes_many` answers: zero words and NaN quality where absent."""
        rows, present = self.positions(ids)
        if present.all():
            return present, self.words[rows], self.quality[rows], self.flagged[rows]
        words = self.words[rows]
        words[~present] = 0
        quality = np.where(present, self.quality[rows], np.float32(np.nan))
        return present, words, quality, self.flagged[rows] & present

    def only(self, versions: Ids) -> HashTable:
        """The rows of these versions (sorted) alone."""
        _, keep = HashTable(versions, self.words[:0], self.quality[:0], self.flagged[:0]).positions(
            self.versions
        )
        if keep.all():
            return self
        rows = np.flatnonzero(keep)
        keys = None if self.keys is None else self.keys.take(rows)
        return HashTable(self.versions[rows], self.words[rows], self.quality[rows], self.flagged[rows], keys)

    def keys_of(self, ids: Ids) -> dict[int, str]:
        """Keys of the ids this table holds (none if it was read without keys)."""
        if self.keys is None:
            return {}
        rows, present = self.positions(ids)
        chosen = np.flatnonzero(present)
        names = self.keys.take(rows[chosen]).to_pylist()
        return dict(zip(ids[chosen].tolist(), map(str, names), strict=True))


@dataclass
class Snapshots:
    """The tables held for one chDB path, and how many writes the path has seen."""

    tables: dict[str, HashTable] = field(default_factory=dict)
    keys: dict[str, HeldKeys] = field(default_factory=dict)  # candidate family -> its key tables
    writes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)  # one reader of tables at a time


def snapshots(connection: ChdbConnection) -> Snapshots:
    with connection.shared.facts_lock:
        held = connection.shared.facts.get(_FACT)
        if held is None:
            held = connection.shared.facts[_FACT] = Snapshots()
        assert isinstance(held, Snapshots)
        return held


def drop(connection: ChdbConnection) -> None:
    """After a write on the path: what is held may be stale."""
    held = snapshots(connection)
    with connection.shared.facts_lock:
        held.writes += 1
        held.tables = {}
        held.keys = {}


def held(connection: ChdbConnection, algorithms: Sequence[str]) -> dict[str, HashTable]:
    """The tables held of these algorithms (those not held are left out)."""
    tables = snapshots(connection).tables
    return {name: tables[name] for name in algorithms if name in tables}


def hold(
    connection: ChdbConnection, tables: Tables, widths: dict[str, int], live: Callable[[], Ids]
) -> dict[str, HashTable]:
    """Read the live rows (`live()`: every live entry's version, sorted) of the `h_*` tables of
    these algorithms (name -> bits) that are not held yet, and hold them unless the path was
    written meanwhile or they would pass MEMORY_CEILING (then nothing more is held and readers
    go to ClickHouse). The first table held carries the keys."""
    state = snapshots(connection)
    with state.lock:
        wanted = [name for name in widths if name not in state.tables]
        if not wanted:
            return held(connection, list(widths))
        rows = {name: _row_count(connection, tables, name) for name in wanted}
        needed = sum(rows[name] * (ROW_BYTES + 8 * word_count(widths[name])) for name in wanted)
        if held_bytes(state) + needed > MEMORY_CEILING:
            return held(connection, list(widths))
        writes = state.writes
        versions = live()
        for name in wanted:
            with_keys = not state.tables
            table = _read(connection, tables, name, widths[name], with_keys).only(versions)
            with connection.shared.facts_lock:
                if state.writes != writes:  # a write ran while it was read
                    break
                state.tables = {**state.tables, name: table}
    return held(connection, list(widths))


def held_bytes(state: Snapshots) -> int:
    """What the hashes and key tables held take."""
    return sum(table.nbytes for table in state.tables.values()) + sum(
        keys.nbytes for keys in state.keys.values()
    )


def _row_count(connection: ChdbConnection, tables: Tables, algorithm: str) -> int:
    return int(connection.query(f"SELECT count() AS n FROM {tables.hashes(algorithm)}").values("n")[0])


def _read(
    connection: ChdbConnection, tables: Tables, algorithm: str, nbits: int, with_keys: bool
) -> HashTable:
    import pyarrow as pa

    words = [f"w{i}" for i in range(word_count(nbits))]
    key = ", key" if with_keys else ""
    result = connection.query(
        f"SELECT version, quality, flagged{key}, {', '.join(words)} FROM {tables.hashes(algorithm)}"
    )
    versions = result.array("version", np.uint64).view(np.int64)
    order = np.argsort(versions, kind="stable")
    stacked = np.empty((len(versions), len(words)), dtype=np.uint64)
    for number, name in enumerate(words):
        stacked[:, number] = result.array(name, np.uint64)[order]
    quality = result.array("quality", np.float32)[order]
    quality[quality < 0] = np.nan
    flagged = result.array("flagged", np.uint8)[order].astype(bool)
    keys = None
    if with_keys:  # chDB answers in Arrow; an empty answer comes without columns
        keys = result.column("key").take(pa.array(order)) if len(result) else pa.array([], pa.string())
    return HashTable(versions[order], stacked, quality, flagged, keys)
