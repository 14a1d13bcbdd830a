"""Searching an index for images or hex hashes: the shared logic behind `lookalike search` and
the HTTP service's `/v1/search`.

Queries are hashed in parallel; all queries that rank by the same algorithm are answered by one
batch search (`k` nearest or every match within a radius), or judged by a matcher rule/preset;
every match reports its distance for each hash both sides have.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lookalike.algorithms import parse_spec
from lookalike.errors import ImageError, LookalikeError
from lookalike.hash import Hash
from lookalike.index.base import Entry, Index
from lookalike.matcher import default_index_hashes
from lookalike.pipeline import hash_files

HEX_QUERY = re.compile(r"^(?:(?P<algorithm>[a-z_0-9]+(?::\d+)?)=)?(?P<hex>[0-9a-fA-F]{4,})$")


@dataclass
class Query:
    """One thing to search for: an image (hashed here) or a hex hash of one algorithm."""

    text: str
    hashes: dict[str, Hash] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Found:
    """One matching indexed image: its key, display path and distance per hash."""

    key: str
    path: str
    distances: Mapping[str, int]


def search_algorithms(text: str | None, stored: Mapping[str, int]) -> list[str]:
    """The algorithms to compare (the first one ranks): as asked, else what the index holds."""
    if text:
        return [parse_spec(name).key for name in text.split(",") if name.strip()]
    preferred = [name for name in ("pdq", *default_index_hashes()) if name in stored]
    names = list(dict.fromkeys(preferred)) or sorted(stored)
    if not names:
        raise LookalikeError("the index is empty: add images first (lookalike index add DIR)")
    return names


def parse_queries(items: Sequence[str], names: list[str], dihedral: bool, workers: int | None) -> list[Query]:
    """Queries from command-line words: existing files are hashed (in parallel), the rest parsed as hex."""
    queries = [Query(text) for text in items]
    images: dict[str, Query] = {}
    for query in queries:
        found = None if os.path.exists(query.text) else HEX_QUERY.match(query.text.strip())
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


def search_queries(
    index: Index,
    queries: list[Query],
    names: list[str],
    k: int,
    max_distance: int | None,
    preset: str | None,
    dihedral: bool,
) -> list[list[Found]]:
    """The matches of each query, best first (queries with an error get none)."""
    results: list[list[Found]] = [[] for _ in queries]
    if preset is not None:
        for position, query in enumerate(queries):
            if query.error is None:
                # Presets are tuned with the query's variants (rotations, flips, crops) in play.
                with_variants = dihedral or any(value.variants for value in query.hashes.values())
                verdicts = index.match(query.hashes, preset, dihedral=with_variants)
                entries = index.get_many(v.key for v in verdicts)
                results[position] = [
                    Found(v.key, display_path(entries.get(v.key), v.key), v.distances) for v in verdicts
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
                    display_path(entries.get(m.key), m.key),
                    distances_between(query.hashes, entries.get(m.key), dihedral),
                )
                for m in answer
            ]
    return results


def distances_between(query: Mapping[str, Hash], entry: Entry | None, dihedral: bool) -> dict[str, int]:
    if entry is None:
        return {}
    distances = {}
    for name, mine in query.items():
        theirs = entry.hashes.get(name)
        if theirs is not None and len(theirs) == len(mine):
            options = mine.variants if dihedral and mine.variants else (mine,)
            distances[name] = min(theirs - option for option in options)
    return distances


def display_path(entry: Entry | None, key: str) -> str:
    if entry is not None and entry.metadata and entry.metadata.get("path"):
        return str(entry.metadata["path"])
    return key
