"""`lookalike search`: the nearest indexed images for images or hex hashes, as one batch."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated

import typer

from lookalike.algorithms import parse_spec
from lookalike.cli import options
from lookalike.cli.output import emit_json, emit_line, report_error
from lookalike.errors import ImageError, LookalikeError
from lookalike.hash import Hash
from lookalike.index.base import Entry, Index
from lookalike.matcher import default_index_hashes
from lookalike.pipeline import hash_files

_HEX = re.compile(r"^(?:(?P<algorithm>[a-z_0-9]+(?::\d+)?)=)?(?P<hex>[0-9a-fA-F]{4,})$")


@dataclass
class Query:
    """One thing to search for: an image (hashed here) or a hex hash of one algorithm."""

    text: str
    hashes: dict[str, Hash] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Found:
    key: str
    path: str
    distances: Mapping[str, int]


def search_command(
    queries: Annotated[
        list[str],
        typer.Argument(
            help="Images, or hex hashes (ALGORITHM=HEX, or bare HEX: 64 digits = PDQ).", show_default=False
        ),
    ],
    index_url: options.IndexUrl = None,
    k: Annotated[int, typer.Option("--k", "-k", min=1, help="How many nearest matches (default).")] = 10,
    max_distance: Annotated[
        int | None,
        typer.Option("--max-distance", "-r", min=0, help="Every match within this distance instead."),
    ] = None,
    preset: options.Preset = None,
    hashes: Annotated[
        str | None,
        typer.Option("--hashes", help="Algorithms to compare; the first one ranks (default: the index's)."),
    ] = None,
    dihedral: options.Dihedral = False,
    json_output: options.Json = False,
    workers: options.Workers = None,
    fail_on_match: Annotated[
        bool, typer.Option("--fail-on-match", help="Exit 1 if anything matched.")
    ] = False,
) -> None:
    """Find the indexed images nearest to each query, best first, with the distance per hash.

    Example:

        lookalike search upload.jpg --preset near-duplicate --json
        lookalike search pdq=f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22
    """
    if max_distance is not None and preset is not None:
        raise typer.BadParameter("use one of --max-distance and --preset")
    with options.open_index_or_exit(index_url) as index:
        stored = index.algorithm_bits()
        names = _algorithms(hashes, stored)
        parsed = _hash_queries(queries, names, dihedral, workers)
        results = _search(index, parsed, names, k, max_distance, preset, dihedral)
    failed = False
    matched = False
    for query, found in zip(parsed, results, strict=True):
        if query.error is not None:
            failed = True
            report_error(f"{query.text}: {query.error}")
            if json_output:
                emit_json({"query": query.text, "error": query.error})
            continue
        matched = matched or bool(found)
        _print(query, found, json_output)
    if failed or (fail_on_match and matched):
        raise typer.Exit(1)


def _algorithms(text: str | None, stored: Mapping[str, int]) -> list[str]:
    if text:
        return [parse_spec(name).key for name in text.split(",") if name.strip()]
    preferred = [name for name in ("pdq", *default_index_hashes()) if name in stored]
    names = list(dict.fromkeys(preferred)) or sorted(stored)
    if not names:
        raise typer.BadParameter("the index is empty: add images first (lookalike index add DIR)")
    return names


def _hash_queries(items: Sequence[str], names: list[str], dihedral: bool, workers: int | None) -> list[Query]:
    queries = [Query(text) for text in items]
    images: dict[str, Query] = {}
    for query in queries:
        found = None if os.path.exists(query.text) else _HEX.match(query.text.strip())
        if found is None:
            images[query.text] = query
            continue
        algorithm = found["algorithm"] or ("pdq" if len(found["hex"]) == 64 else names[0])
        try:
            spec = parse_spec(algorithm)
            query.hashes[spec.key] = Hash.from_hex(found["hex"], spec.nbits)
        except LookalikeError as exc:
            query.error = str(exc)
    if images:
        for path, result in hash_files(list(images), names, workers=workers, dihedral=dihedral):
            if isinstance(result, ImageError):
                images[path].error = result.reason
            else:
                images[path].hashes = {
                    name: value for name, value in result.items() if isinstance(value, Hash)
                }
    return queries


def _search(
    index: Index,
    queries: list[Query],
    names: list[str],
    k: int,
    max_distance: int | None,
    preset: str | None,
    dihedral: bool,
) -> list[list[Found]]:
    results: list[list[Found]] = [[] for _ in queries]
    if preset is not None:
        for position, query in enumerate(queries):
            if query.error is None:
                verdicts = index.match(query.hashes, preset, dihedral=dihedral)
                entries = index.get_many(v.key for v in verdicts)
                results[position] = [
                    Found(v.key, _path(entries.get(v.key), v.key), v.distances) for v in verdicts
                ]
        return results
    by_algorithm: dict[str, list[int]] = {}
    for position, query in enumerate(queries):
        if query.error is not None:
            continue
        ranking = next((name for name in names if name in query.hashes), None)
        if ranking is None:
            query.error = f"no hash of {', '.join(names)} to search with"
            continue
        by_algorithm.setdefault(ranking, []).append(position)
    for algorithm, positions in by_algorithm.items():
        batch = [queries[p].hashes[algorithm] for p in positions]
        use_variants = dihedral and all(h.variants for h in batch)
        if max_distance is not None:
            answers = index.range_search(batch, algorithm, max_distance, dihedral=use_variants)
        else:
            answers = index.search(batch, algorithm, k, dihedral=use_variants)
        keys = {match.key for answer in answers for match in answer}
        entries = index.get_many(keys)
        for position, answer in zip(positions, answers, strict=True):
            query = queries[position]
            results[position] = [
                Found(
                    m.key,
                    _path(entries.get(m.key), m.key),
                    _distances(query.hashes, entries.get(m.key), dihedral),
                )
                for m in answer
            ]
    return results


def _distances(query: Mapping[str, Hash], entry: Entry | None, dihedral: bool) -> dict[str, int]:
    if entry is None:
        return {}
    distances = {}
    for name, mine in query.items():
        theirs = entry.hashes.get(name)
        if theirs is not None and len(theirs) == len(mine):
            options = mine.variants if dihedral and mine.variants else (mine,)
            distances[name] = min(theirs - option for option in options)
    return distances


def _path(entry: Entry | None, key: str) -> str:
    if entry is not None and entry.metadata and entry.metadata.get("path"):
        return str(entry.metadata["path"])
    return key


def _print(query: Query, found: list[Found], json_output: bool) -> None:
    if json_output:
        emit_json(
            {
                "query": query.text,
                "matches": [{"key": f.key, "path": f.path, "distances": dict(f.distances)} for f in found],
            }
        )
        return
    emit_line(f"{query.text}: {len(found)} match{'es' if len(found) != 1 else ''}")
    for rank, item in enumerate(found, start=1):
        distances = "  ".join(f"{name} {value}" for name, value in item.distances.items())
        emit_line(f"  {rank:>3}. {item.path}  {distances}")
