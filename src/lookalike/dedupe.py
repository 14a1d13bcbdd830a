"""Near-duplicate grouping: pairs within r -> groups, each with its best copy first.

Backend-neutral: a backend finds the pairs (in memory or in SQL) and hands them here with the
catalog entries they involve. Groups are connected components of the "within r" graph, or with
`strict=True` star-shaped groups where every member is within r of the group's centre (greedy:
the entry with the most neighbours becomes a centre first).

>>> groups = index.duplicates("phash", 6)
>>> [entry.key for entry in groups[0].members]      # best copy first
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from lookalike.hash import Hash
from lookalike.index.base import Entry, Group, Pairs

if TYPE_CHECKING:
    from lookalike.index.base import Index
    from lookalike.matcher import Matcher


def content_pixels(entry: Entry) -> int:
    """Pixels of picture: without uniform borders when indexing measured them (metadata
    "content"), so bars added to a copy do not make it look like the larger original."""
    content = entry.metadata.get("content") if entry.metadata else None
    if isinstance(content, list) and len(content) == 2 and all(isinstance(v, int) for v in content):
        return int(content[0]) * int(content[1])
    return entry.pixels


def best_copy_rank(entry: Entry) -> tuple[int, int, float, str]:
    """Sort key putting the best copy first: most pixels of picture (see `content_pixels`), then
    largest file, then oldest (file mtime, else when it was indexed), then key for a stable order."""
    age = entry.mtime if entry.mtime is not None else entry.added_at
    return (-content_pixels(entry), -(entry.byte_size or 0), age, entry.key)


def group_pairs(
    first: npt.NDArray[np.int64],
    second: npt.NDArray[np.int64],
    distances: npt.NDArray[np.integer],
    entries: Mapping[int, Entry],
    *,
    strict: bool = False,
) -> list[Group]:
    """Groups from pairs of entry ids (`first[i]`, `second[i]`) at `distances[i]`.

    Groups are sorted largest first (then by their best copy's key); pairs whose entries are not
    in `entries` (removed meanwhile) are ignored.
    """
    edges = [
        (a, b, d)
        for a, b, d in zip(first.tolist(), second.tolist(), distances.tolist(), strict=True)
        if a != b and a in entries and b in entries
    ]
    if not edges:
        return []
    member_sets = _strict_groups(edges, entries) if strict else _components(edges)
    groups = [_make_group(members, edges_within, entries) for members, edges_within in member_sets]
    groups.sort(key=lambda g: (-len(g.members), g.best.key))
    return groups


Edge = tuple[int, int, int]


def _components(edges: list[Edge]) -> list[tuple[list[int], list[Edge]]]:
    nodes, inverse = np.unique(np.array([(a, b) for a, b, _ in edges], dtype=np.int64), return_inverse=True)
    inverse = inverse.reshape(-1, 2)
    graph = coo_matrix(
        (np.ones(len(edges), dtype=np.int8), (inverse[:, 0], inverse[:, 1])), shape=(len(nodes), len(nodes))
    )
    _, labels = connected_components(graph, directed=False)
    members: dict[int, list[int]] = defaultdict(list)
    for node, label in zip(nodes.tolist(), labels.tolist(), strict=True):
        members[label].append(node)
    label_of = dict(zip(nodes.tolist(), labels.tolist(), strict=True))
    within: dict[int, list[Edge]] = defaultdict(list)
    for edge in edges:
        within[label_of[edge[0]]].append(edge)
    return [(members[label], within[label]) for label in members]


def _strict_groups(edges: list[Edge], entries: Mapping[int, Entry]) -> list[tuple[list[int], list[Edge]]]:
    neighbours: dict[int, dict[int, int]] = defaultdict(dict)
    for a, b, d in edges:
        neighbours[a][b] = d
        neighbours[b][a] = d
    unassigned = set(neighbours)
    # Centres: most neighbours first, ties to the better copy; a centre claims its free neighbours.
    order = sorted(neighbours, key=lambda node: (-len(neighbours[node]), best_copy_rank(entries[node])))
    groups: list[tuple[list[int], list[Edge]]] = []
    for centre in order:
        if centre not in unassigned:
            continue
        claimed = [node for node in neighbours[centre] if node in unassigned]
        if not claimed:
            continue
        unassigned.discard(centre)
        unassigned.difference_update(claimed)
        groups.append(([centre, *claimed], [(centre, node, neighbours[centre][node]) for node in claimed]))
    return groups


def _make_group(members: list[int], edges: list[Edge], entries: Mapping[int, Entry]) -> Group:
    ordered = sorted((entries[node] for node in members), key=best_copy_rank)
    distances: dict[tuple[str, str], int] = {}
    for a, b, d in edges:
        key_a, key_b = sorted((entries[a].key, entries[b].key))
        distances[(key_a, key_b)] = d
    return Group(tuple(ordered), distances)


def matching_pairs(index: Index, matcher: Matcher | str, *, include_flagged: bool = False) -> Pairs:
    """Pairs of stored entries that `matcher` accepts, with the distance of the clause that
    accepted each (`Matcher.closest`).

    Candidates come from the rule's exact all-pairs search on its most selective hash (every pair
    the rule can accept is within that radius), then each candidate pair is judged on all hashes.
    """
    from lookalike.matcher import Matcher

    rule = matcher if isinstance(matcher, Matcher) else Matcher.parse(matcher)
    widths = index.algorithm_bits()
    first: list[int] = []
    second: list[int] = []
    scores: list[int] = []
    entries: dict[int, Entry] = {}
    seen: set[tuple[int, int]] = set()
    for algorithm, radius in rule.search_plan(widths):
        found = index.pairs(algorithm, radius, include_flagged=include_flagged)
        entries.update(found.entries)
        for a, b in zip(found.first.tolist(), found.second.tolist(), strict=True):
            pair = (min(a, b), max(a, b))
            if pair in seen or a not in found.entries or b not in found.entries:
                continue
            seen.add(pair)
            verdict = rule.verdict("", found.entries[a].hashes, found.entries[b].hashes)
            if verdict is not None:
                first.append(pair[0])
                second.append(pair[1])
                scores.append(rule.closest(verdict))
    return Pairs(
        np.asarray(first, dtype=np.int64),
        np.asarray(second, dtype=np.int64),
        np.asarray(scores, dtype=np.int64),
        entries,
    )


def query_pairs(
    index: Index,
    queries: Mapping[str, Mapping[str, Hash]],
    matcher: Matcher | str,
    *,
    include_flagged: bool = False,
) -> Pairs:
    """Pairs the rule accepts when each stored image, hashed again with its variants (rotations,
    flips, crops: `hash_file(..., dihedral=True)`), is searched for: `queries` maps a stored key
    to those hashes. Each group of the rule contributes one batch range search (its most selective
    condition, variants included), then each candidate pair is judged on all the hashes the rule names.
    Keys absent from the index are ignored."""
    from lookalike.matcher import Matcher

    rule = matcher if isinstance(matcher, Matcher) else Matcher.parse(matcher)
    keys = list(queries)
    candidates: set[tuple[str, str]] = set()
    widths = index.algorithm_bits()
    for algorithm, radius in rule.search_plan(widths):
        asking = [key for key in keys if algorithm in queries[key]]
        if not asking:
            continue
        batch = [queries[key][algorithm] for key in asking]
        with_variants = all(value.variants for value in batch)
        answers = index.range_search(
            batch, algorithm, radius, dihedral=with_variants, include_flagged=include_flagged
        )
        for key, answer in zip(asking, answers, strict=True):
            candidates.update((key, match.key) for match in answer if match.key != key)
    involved = sorted({key for pair in candidates for key in pair})
    entries = index.get_many(involved)
    first: list[int] = []
    second: list[int] = []
    scores: list[int] = []
    seen: set[tuple[int, int]] = set()
    for query_key, stored_key in sorted(candidates):
        if query_key not in entries or stored_key not in entries:
            continue
        a, b = entries[query_key].id, entries[stored_key].id
        pair = (min(a, b), max(a, b))
        if pair in seen:
            continue
        verdict = rule.verdict(stored_key, queries[query_key], entries[stored_key].hashes, dihedral=True)
        if verdict is None:
            continue
        seen.add(pair)
        first.append(pair[0])
        second.append(pair[1])
        scores.append(rule.closest(verdict))
    by_id = {entry.id: entry for entry in entries.values()}
    return Pairs(
        np.asarray(first, dtype=np.int64),
        np.asarray(second, dtype=np.int64),
        np.asarray(scores, dtype=np.int64),
        by_id,
    )
