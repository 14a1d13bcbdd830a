"""Near-duplicate grouping: pairs -> groups, each with its best copy first.

Backend-neutral: a backend (or the candidate stage) finds the pairs and hands them here with the
catalog entries they involve. Groups are connected components of the "within r" graph, or with
`strict=True` star-shaped groups where every member is within r of the group's centre (greedy:
the entry with the most neighbours becomes a centre first).

>>> groups = index.duplicates("phash", 6)
>>> [entry.key for entry in groups[0].members]      # best copy first
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from lookalike.dedupe.best_copy import best_copy_rank
from lookalike.dedupe.relations import Relation
from lookalike.index.base import Entry


@dataclass(frozen=True)
class Group:
    """Near-duplicates: `members[0]` is the best copy (most pixels, then largest file, then oldest)."""

    members: tuple[Entry, ...]
    distances: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (key, key) -> distance
    # Set by `lookalike.dedupe.describe`: each member's relation to the kept copy (by key), and
    # the group's tier (identical-files, identical-pixels, copies, edited-copies, unverified).
    relations: Mapping[str, Relation] = field(default_factory=dict)
    tier: str | None = None
    # Set by `lookalike.dedupe.shown_copies`: entries the search paired with a member whose files
    # show they are not copies of it (similar pictures), left out of every group.
    similar: tuple[Entry, ...] = ()

    @property
    def best(self) -> Entry:
        return self.members[0]

    def selected(self, include_edited: bool = False) -> list[Entry]:
        """The members an action may remove: copies whose relation says nothing is lost
        (identical, re-encoded, resized), or every copy with `include_edited`; a member of a
        group never verified (no relations) counts as a copy, as before verification existed."""
        chosen = []
        for entry in self.members[1:]:
            relation = self.relations.get(entry.key)
            if include_edited or relation is None or relation.safe:
                chosen.append(entry)
        return chosen


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
