"""Matcher presets tuned by the accuracy benchmark (`lookalike bench accuracy`).

Provisional home: these move into `lookalike.matcher` (its PRESETS) once that module lands on
main. A preset is a rule in the matcher's grammar plus how the hashes must be computed for it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """A named rule and the hashing it needs (algorithms, dihedral variants, border trimming)."""

    name: str
    rule: str  # "phash:16 <= 60 or pdq <= 70": any clause within its limit is a match
    dihedral: bool = True
    trim: bool = False
    summary: str = ""

    @property
    def clauses(self) -> list[tuple[str, int]]:
        """(algorithm, max distance) of each `or` clause."""
        out = []
        for part in self.rule.split(" or "):
            algorithm, _, limit = part.partition("<=")
            out.append((algorithm.strip(), int(limit)))
        return out

    @property
    def algorithms(self) -> tuple[str, ...]:
        """The hashes to compute for this preset, in rule order."""
        return tuple(dict.fromkeys(algorithm for algorithm, _ in self.clauses))


PRESETS: dict[str, Preset] = {
    "near-duplicate": Preset("near-duplicate", "phash:16 <= 60", dihedral=True),
}
PRESET_RULES = tuple(PRESETS)
DEFAULT_PRESET = "near-duplicate"
