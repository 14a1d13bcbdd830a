"""Small helpers for tests that run code in other processes (importable from there)."""

from __future__ import annotations

import random


def random_hash_hex(seed: int, nbits: int = 256) -> str:
    """A deterministic random hash of `nbits` bits, as hex."""
    return format(random.Random(seed).getrandbits(nbits), f"0{nbits // 4}x")
