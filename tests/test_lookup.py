"""The shared search code behind `lookalike search`, `/v1/search` and the page: which hashes agreed."""

from __future__ import annotations

from lookalike.hash import Hash
from lookalike.lookup import agreed_hashes, query_algorithms
from lookalike.matcher import Matcher, default_index_hashes

RULE = Matcher.parse("pdq <= 31 with quality >= 50 or ahash + colorhash <= 12")


def pdq(quality: int) -> dict[str, Hash]:
    return {"pdq": Hash(0, 256, quality=quality)}


def test_a_condition_within_its_limit_but_failing_its_quality_gate_did_not_agree() -> None:
    distances = {"pdq": 10}
    assert agreed_hashes(distances, pdq(90), pdq(80), RULE) == ("pdq",)
    assert agreed_hashes(distances, pdq(90), pdq(20), RULE) == ()
    assert agreed_hashes({"pdq": 40}, pdq(90), pdq(80), RULE) == ()


def test_a_summed_condition_agrees_as_a_whole() -> None:
    both = {"ahash + colorhash": 11, "ahash": 9, "colorhash": 2}
    assert agreed_hashes(both, {}, {}, RULE) == ("ahash", "colorhash")
    assert agreed_hashes({**both, "ahash + colorhash": 13}, {}, {}, RULE) == ()


def test_without_a_rule_each_hash_is_judged_by_its_own_default_distance() -> None:
    assert agreed_hashes({"pdq": 31, "phash": 30, "ahash + colorhash": 0}, {}, {}, None) == ("pdq",)


def test_queries_are_hashed_with_what_the_index_stores_except_multi_hashes() -> None:
    stored = {"phash": 64, "dhash": 64, "crop_resistant": 64, "someone_elses": 64}
    assert query_algorithms(["pdq", "phash"], stored) == ["pdq", "phash", "dhash"]
    assert query_algorithms(default_index_hashes(), {}) == list(default_index_hashes())
