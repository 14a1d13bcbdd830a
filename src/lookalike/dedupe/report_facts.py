"""What the review page says about a group and each member: its tier, each copy's relation to the
kept copy, and which hash matched at what distance.

Groups may carry `tier` and per-member `relations` (set when the pairs were verified, see
`lookalike.dedupe`); both are read defensively, so a group without them still renders: its tier
is then "identical files" when every member has the kept copy's bytes, else "near-duplicates",
and a member has a relation only when its bytes are the kept copy's. The matching hash is found
again from the stored hashes of the pair, with the rule that grouped them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lookalike.dedupe.grouping import Group
from lookalike.dedupe.relations import SAFE_KINDS
from lookalike.hash import Hash
from lookalike.index.base import Entry
from lookalike.matcher import Condition, Matcher

# Tiers, most certain first: (label, CSS class). Unknown tiers are shown as they are named.
TIERS: dict[str, tuple[str, str]] = {
    "identical-files": ("identical files", "t-files"),
    "identical-pixels": ("identical pixels", "t-pixels"),
    "copies": ("near-duplicates", "t-near"),
    "near-duplicates": ("near-duplicates", "t-near"),
    "edited-copies": ("edited copies", "t-edited"),
    "unverified": ("unverified", "t-unverified"),
}
TIER_ORDER = tuple(TIERS)


@dataclass(frozen=True)
class RelationFacts:
    """A member's relation to the kept copy as the page shows it."""

    kind: str  # identical-file, identical-pixels, resized, re-encoded, rotated, cropped, edited, ...
    text: str  # a few words: "cropped (x 0.10-0.80, y 0.05-0.75)"
    safe: bool  # removing it loses nothing (pre-selected)
    transform: str = "none"  # the rotation/flip that aligns the copy on the kept copy
    region: tuple[float, float, float, float] | None = None  # of the kept frame the copy shows
    shown_at: tuple[float, float, float, float] | None = None  # of the copy's frame showing the kept one


@dataclass(frozen=True)
class MatchFacts:
    """How a member matched the kept copy: `text` names the hashes and distances, `detail` says
    more (limits, the hash's length) for a tooltip."""

    text: str
    detail: str


def tier_of(group: Group) -> str:
    """The group's tier: its own `tier` when it carries one, else from the members' bytes."""
    tier = getattr(group, "tier", None)
    if isinstance(tier, str) and tier:
        return tier
    digests = {entry.sha256 for entry in group.members}
    return "identical-files" if len(digests) == 1 and None not in digests else "near-duplicates"


def tier_label(tier: str) -> tuple[str, str]:
    """(label, CSS class) of a tier."""
    return TIERS.get(tier, (tier.replace("-", " "), "t-other"))


def relation_of(group: Group, entry: Entry) -> RelationFacts | None:
    """The member's relation to the kept copy, from the group's `relations` when it has them
    (any object with a `kind`, or a plain string), else "identical file" for the same bytes."""
    relations = getattr(group, "relations", None)
    relation: Any = relations.get(entry.key) if isinstance(relations, Mapping) else None
    if relation is None:
        best = group.best
        if entry.key != best.key and entry.sha256 is not None and entry.sha256 == best.sha256:
            return RelationFacts("identical-file", "identical file", True)
        return None
    kind = str(getattr(relation, "kind", relation))
    describe = getattr(relation, "describe", None)
    text = str(describe()) if callable(describe) else kind.replace("-", " ")
    safe = getattr(relation, "safe", None)
    return RelationFacts(
        kind=kind,
        text=text,
        safe=bool(safe) if isinstance(safe, bool) else kind in SAFE_KINDS,
        transform=str(getattr(relation, "transform", "none") or "none"),
        region=_box(getattr(relation, "region", None)),
        shown_at=_box(getattr(relation, "shown_at", None)),
    )


def _box(value: Any) -> tuple[float, float, float, float] | None:
    """Four shares (x0, y0, x1, y1) from a relation's attribute, or None."""
    if not isinstance(value, tuple | list) or len(value) != 4:
        return None
    x0, y0, x1, y1 = (float(v) for v in value)
    return x0, y0, x1, y1


def match_of(group: Group, entry: Entry, rule: Matcher | None) -> MatchFacts:
    """Which hash matched `entry` to the kept copy, at what distance: the clause of `rule` that
    holds on their stored hashes most clearly. A pair grouped through a rotated or cropped
    variant, local features, or another member has no such clause on the plain hashes; the page
    says so, with the distance the grouping recorded."""
    best = group.best
    recorded = group.distances.get(_pair(best.key, entry.key))
    if entry.sha256 is not None and entry.sha256 == best.sha256:
        return MatchFacts("same bytes", "the files are byte for byte the same (sha256)")
    if rule is not None:
        held = _held_clause(rule, best.hashes, entry.hashes)
        if held is not None:
            parts = [f"{_names(c)} {d}" for c, d in held]
            detail = "; ".join(
                f"{_names(c)}: {d} of {_bits(c, best.hashes)} bits differ (limit {c.max_distance})"
                for c, d in held
            )
            return MatchFacts(" and ".join(parts), f"matched by {rule.name or rule}: {detail}")
    if recorded is None:
        return MatchFacts(
            "through another member", "grouped with the kept copy through another member of the group"
        )
    closest = _closest_plain(rule, best.hashes, entry.hashes)
    how = "a rotated, flipped or cropped variant, or local features"
    if closest is not None:
        name, distance, nbits = closest
        return MatchFacts(
            f"a variant or keypoints ({name} {distance} unaligned)",
            f"matched through {how} (closest clause {recorded}); as they are, {name} differs in "
            f"{distance} of {nbits} bits",
        )
    return MatchFacts(
        f"a variant or keypoints (closest clause {recorded})",
        f"matched through {how} (closest clause {recorded})",
    )


def _pair(a: str, b: str) -> tuple[str, str]:
    first, second = sorted((a, b))
    return first, second


def _names(condition: Condition) -> str:
    return " + ".join(condition.algorithms)


def _bits(condition: Condition, hashes: Mapping[str, Hash]) -> int:
    return sum(hashes[a].nbits for a in condition.algorithms if a in hashes)


def _held_clause(
    rule: Matcher, kept: Mapping[str, Hash], copy: Mapping[str, Hash]
) -> list[tuple[Condition, int]] | None:
    """The conditions of the rule's alternative that holds on the plain hashes with the smallest
    distance, with their distances; None if none holds."""
    found: list[tuple[int, list[tuple[Condition, int]]]] = []
    for alternative in rule.groups:
        held: list[tuple[Condition, int]] = []
        for condition in alternative:
            distance = condition.distance(copy, kept)
            if distance is None or distance > condition.max_distance:
                break
            if not condition.quality_ok(copy, kept):
                break
            held.append((condition, distance))
        else:
            found.append((min(d for _, d in held), held))
    if not found:
        return None
    return min(found, key=lambda item: item[0])[1]


def _closest_plain(
    rule: Matcher | None, kept: Mapping[str, Hash], copy: Mapping[str, Hash]
) -> tuple[str, int, int] | None:
    """Of the rule's conditions that fail on the files as they are, the one closest to its limit:
    why the pair needed a variant (or keypoints) to match."""
    if rule is None:
        return None
    best: tuple[float, str, int, int] | None = None
    for condition in rule.conditions:
        distance = condition.distance(copy, kept)
        if distance is None or distance <= condition.max_distance:
            continue
        share = distance / max(1, condition.max_distance)
        if best is None or share < best[0]:
            best = (share, _names(condition), distance, _bits(condition, kept))
    return None if best is None else best[1:]
