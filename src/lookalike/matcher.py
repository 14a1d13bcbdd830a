"""Decisions from several hashes: per-algorithm thresholds combined into one yes/no, with presets.

A rule is conditions joined by `and` (every one must hold) and `or` (any one); `and` binds tighter:

    phash <= 8 and colorhash <= 6         both distances within their thresholds
    ahash + colorhash <= 12               the seed article's combined distance (a sum)
    pdq <= 31 with quality >= 50          a threshold with a quality gate on both hashes
    pdq <= 31 or phash <= 20 and phash_eq <= 90    either PDQ, or both pHashes, agree

>>> m = Matcher.parse("phash <= 8 and colorhash <= 6")
>>> m.matches(query_hashes, stored_hashes)
True
>>> index.match(query_hashes, "near-duplicate")   # candidates from one range search, then the rule

Presets (`Matcher.preset(name)`): `exact-duplicate`, `near-duplicate` (the default) and `similar`:
one rule at 99.99%, 99.9% and 99% precision, tuned and measured by `lookalike bench accuracy`.
On 529 photos x 46 edits, held-out half (docs/accuracy.md): `near-duplicate` finds 91.9% of
edited copies (98.2% leaving out 20% crops) at 99.77% precision.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from lookalike.errors import MatcherSyntaxError
from lookalike.hash import Hash

if TYPE_CHECKING:
    from lookalike.local.verify import Alignment

# One rule at three operating points, tuned by `lookalike bench accuracy` (docs/accuracy.md):
# equalised pHash 16x16 of the whole image, of the image without its uniform borders, of the image
# without its uniform or textureless borders (blurred bars) and of crops of it (query variants);
# plain pHash 16x16 where its thumbnail has full contrast, or elsewhere when the equalised hashes
# corroborate it (agree far beyond chance: two unrelated 256-bit hashes differ in 128 +- 8 bits).
# Search with dihedral=True so rotations, flips and crops match. Each preset's limits are the
# thresholds that gave its precision on the tuning half of 529 photos x 46 edits, every pair of
# images of two different photos counted as a negative (docs/accuracy.md has the held-out recall
# per edit).
_RULE = (
    "phash_eq <= {eq} or phash_eq_trimmed <= {eq} or phash_eq_trimmed_smooth <= {eq} "
    "or phash_eq_crops <= {eq} "
    "or phash:16 <= {plain} with quality >= 100 or phash:16 <= {plain} and phash_eq <= {corroborate}"
)
# The local clause: pairs the hashes nearly accept, or that share local features, are copies
# when geometry verifies them (lookalike.local): crops of any shape, reposts in a frame. An index
# without local features (no OpenCV) evaluates the hash rule alone.
PRESETS: dict[str, str] = {
    # Hashes tuned for 99.99% precision; held out: 90.8% recall (97.8% without 20% crops), 99.92%.
    "exact-duplicate": _RULE.format(eq=52, plain=18, corroborate=84) + " or local >= 16",
    # Hashes tuned for 99.9% (the default); held out: 91.9% recall (98.2%), 99.77% precision.
    "near-duplicate": _RULE.format(eq=56, plain=20, corroborate=90) + " or local >= 12",
    # Hashes tuned for 99%; held out: 93.8% recall (98.7%), 99.16% precision.
    "similar": _RULE.format(eq=62, plain=22, corroborate=100) + " or local >= 10",
    # Partial copies (a crop, a screenshot, a collage, a picture in a frame): the `similar` hashes,
    # and local features searched wider and accepted on fewer inliers.
    "partial-copy": _RULE.format(eq=62, plain=22, corroborate=100)
    + " or phash_eq_regions <= 56 or local >= 10 of 32",
}

DEFAULT_PRESET = "near-duplicate"

SEED_HASHES: tuple[str, ...] = ("ahash", "colorhash")  # the seed article's pair


def preset_algorithms() -> tuple[str, ...]:
    """Every algorithm some preset reads, in first-use order."""
    seen: dict[str, None] = {}
    for rule in PRESETS.values():
        for name in re.findall(r"[A-Za-z][A-Za-z0-9_:]*", rule):
            if name.lower() not in ("and", "or", "with", "quality", "local", "of"):
                seen[name] = None
    return tuple(seen)


def default_index_hashes() -> tuple[str, ...]:
    """What `lookalike index add` stores by default: every preset's hashes, ImageHash's pHash and
    PDQ with its quality (the hashes stored lists and hex searches use; PDQ is how hash lists are
    exchanged) and the seed's pair, so any preset, a PDQ list and the seed's combined distance can
    be evaluated on the index. PDQ shares the presets' decode (same working side)."""
    return tuple(dict.fromkeys((*preset_algorithms(), "phash", "pdq", *SEED_HASHES)))


