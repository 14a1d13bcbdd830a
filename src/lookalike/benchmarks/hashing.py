"""Hash every benchmark image with every hasher, reusing the on-disk cache of earlier runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from lookalike.benchmarks.hashers import (
    PEER_GROUPS,
    HashTable,
    Record,
    compute_lookalike,
    compute_peer_group,
    load_table,
    lookalike_output_name,
    save_table,
    tables_from_records,
)

Progress = Callable[[str, int], None]  # (what, images done so far)


def _collect(
    names: Sequence[str],
    paths: Sequence[str],
    results: Iterator[tuple[str, dict[str, Record] | str]],
    failures: list[str],
) -> dict[str, HashTable]:
    records: dict[str, dict[str, Record]] = {}
    for path, outcome in results:
        if isinstance(outcome, str):
            failures.append(f"{path}: {outcome}")
        else:
            records[path] = outcome
    return tables_from_records(names, paths, records)


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
        names = [lookalike_output_name(spec, trim) for spec in specs]
        missing = _load_cached(cache, names, paths, tables)
        if missing:
            wanted = [spec for spec in specs if lookalike_output_name(spec, trim) in missing]
            label = "lookalike" + (" (trimmed)" if trim else "")
            results = compute_lookalike(paths, wanted, trim=trim, workers=workers, on_done=counter(label))
            computed = _collect(missing, paths, results, failures)
            _store(cache, computed, paths, tables)
    if peers:
        for group in PEER_GROUPS:
            if not group.available:
                failures.append(f"{group.name}: not installed (pip install 'lookalike[bench]'); skipped")
                continue
            missing = _load_cached(cache, list(group.outputs), paths, tables)
            if missing:
                results = compute_peer_group(group, paths, workers, on_done=counter(group.name))
                computed = _collect(list(group.outputs), paths, results, failures)
                _store(cache, computed, paths, tables)
    return tables, failures


def _load_cached(
    cache: Path, names: Sequence[str], paths: Sequence[str], tables: dict[str, HashTable]
) -> list[str]:
    missing = []
    for name in names:
        table = load_table(cache, name, paths)
        if table is None:
            missing.append(name)
        else:
            tables[name] = table
    return missing


def _store(
    cache: Path, computed: dict[str, HashTable], paths: Sequence[str], tables: dict[str, HashTable]
) -> None:
    for name, table in computed.items():
        save_table(cache, table, paths)
        tables[name] = table
