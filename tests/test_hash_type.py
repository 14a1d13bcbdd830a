"""The Hash value type: ImageHash's ergonomics, integers for databases, any length."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest

from lookalike import Hash, MultiHash
from lookalike.errors import InvalidHashError


def test_subtraction_is_hamming_distance() -> None:
    a = Hash.from_hex("ffd7918181c9ffff")
    b = Hash.from_hex("ffd7918181c9fffe")
    assert a - b == 1
    assert a - a == 0
    assert Hash.from_hex("0000") - Hash.from_hex("ffff") == 16


def test_str_is_imagehash_hex_including_odd_lengths() -> None:
    bits = np.zeros(42, dtype=bool)
    bits[3] = True
    h = Hash.from_bits(bits)
    assert len(h) == 42
    assert str(h) == "04000000000"  # 11 digits for 42 bits, like ImageHash's colorhash


def test_int_is_seed_hash_to_int() -> None:
    h = Hash.from_hex("ffd7918181c9ffff")
    assert int(h) == int(str(h), 16) == 0xFFD7918181C9FFFF


def test_int64_round_trip_matches_twos_complement() -> None:
    h = Hash.from_hex("ffd7918181c9ffff")
    assert h.to_int64() == 0xFFD7918181C9FFFF - (1 << 64)
    assert Hash.from_int64(h.to_int64(), 64) == h
    low = Hash.from_hex("0026273b2b19550e")
    assert low.to_int64() == 0x0026273B2B19550E


def test_int64_refuses_longer_hashes() -> None:
    with pytest.raises(InvalidHashError):
        Hash.from_hex("ab" * 32).to_int64()


def test_words_are_big_endian_uint64() -> None:
    text = "0123456789abcdef" + "fedcba9876543210" + "00000000000000ff" + "8000000000000000"
    h = Hash.from_hex(text)
    words = h.words()
    assert words.dtype == np.uint64
    assert [int(w) for w in words] == [0x0123456789ABCDEF, 0xFEDCBA9876543210, 0xFF, 1 << 63]
    assert Hash.from_words(words, 256) == h


def test_any_length_from_one_bit() -> None:
    one = Hash.from_bits([True])
    assert len(one) == 1 and int(one) == 1 and str(one) == "1"
    long = Hash.from_bits(np.ones(1000, dtype=bool))
    assert len(long) == 1000 and long.popcount() == 1000
    assert len(long.words()) == 16


def test_bits_round_trip_random() -> None:
    rng = np.random.default_rng(7)
    for nbits in (1, 7, 8, 42, 63, 64, 65, 256, 999):
        bits = rng.random(nbits) < 0.5
        h = Hash.from_bits(bits)
        assert np.array_equal(h.bits, bits)
        assert Hash.from_hex(str(h), nbits) == h
        assert Hash.from_int(int(h), nbits) == h
        assert Hash.from_bytes(h.to_bytes(), nbits) == h


def test_hash_uses_all_bits() -> None:
    values = {Hash.from_int(random.Random(i).getrandbits(64), 64) for i in range(2000)}
    assert len({hash(v) for v in values}) == len(values)


def test_equal_hashes_are_interchangeable_dict_keys() -> None:
    table = {Hash.from_hex("00ff"): "a"}
    assert table[Hash.from_bits([False] * 8 + [True] * 8)] == "a"


def test_ordering_and_equality() -> None:
    a, b = Hash.from_hex("01"), Hash.from_hex("02")
    assert a < b and sorted([b, a]) == [a, b]
    assert a != b and a == Hash.from_hex("01")
    assert Hash.from_hex("01") != Hash.from_hex("001")  # different lengths


def test_pickle_keeps_bits_and_quality() -> None:
    h = Hash.from_hex("ab" * 32).with_quality(87)
    again = pickle.loads(pickle.dumps(h))
    assert again == h and again.quality == 87


def test_distance_between_lengths_is_an_error() -> None:
    with pytest.raises(TypeError):
        _ = Hash.from_hex("ff") - Hash.from_hex("ffff")


@pytest.mark.parametrize("bad", ["", "xyz", "12g4", "0x"])
def test_from_hex_rejects_non_hex(bad: str) -> None:
    with pytest.raises(InvalidHashError):
        Hash.from_hex(bad)


def test_from_hex_with_nbits_checks_length_and_range() -> None:
    assert len(Hash.from_hex("07007000000", 42)) == 42
    with pytest.raises(InvalidHashError):
        Hash.from_hex("0700700000", 42)
    with pytest.raises(InvalidHashError):
        Hash.from_hex("f7007000000", 42)  # bit 43 set


def test_hash_is_immutable() -> None:
    h = Hash.from_hex("ff")
    with pytest.raises(AttributeError):
        h.quality = 3  # type: ignore[misc]


def test_multihash_matching_follows_imagehash_rule() -> None:
    a = MultiHash.from_hex("0026273b2b19550e,6286373334662535")
    b = MultiHash.from_hex("0026273b2b19550f,ffffffffffffffff")
    assert a.matches(b)
    assert a.hash_diff(b) == (1, 1)
    assert str(MultiHash.from_hex(str(a))) == str(a)
    assert not a.matches(MultiHash([]))
