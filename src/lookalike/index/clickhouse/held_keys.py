"""Candidate key tables held in memory on chDB, for jobs that probe them all over the index.

A duplicate search of a million images probes a family's `k40_*` table once per batch of 2,000
queries: ~4.5 million distinct keys against 160 million rows, 7-8 s a batch and two thirds of the
job. The job holds every judged hash already (`snapshot.py`), so it builds the family's key tables
from those hashes once, the structure SQLite keeps (`candidates.tables.KeyTables`: plain and
flagged hashes apart, an entry's repeated hash once), and each batch probes them in NumPy.

KeyTables name entries by 32-bit ids; here entries are 64-bit row versions, so a held family
numbers its entries by their place among the versions it holds and maps what it finds back.
They live and die with the held hashes: built only from hashes held of one written state, never
kept if the path was written meanwhile, dropped by any write (`snapshot.drop`), and not built
when they would take the process past `snapshot.MEMORY_CEILING` (then probes go to ClickHouse).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lookalike.candidates.keys import KeyLayout
from lookalike.candidates.tables import KeyTables
from lookalike.index.clickhouse import snapshot
from lookalike.index.clickhouse.connection import ChdbConnection
from lookalike.index.clickhouse.snapshot import HashTable
from lookalike.sorted_arrays import sorted_unique

Ids = npt.NDArray[np.int64]
# Bytes per (hash row, table) while the tables are built: the keys (4), the whole packed rows
# being sorted (8) and the compact rows made from them (4); what stays held is about 4.
BUILD_BYTES_PER_KEY = 16


@dataclass(frozen=True)
class HeldKeys:
    """One candidate family's key tables over the held hashes of its members."""

    layout: KeyLayout
    versions: Ids  # entry number (the tables' id) -> row version, sorted
    plain: KeyTables
    flagged: KeyTables

    @property
    def nbytes(self) -> int:
        return int(self.versions.nbytes) + self.plain.nbytes() + self.flagged.nbytes()

    def probe(
        self, words: npt.NDArray[np.uint64], include_flagged: bool, owners: Ids | None = None
    ) -> tuple[Ids, Ids]:
        """(row of `words`, row version) for every held hash sharing a key, as
        `candidates.nominate` answers from ClickHouse (with `owners`, a query's pairs may carry
        any of its rows, as `KeyTables.probe` says)."""
        keys = self.layout.keys(words)
        tables = [self.plain, self.flagged] if include_flagged else [self.plain]
        found = [table.probe(keys, owners) for table in tables]
        rows = np.concatenate([rows for rows, _ in found])
        numbers = np.concatenate([numbers for _, numbers in found])
        return rows, self.versions[numbers]


def build(layout: KeyLayout, members: Sequence[HashTable]) -> HeldKeys:
    """The key tables of a family whose member algorithms' live hashes are `members`."""
    versions = sorted_unique(np.concatenate([table.versions for table in members]))
    numbers, words, flagged = _distinct_rows(members)
    plain, flagged_tables = KeyTables(layout), KeyTables(layout)
    for tables, chosen in ((plain, ~flagged), (flagged_tables, flagged)):
        tables.add(np.searchsorted(versions, numbers[chosen]), words[chosen])
        tables.compact()
    return HeldKeys(layout, versions, plain, flagged_tables)


def _distinct_rows(members: Sequence[HashTable]) -> tuple[Ids, npt.NDArray[np.uint64], npt.NDArray[np.bool_]]:
    """(row version, words, flagged) of every member's hashes, a row left out where an earlier
    member holds the same hash with the same flag for that version (a picture without borders
    has one trimmed and untrimmed hash): SQLite's tables hold each such hash once too."""
    versions: list[Ids] = []
    words: list[npt.NDArray[np.uint64]] = []
    flags: list[npt.NDArray[np.bool_]] = []
    for number, table in enumerate(members):
        fresh = np.ones(len(table.versions), dtype=bool)
        for earlier in members[:number]:
            rows, present = earlier.positions(table.versions)
            same = present & (earlier.flagged[rows] == table.flagged)
            same &= np.all(earlier.words[rows] == table.words, axis=1)
            fresh &= ~same
        versions.append(table.versions[fresh])
        words.append(table.words[fresh])
        flags.append(table.flagged[fresh])
    return np.concatenate(versions), np.concatenate(words), np.concatenate(flags)


def build_bytes(layout: KeyLayout, members: Sequence[HashTable]) -> int:
    """About what building the family's tables takes at its peak (before repeats are dropped)."""
    return sum(len(table.versions) for table in members) * layout.table_count * BUILD_BYTES_PER_KEY


def held(connection: ChdbConnection, family: str, layout: KeyLayout) -> HeldKeys | None:
    """The family's held key tables, if held for this layout."""
    found = snapshot.snapshots(connection).keys.get(family)
    return found if found is not None and found.layout == layout else None


def hold(connection: ChdbConnection, families: Mapping[str, tuple[KeyLayout, Sequence[str]]]) -> None:
    """Build and hold the key tables of these families (name -> (layout, member algorithms)) not
    held yet, from the held hashes of their members: a family some member of which is not held,
    or whose build would pass `snapshot.MEMORY_CEILING`, is left to ClickHouse."""
    state = snapshot.snapshots(connection)
    with state.lock:
        for family, (layout, names) in families.items():
            with connection.shared.facts_lock:
                if held(connection, family, layout) is not None:
                    continue
                writes, tables = state.writes, state.tables
            members = [tables[name] for name in names if name in tables]
            if not members or len(members) < len(names):
                continue
            if snapshot.held_bytes(state) + build_bytes(layout, members) > snapshot.MEMORY_CEILING:
                continue
            built = build(layout, members)
            with connection.shared.facts_lock:
                if state.writes != writes:  # a write ran while it was built
                    return
                state.keys = {**state.keys, family: built}
