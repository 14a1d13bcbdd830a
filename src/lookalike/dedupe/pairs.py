"""Pairs of stored entries that a matcher rule accepts: the input of grouping."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from lookalike.hash import Hash
from lookalike.index.base import Entry, Pairs

if TYPE_CHECKING:
    from lookalike.index.base import Index
    from lookalike.matcher import Matcher


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
