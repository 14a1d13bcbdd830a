"""How often `lookalike dupes` keeps the original: families of an original and copies derived
from it by known edits (`derived_copies`) are indexed together and de-duplicated as `dupes`
does; each group holding an original counts as kept when its kept copy is that original. The
same run scores each copy's relation against the edit that made it."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lookalike.benchmarks.derived_copies import Family, make_family, relation_of
from lookalike.dedupe.describe import describe_groups
from lookalike.discover import file_key, key_path
from lookalike.index import open_index


@dataclass
class KeepResult:
    """Groups with an original, how many kept it, and the relations named for known copies."""

    groups: int = 0
    kept: int = 0
    missed: list[tuple[str, str]] = field(default_factory=list)  # (original, what was kept)
    relations_right: int = 0
    relations_total: int = 0
    confusions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (expected, named)

    @property
    def rate(self) -> float:
        return self.kept / self.groups if self.groups else 0.0

    @property
    def relation_rate(self) -> float:
        return self.relations_right / self.relations_total if self.relations_total else 0.0


def make_families(photos: Sequence[Path], folder: Path, seed: int = 0) -> list[Family]:
    """One family per photo, each in its own subfolder of `folder`."""
    return [make_family(photo, folder / f"family-{n:04d}", seed + n) for n, photo in enumerate(photos)]


def measure(
    families: Sequence[Family], preset: str = "near-duplicate", workers: int | None = None
) -> KeepResult:
    """Index every family's files in a temporary index, group and describe them as `lookalike
    dupes` does, and score the kept copies and the relations."""
    files = [str(path) for family in families for path in (family.original, *family.copies)]
    originals = {file_key(family.original): family for family in families}
    derivation = {file_key(path): name for family in families for path, name in family.copies.items()}
    result = KeepResult()
    with (
        tempfile.TemporaryDirectory(prefix="lookalike-keep-") as folder,
        open_index(f"{folder}/keep.db") as index,
    ):
        index.add_files(files, workers=workers)
        groups = describe_groups(index.duplicates(matcher=preset))
    for group in groups:
        keys = [entry.key for entry in group.members]
        original = next((key for key in keys if key in originals), None)
        if original is None:
            continue
        result.groups += 1
        if group.best.key == original:
            result.kept += 1
            for key, relation in group.relations.items():
                if key in derivation:
                    expected = relation_of(derivation[key])
                    result.relations_total += 1
                    result.relations_right += relation.kind == expected
                    if relation.kind != expected:
                        result.confusions[(expected, relation.kind)] += 1
        else:
            result.missed.append((key_path(original), key_path(group.best.key)))
    return result
