"""Which searches nominate the candidates of a rule: key probes of candidate families, or exact
range searches.

Every pair a rule accepts satisfies every condition of at least one group, so candidates of each
group suffice. A group is nominated by key probes when one of its algorithms has candidate keys
(`Algorithm.candidate_layout`), with the query variants of every algorithm of the group in that
family (a trimmed query may meet an untrimmed copy); otherwise, or with `exact`, by a range
search on its most selective condition at that condition's radius, which misses nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lookalike.algorithms import parse_spec
from lookalike.candidates.keys import KeyLayout
from lookalike.errors import UnknownAlgorithmError
from lookalike.matcher import Condition, Matcher


@dataclass(frozen=True)
class KeyProbe:
    """Probe family `family`'s key tables with the variants of `algorithms` (query side)."""

    family: str
    layout: KeyLayout
    algorithms: tuple[str, ...]


@dataclass(frozen=True)
class RangeProbe:
    """An exact range search of `algorithm` at `radius`."""

    algorithm: str
    radius: int


Probe = KeyProbe | RangeProbe


def family_of(algorithm: str) -> tuple[str, KeyLayout] | None:
    """The candidate family of a stored algorithm and its key layout, if it has keys."""
    try:
        spec = parse_spec(algorithm)
    except UnknownAlgorithmError:
        return None
    layout, family = spec.candidate_layout, spec.candidate_family
    if layout is None or family is None:
        return None
    return family, layout


def probes_for(rule: Matcher, widths: Mapping[str, int], *, exact: bool = False) -> list[Probe]:
    """The probes whose union holds every pair `rule` can accept, given the stored algorithms and
    their bit lengths (`widths`); algorithms the index lacks cannot anchor a group."""
    families: dict[str, tuple[KeyLayout, dict[str, None]]] = {}
    ranges: dict[tuple[str, int], None] = {}
    for group in rule.groups:
        anchor = None if exact else _key_anchor(group, widths)
        if anchor is not None:
            family, layout = anchor
            members = families.setdefault(family, (layout, {}))[1]
            for condition in group:
                for algorithm in condition.algorithms:
                    found = family_of(algorithm)
                    if found is not None and found[0] == family:
                        members[algorithm] = None
            continue
        plan = Matcher((group,)).search_plan(widths) if _any_stored(group, widths) else []
        for algorithm, radius in plan:
            ranges[(algorithm, radius)] = None
    probes: list[Probe] = [KeyProbe(f, layout, tuple(m)) for f, (layout, m) in families.items()]
    probes += [RangeProbe(algorithm, radius) for algorithm, radius in ranges]
    return probes


def _key_anchor(group: tuple[Condition, ...], widths: Mapping[str, int]) -> tuple[str, KeyLayout] | None:
    """The candidate family of the group's most selective keyed algorithm that the index holds."""
    best: tuple[float, str, KeyLayout] | None = None
    for condition in group:
        for algorithm in condition.algorithms:
            found = family_of(algorithm)
            if found is None or algorithm not in widths:
                continue
            share = condition.max_distance / max(widths[algorithm], 1)
            if best is None or share < best[0]:
                best = (share, found[0], found[1])
    return None if best is None else (best[1], best[2])


def _any_stored(group: tuple[Condition, ...], widths: Mapping[str, int]) -> bool:
    return any(a in widths for condition in group for a in condition.algorithms)
