"""Dihedral variants come in Meta's order, for every algorithm that has them.

Meta's `reg-test-input/dih/` holds one photo turned and flipped 8 ways, named in the order of
`pdqhash.compute_dihedral` (original, rotate 90, 180, 270, flipx = top-bottom, flipy =
left-right, flip-plus-1 = transpose, flip-minus-1 = transverse). Variant k of the original must be
the hash of file k.
"""

from __future__ import annotations

import pytest

import lookalike
from conftest import FIXTURES
from lookalike.algorithms import parse_spec
from lookalike.algorithms.dihedral import DIHEDRAL_NAMES
from lookalike.hash import Hash

DIH_FILES = sorted((FIXTURES / "pdq" / "reg-test-input" / "dih").glob("bridge-*.jpg"))
SIXTY_FOUR_BIT = ["ahash", "dhash", "dhash_vertical", "phash", "whash"]


def test_dihedral_names_follow_metas_file_order() -> None:
    meta = [
        "original",
        "rotate-90",
        "rotate-180",
        "rotate-270",
        "flipx",
        "flipy",
        "flip-plus-1",
        "flip-minus-1",
    ]
    assert [path.stem.split("-", 2)[2] for path in DIH_FILES] == meta
    assert DIHEDRAL_NAMES[4:6] == ("flip_top_bottom", "flip_left_right")


@pytest.mark.parametrize("mode", ["exact", "fast"])
@pytest.mark.parametrize("name", SIXTY_FOUR_BIT)
def test_variant_k_of_the_original_is_the_hash_of_file_k(name: str, mode: str) -> None:
    original = lookalike.hash_file(DIH_FILES[0], [name], mode=mode, dihedral=True)[name]
    assert isinstance(original, Hash) and original.variants is not None and len(original.variants) == 8
    for index, path in enumerate(DIH_FILES):
        turned = lookalike.hash_file(path, [name], mode=mode)[name]
        assert isinstance(turned, Hash)
        distances = [variant - turned for variant in original.variants]
        assert distances[index] == min(distances), (path.name, distances)
        assert distances[index] <= max(2, parse_spec(name).max_distance // 4), (path.name, distances)
