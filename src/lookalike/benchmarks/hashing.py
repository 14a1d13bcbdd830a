"""Hash every benchmark image with every hasher, reusing the on-disk cache of earlier runs: only
what a cached table lacks (a new hash, new images) is computed, and the cache grows to hold it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path

import numpy as np

from lookalike.benchmarks.hashers import (
    PEER_GROUPS,
    TABLE_FIELDS,
    HashTable,
    PeerGroup,
    Record,
    compute_lookalike,
    compute_peer_group,
    load_stored,
    lookalike_output_name,
    merge_tables,
    rows_for,
    save_table,
    tables_from_records,
)

Progress = Callable[[str, int], None]  # (what, images done so far)
Outcomes = Iterator[tuple[str, dict[str, Record] | str]]
Compute = Callable[[Sequence[str], Sequence[str]], Outcomes]  # (outputs, paths) -> per path
Stored = tuple[Sequence[str], HashTable]


def hash_all(
    paths: Sequence[str],
    cache: Path,
    lookalike_specs: Sequence[str],
    lookalike_trim_specs: Sequence[str],
    peers: bool,
    workers: int,
    progress: Progress | None = None,
) -> tuple[dict[str, HashTable], list[str]]:
    """Every table the run needs, from the cache or computed now; plus failure messages."""
    tables: dict[str, HashTable] = {}
    failures: list[str] = []

    def counter(label: str) -> Callable[[], None]:
        done = [0]

        def tick() -> None:
            done[0] += 1
            if progress:
                progress(label, done[0])

        return tick

    for trim, specs in ((False, lookalike_specs), (True, lookalike_trim_specs)):
        spec_of = {lookalike_output_name(spec, trim): spec for spec in specs}
        label = "lookalike" + (" (trimmed)" if trim else "")
        compute = partial(_lookalike, spec_of=spec_of, trim=trim, workers=workers, on_done=counter(label))
        tables.update(_tables(cache, list(spec_of), paths, compute, failures))
    if peers:
        for group in PEER_GROUPS:
            if not group.available:
                failures.append(f"{group.name}: not installed (pip install 'lookalike[bench]'); skipped")
                continue
            compute = partial(_peer, group=group, workers=workers, on_done=counter(group.name))
            tables.update(_tables(cache, list(group.outputs), paths, compute, failures))
    return tables, failures


def _lookalike(
    names: Sequence[str],
    paths: Sequence[str],
    *,
    spec_of: dict[str, str],
    trim: bool,
    workers: int,
    on_done: Callable[[], None],
) -> Outcomes:
    specs = [spec_of[name] for name in names]
    return compute_lookalike(paths, specs, trim=trim, workers=workers, on_done=on_done)


def _peer(
    names: Sequence[str], paths: Sequence[str], *, group: PeerGroup, workers: int, on_done: Callable[[], None]
) -> Outcomes:
    return compute_peer_group(group, paths, workers, on_done=on_done)  # every output of the group


def _tables(
    cache: Path, names: Sequence[str], paths: Sequence[str], compute: Compute, failures: list[str]
) -> dict[str, HashTable]:
    """The tables `names` over `paths`: the cached rows, and for the tables that lack some path,
    those paths computed (once for all such tables) and added to the cache."""
    stored: dict[str, Stored | None] = {name: load_stored(cache, name) for name in names}
    known = {name: set(entry[0]) if entry else set() for name, entry in stored.items()}
    lacking = [name for name in names if any(p not in known[name] for p in paths)]
    if lacking:
        todo = [p for p in dict.fromkeys(paths) if any(p not in known[name] for name in lacking)]
        records: dict[str, dict[str, Record]] = {}
        for path, outcome in compute(lacking, todo):
            if isinstance(outcome, str):
                failures.append(f"{path}: {outcome}")
            else:
                records[path] = outcome
        computed = tables_from_records(lacking, todo, records)
        for name in lacking:
            entry = _with_rows(stored[name], todo, computed.get(name))
            if entry is not None:
                save_table(cache, entry[1], entry[0])
            stored[name] = entry
    tables = {}
    for name, entry in stored.items():
        table = None if entry is None else rows_for(entry, paths)
        if table is not None:
            tables[name] = table
    return tables


def _with_rows(stored: Stored | None, paths: Sequence[str], computed: HashTable | None) -> Stored | None:
    """A stored table with rows for `paths` added: the computed ones, or zero rows when nothing
    of them could be hashed (the failures are reported; a zero hash never looks like a match)."""
    if computed is None:
        if stored is None:
            return None
        computed = stored[1].subset(np.zeros(len(paths), dtype=np.intp))
        for field in TABLE_FIELDS:
            value = getattr(computed, field)
            if value is not None:
                setattr(computed, field, np.zeros_like(value))
    return (paths, computed) if stored is None else merge_tables(stored, (paths, computed))
