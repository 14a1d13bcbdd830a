"""Grouping pairs into near-duplicate groups, and matching by several hashes."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike import Hash, Matcher
from lookalike.dedupe.best_copy import best_copy_rank
from lookalike.dedupe.grouping import group_pairs
from lookalike.errors import MatcherSyntaxError
from lookalike.index import Entry
from lookalike.matcher import PRESETS, Condition


def _entry(
    entry_id: int, width: int = 10, size: int = 100, mtime: float | None = 0.0, added: float = 0.0
) -> Entry:
    return Entry(entry_id, f"k{entry_id}", {}, None, size, width, width, mtime, added)


def _groups(
    pairs: list[tuple[int, int, int]], entries: dict[int, Entry], strict: bool = False
) -> list[list[str]]:
    a, b, d = (np.array(column, dtype=np.int64) for column in zip(*pairs, strict=True))
    return [[m.key for m in g.members] for g in group_pairs(a, b, d, entries, strict=strict)]


def test_best_copy_is_most_pixels_then_largest_file_then_oldest() -> None:
    ranked = sorted(
        [
            _entry(1, width=10),
            _entry(2, width=20),
            _entry(3, width=20, size=500),
            _entry(4, width=20, size=500, mtime=-5),
        ],
        key=best_copy_rank,
    )
    assert [e.id for e in ranked] == [4, 3, 2, 1]
    no_mtime = sorted(
        [_entry(5, mtime=None, added=9.0), _entry(6, mtime=None, added=1.0)], key=best_copy_rank
    )
    assert [e.id for e in no_mtime] == [6, 5]


def test_components_join_chains_and_strict_groups_split_them() -> None:
    entries = {i: _entry(i, width=10 + i) for i in range(1, 6)}
    chain = [(1, 2, 1), (2, 3, 1), (3, 4, 1), (4, 5, 1)]
    assert _groups(chain, entries) == [["k5", "k4", "k3", "k2", "k1"]]
    strict = _groups(chain, entries, strict=True)
    assert sorted(len(g) for g in strict) == [2, 3]  # a centre with both neighbours, then a pair
    assert all(len(g) <= 3 for g in strict)


def test_pairs_with_removed_entries_are_ignored() -> None:
    entries = {1: _entry(1), 2: _entry(2)}
    assert _groups([(1, 2, 0), (2, 3, 0)], entries) == [["k1", "k2"]]


def test_parse_rules_with_and_or_sums_and_quality_gates() -> None:
    phash, colorhash = Condition(("phash",), 8), Condition(("colorhash",), 6)
    assert Matcher.parse("pHash <= 8 and colorhash <= 6").groups == ((phash, colorhash),)
    assert Matcher.parse("phash <= 8 or colorhash <= 6").groups == ((phash,), (colorhash,))
    assert Matcher.parse("ahash + colorhash < 13").conditions == (Condition(("ahash", "colorhash"), 12),)
    assert Matcher.parse("pdq <= 31 with quality >= 50").conditions == (Condition(("pdq",), 31, 50),)
    for bad in (
        "phash",
        "phash >= 3",
        "?? <= 3",
        "(phash <= 3 or dhash <= 2) and ahash <= 1",
        "phash <= 3 or",
    ):
        with pytest.raises(MatcherSyntaxError):
            Matcher.parse(bad)


def test_and_binds_tighter_than_or() -> None:
    rule = Matcher.parse("pdq <= 10 or phash <= 4 and dhash <= 4")
    assert rule.groups == ((Condition(("pdq",), 10),), (Condition(("phash",), 4), Condition(("dhash",), 4)))
    query = {"pdq": Hash(0, 256), "phash": Hash(0, 64), "dhash": Hash(0, 64)}
    far_pdq = Hash((1 << 40) - 1, 256)  # 40 bits away
    assert rule.matches(query, {"pdq": Hash(0b111, 256), "phash": Hash(-1 % 2**64, 64), "dhash": Hash(0, 64)})
    assert rule.matches(query, {"pdq": far_pdq, "phash": Hash(0b1111, 64), "dhash": Hash(0b1, 64)})
    assert not rule.matches(query, {"pdq": far_pdq, "phash": Hash(0b1111, 64), "dhash": Hash(0b11111, 64)})
    assert not rule.matches(query, {"pdq": far_pdq, "phash": Hash(0b1111, 64)})  # no dhash: group fails
    assert Matcher.parse(str(rule)) == rule


def test_every_preset_round_trips_through_its_text() -> None:
    for name in PRESETS:
        rule = Matcher.preset(name)
        assert Matcher.parse(str(rule)).groups == rule.groups


def test_presets_exist_and_parse() -> None:
    for name in PRESETS:
        assert Matcher.preset(name).name == name
    assert Matcher.parse("near-duplicate").conditions == Matcher.parse(PRESETS["near-duplicate"]).conditions
    with pytest.raises(MatcherSyntaxError):
        Matcher.preset("identical")


def test_seed_combined_distance_sums_ahash_and_colorhash() -> None:
    rule = Matcher.combined(("ahash", "colorhash"), 12)
    query = {"ahash": Hash(0, 64), "colorhash": Hash(0, 42)}
    near = {"ahash": Hash(0b111111, 64), "colorhash": Hash(0b111111, 42)}  # 6 + 6
    far = {"ahash": Hash(0b1111111, 64), "colorhash": Hash(0b111111, 42)}  # 7 + 6
    verdict = rule.verdict("near", query, near)
    assert verdict is not None and verdict.distances["ahash + colorhash"] == 12
    assert not rule.matches(query, far)


def test_quality_gate_rejects_poor_hashes_on_either_side() -> None:
    rule = Matcher.parse("pdq <= 31 with quality >= 50")
    good = {"pdq": Hash(0, 256, quality=90)}
    assert rule.matches(good, {"pdq": Hash(1, 256, quality=80)})
    assert not rule.matches(good, {"pdq": Hash(1, 256, quality=30)})
    assert not rule.matches({"pdq": Hash(0, 256, quality=10)}, {"pdq": Hash(1, 256, quality=80)})


def test_candidate_plan_searches_the_most_selective_hash() -> None:
    query = {"phash": Hash(0, 64), "colorhash": Hash(0, 42)}
    assert Matcher.parse("phash <= 20 and colorhash <= 2").candidate_plan(query) == [("colorhash", 2)]
    assert Matcher.parse("phash <= 2 and colorhash <= 10").candidate_plan(query) == [("phash", 2)]
    assert Matcher.parse("phash <= 2 or colorhash <= 10").candidate_plan(query) == [
        ("phash", 2),
        ("colorhash", 10),
    ]
    either = Matcher.parse("phash <= 2 or phash <= 30 and colorhash <= 1")  # one search per group
    assert either.candidate_plan(query) == [("phash", 2), ("colorhash", 1)]
    assert Matcher.parse("dhash <= 3 or phash <= 2").candidate_plan(query) == [("phash", 2)]
    with pytest.raises(MatcherSyntaxError):
        Matcher.parse("dhash <= 3").candidate_plan(query)