_LOCAL = re.compile(r"^\s*local\s*>=\s*(?P<inliers>\d+)(?:\s+of\s+(?P<breadth>\d+))?\s*$", re.IGNORECASE)
LOCAL_BREADTH = 8  # stored images verified per query, those sharing most local features
NEAR_FACTOR = 1.45  # a near miss is within 1.45 times a condition's limit (56 -> 81 bits)

_CLAUSE = re.compile(
    r"^\s*(?P<terms>[A-Za-z0-9_:.\-]+(?:\s*\+\s*[A-Za-z0-9_:.\-]+)*)\s*(?P<op><=|<)\s*(?P<limit>\d+)"
    r"(?:\s+with\s+quality\s*>=\s*(?P<quality>\d+))?\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Condition:
    """`sum of distances over algorithms <= max_distance`, optionally gated on hash quality."""

    algorithms: tuple[str, ...]
    max_distance: int
    min_quality: int | None = None

    def distance(
        self, query: Mapping[str, Hash], stored: Mapping[str, Hash], dihedral: bool = False
    ) -> int | None:
        """The summed distance, or None if either side lacks one of the hashes."""
        total = 0
        for algorithm in self.algorithms:
            mine, theirs = query.get(algorithm), stored.get(algorithm)
            if mine is None or theirs is None or mine.nbits != theirs.nbits:
                return None
            candidates = mine.variants if dihedral and mine.variants else (mine,)
            total += min(theirs - variant for variant in candidates)
        return total

    def quality_ok(self, query: Mapping[str, Hash], stored: Mapping[str, Hash]) -> bool:
        if self.min_quality is None:
            return True
        for algorithm in self.algorithms:
            for value in (query.get(algorithm), stored.get(algorithm)):
                if value is not None and value.quality is not None and value.quality < self.min_quality:
                    return False
        return True

    def __str__(self) -> str:
        text = f"{' + '.join(self.algorithms)} <= {self.max_distance}"
        return text if self.min_quality is None else f"{text} with quality >= {self.min_quality}"


@dataclass(frozen=True)
class Verdict:
    """A stored image the matcher accepted: its key and the distance per condition and algorithm
    ("local": the inliers, when local features verified it; `alignment` then says where the
    query lies in the stored image and how: lookalike.local.verify.Alignment)."""

    key: str
    distances: Mapping[str, int]  # per algorithm, and per combined condition ("ahash + colorhash")
    score: int  # the sum of the conditions' distances: lower is closer
    variant: int = 0
    alignment: Alignment | None = field(default=None, compare=False)
    # per algorithm, the query variant at its distance (0 too when a stored variant was nearer)
    variants: Mapping[str, int] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Evaluation:
    """A rule applied to many pairs: which it accepts, each pair's score (the sum of its
    conditions' distances, as `Verdict.score`), the distance of the condition that accepted it
    most clearly (`Matcher.closest`), and every condition's summed distance (-1: not computable)."""

    accepted: npt.NDArray[np.bool_]
    score: npt.NDArray[np.int64]
    closest: npt.NDArray[np.int64]
    condition_distances: Mapping[Condition, npt.NDArray[np.int64]]


@dataclass(frozen=True)
class Matcher:
    """A rule in disjunctive form: a pair matches when every condition of at least one group holds.

    `and` binds tighter than `or`, as in SQL: "a <= 1 or b <= 2 and c <= 3" has the groups
    (a <= 1) and (b <= 2, c <= 3).
    """

    groups: tuple[tuple[Condition, ...], ...]
    name: str | None = field(default=None, compare=False)
    # `or local >= N [of K]`: a pair the hashes nearly accept (a near miss), or one of the K
    # stored images sharing most local features with the query, is accepted when geometry
    # verifies it with at least N inliers (lookalike.local)
    local_inliers: int | None = None
    local_breadth: int = LOCAL_BREADTH

    @classmethod
    def all_of(cls, conditions: Sequence[Condition], name: str | None = None) -> Matcher:
        """Every condition must hold."""
        return cls((tuple(conditions),), name)

    @classmethod
    def any_of(cls, conditions: Sequence[Condition], name: str | None = None) -> Matcher:
        """Any one condition suffices."""
        return cls(tuple((condition,) for condition in conditions), name)

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """Parse a rule ("phash <= 8 and colorhash <= 6", "pdq <= 31 or phash <= 20 and
        phash_eq <= 90", "phash_eq <= 56 or local >= 12") or a preset name ("near-duplicate")."""
        if text.strip().lower() in PRESETS:
            return cls.preset(text)
        alternatives = re.split(r"\s+or\s+", text.strip(), flags=re.IGNORECASE)
        local = [a for a in alternatives if _LOCAL.match(a)]
        hashed = [a for a in alternatives if not _LOCAL.match(a)]
        if len(local) > 1 or not hashed:
            raise MatcherSyntaxError(
                f"cannot parse {text!r}: 'local >= N' may appear once, beside at least one hash condition"
            )
        clause = _LOCAL.match(local[0]) if local else None
        inliers = int(clause["inliers"]) if clause else None
        breadth = int(clause["breadth"]) if clause and clause["breadth"] else LOCAL_BREADTH
        split_and = re.compile(r"\s+and\s+", re.IGNORECASE)
        groups = tuple(tuple(_parse_condition(p, text) for p in split_and.split(a)) for a in hashed)
        return cls(groups, local_inliers=inliers, local_breadth=breadth)

    @classmethod
    def preset(cls, name: str) -> Matcher:
        """A named preset: `exact-duplicate`, `near-duplicate` or `similar`."""
        key = name.strip().lower()
        if key not in PRESETS:
            raise MatcherSyntaxError(f"unknown matcher preset {name!r}; known: {', '.join(PRESETS)}")
        parsed = cls.parse(PRESETS[key])
        return cls(parsed.groups, key, parsed.local_inliers, parsed.local_breadth)

    @classmethod
    def combined(cls, algorithms: Sequence[str] = ("ahash", "colorhash"), max_distance: int = 12) -> Matcher:
        """The seed article's rule: the sum of the algorithms' distances within `max_distance`."""
        return cls.all_of((Condition(tuple(_canonical(a) for a in algorithms), max_distance),))

    @property
    def conditions(self) -> tuple[Condition, ...]:
        """Every distinct condition of the rule, in order of first use."""
        return tuple(dict.fromkeys(condition for group in self.groups for condition in group))

    @property
    def algorithms(self) -> tuple[str, ...]:
        """Every algorithm the rule reads, in order of first use."""
        seen: dict[str, None] = {}
        for condition in self.conditions:
            for algorithm in condition.algorithms:
                seen[algorithm] = None
        return tuple(seen)

    def verdict(
        self, key: str, query: Mapping[str, Hash], stored: Mapping[str, Hash], dihedral: bool = False
    ) -> Verdict | None:
        """A `Verdict` if the stored hashes match the query under this rule, else None."""
        passed: dict[Condition, bool] = {}
        distances: dict[str, int] = {}
        score = 0
        for condition in self.conditions:
            distance = condition.distance(query, stored, dihedral)
            ok = distance is not None and distance <= condition.max_distance
            passed[condition] = ok and condition.quality_ok(query, stored)
            if distance is not None:
                distances[" + ".join(condition.algorithms)] = distance
                score += distance
        if not any(all(passed[condition] for condition in group) for group in self.groups):
            return None
        for algorithm in self.algorithms:  # the single distances too, for display
            mine, theirs = query.get(algorithm), stored.get(algorithm)
            if mine is not None and theirs is not None and mine.nbits == theirs.nbits:
                options = mine.variants if dihedral and mine.variants else (mine,)
                distances.setdefault(algorithm, min(theirs - v for v in options))
        return Verdict(key, distances, score)

    def closest(self, verdict: Verdict) -> int:
        """The distance of the condition that accepted the pair most clearly (the smallest
        distance among the conditions of the groups that held): what a person wants to see."""
        passed: list[int] = []
        for group in self.groups:
            found = [verdict.distances.get(" + ".join(condition.algorithms)) for condition in group]
            if all(
                distance is not None and distance <= condition.max_distance
                for distance, condition in zip(found, group, strict=True)
            ):
                passed.extend(distance for distance in found if distance is not None)
        return min(passed) if passed else verdict.score

    def evaluate(
        self,
        distances: Mapping[str, npt.NDArray[np.int64]],
        lowest_quality: Mapping[str, npt.NDArray[np.float32]],
    ) -> Evaluation:
        """`verdict` for many pairs at once. `distances[a]` holds algorithm a's distance per pair
        (-1 where either side lacks the hash), `lowest_quality[a]` the lower of the two sides'
        quality scores (NaN where neither has one)."""
        count = len(next(iter(distances.values()))) if distances else 0
        missing = np.full(count, -1, dtype=np.int64)
        condition_distance: dict[Condition, npt.NDArray[np.int64]] = {}
        condition_passed: dict[Condition, npt.NDArray[np.bool_]] = {}
        score = np.zeros(count, dtype=np.int64)
        for condition in self.conditions:
            parts = [distances.get(algorithm, missing) for algorithm in condition.algorithms]
            valid = np.logical_and.reduce([part >= 0 for part in parts])
            total = np.where(valid, np.sum(parts, axis=0), -1)
            passed = valid & (total <= condition.max_distance)
            if condition.min_quality is not None:
                for algorithm in condition.algorithms:
                    lowest = lowest_quality.get(algorithm)
                    if lowest is not None:
                        passed &= np.isnan(lowest) | (lowest >= condition.min_quality)
            condition_distance[condition] = total
            condition_passed[condition] = passed
            score += np.where(valid, total, 0)
        accepted = np.zeros(count, dtype=bool)
        closest = np.full(count, np.iinfo(np.int64).max, dtype=np.int64)
        for group in self.groups:
            held = np.logical_and.reduce([condition_passed[c] for c in group])
            accepted |= held
            for condition in group:
                closest = np.where(held, np.minimum(closest, condition_distance[condition]), closest)
        closest = np.where(accepted, closest, score)
        return Evaluation(accepted, score, closest, condition_distance)

    def matches(self, query: Mapping[str, Hash], stored: Mapping[str, Hash], dihedral: bool = False) -> bool:
        return self.verdict("", query, stored, dihedral) is not None

    def candidate_plan(self, query: Mapping[str, Hash]) -> list[tuple[str, int]]:
        """Range searches whose union holds every possible match: (algorithm, radius) pairs."""
        return self.search_plan({name: value.nbits for name, value in query.items()})

    def search_plan(self, widths: Mapping[str, int]) -> list[tuple[str, int]]:
        """Range searches whose union holds every match, given the bit width of each algorithm
        available: per group, its most selective condition (every match of the group satisfies
        each of them); a summed condition bounds each of its algorithms by the same radius."""
        plan: dict[tuple[str, int], None] = {}
        for group in self.groups:
            options = [
                (_selectivity(widths[algorithm], condition.max_distance), algorithm, condition.max_distance)
                for condition in group
                for algorithm in condition.algorithms
                if algorithm in widths
            ]
            if options:
                _, algorithm, radius = min(options)
                plan[(algorithm, radius)] = None
        if not plan and len(self.groups) == 1:
            raise MatcherSyntaxError(f"the query has none of the hashes {', '.join(self.algorithms)}")
        return list(plan)

    def near_misses(self, evaluation: Evaluation) -> npt.NDArray[np.bool_]:
        """Pairs the hashes did not accept but came near to: some condition's distance within
        NEAR_FACTOR times its limit (two unrelated photos' 256-bit hashes are about half
        their bits apart, far beyond)."""
        near = np.zeros(len(evaluation.accepted), dtype=bool)
        for condition, distance in evaluation.condition_distances.items():
            near |= (distance >= 0) & (distance <= condition.max_distance * NEAR_FACTOR)
        return near & ~evaluation.accepted

    def __str__(self) -> str:
        text = " or ".join(" and ".join(str(condition) for condition in group) for group in self.groups)
        if self.local_inliers is None:
            return text
        breadth = "" if self.local_breadth == LOCAL_BREADTH else f" of {self.local_breadth}"
        return f"{text} or local >= {self.local_inliers}{breadth}"


def _canonical(name: str) -> str:
    from lookalike.index.queries import canonical_algorithm

    return canonical_algorithm(name)


def _parse_condition(part: str, whole: str) -> Condition:
    found = _CLAUSE.match(part)
    if not found:
        raise MatcherSyntaxError(
            f"cannot parse {part!r} in {whole!r}; write e.g. 'phash <= 8', 'ahash + colorhash <= 12' "
            "or 'pdq <= 31 with quality >= 50'"
        )
    terms = tuple(_canonical(term) for term in re.split(r"\s*\+\s*", found["terms"]))
    limit = int(found["limit"]) - (1 if found["op"] == "<" else 0)
    quality = int(found["quality"]) if found["quality"] is not None else None
    return Condition(terms, limit, quality)


def _selectivity(nbits: int, radius: int) -> float:
    """Share of random hashes within `radius`: smaller means fewer candidates to verify."""
    return sum(math.comb(nbits, i) for i in range(min(radius, nbits) + 1)) / 2.0**nbits
