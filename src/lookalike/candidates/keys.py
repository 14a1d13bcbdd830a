"""Candidate keys: short exact keys cut from the low frequencies of a 16x16 DCT hash.

A near-duplicate rule accepts pairs up to 56 of 256 bits apart; no exact index answers such a
radius quickly over millions of photo hashes, whose bits cluster. The bits do not flip alike,
though: over the accuracy corpus's accepted pairs, the low-frequency coefficients of the 16x16 DCT
flip 2-4 times less often than the high ones. A key of three of them agrees across most copies,
and with every 3-of-N choice of low rows as a separate table, a copy shares at least one key with
its original in almost every case (docs/candidates.md has the measurement), while two unrelated
photos rarely share a 24-bit key.

The layout is fixed by the hash's geometry, not tuned per corpus: in a 16x16 DCT hash stored
row-major (pHash, equalised pHash), byte `2r` holds row r's eight lowest horizontal frequencies.
Each table's key is three such bytes; tables are every 3-row choice of the lowest rows.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Words = npt.NDArray[np.uint64]
Keys = npt.NDArray[np.uint32]

KEY_BYTES = 3
LOW_ROWS = 7  # rows 0-6 of the DCT block: C(7, 3) = 35 tables


@dataclass(frozen=True)
class KeyLayout:
    """Which bytes of a hash (byte 0 = its first 8 bits) make each table's key."""

    nbits: int
    tables: tuple[tuple[int, ...], ...]

    @property
    def table_count(self) -> int:
        return len(self.tables)

    def keys(self, words: Words) -> Keys:
        """Keys of an (n, words) array of hashes: (n, tables) uint32."""
        rows = np.ascontiguousarray(words, dtype=np.uint64)
        if rows.ndim != 2 or rows.shape[1] * 64 != self.nbits:
            raise ValueError(f"expected (n, {self.nbits // 64}) words, got {rows.shape}")
        as_bytes = rows.astype(">u8").view(np.uint8).reshape(len(rows), rows.shape[1] * 8)
        keys = np.zeros((len(rows), len(self.tables)), dtype=np.uint32)
        for table, chosen in enumerate(self.tables):
            column = keys[:, table]
            for byte in chosen:
                column <<= np.uint32(8)
                column |= as_bytes[:, byte]
        return keys


def dct_layout(hash_size: int, low_rows: int | None = None, key_bytes: int = KEY_BYTES) -> KeyLayout | None:
    """The layout for a row-major `hash_size` x `hash_size` DCT hash (every `key_bytes`-of-`low_rows`
    choice of rows, LOW_ROWS by default), or None for hashes under 16x16 (64-bit hashes and the
    like: exact multi-index search serves their radii well) and sizes whose rows do not start on
    byte boundaries."""
    nbits = hash_size * hash_size
    if hash_size < 16 or hash_size % 8 or nbits % 64:
        return None
    rows = LOW_ROWS if low_rows is None else low_rows
    row_bytes = [row * hash_size // 8 for row in range(rows)]
    return KeyLayout(nbits, tuple(itertools.combinations(row_bytes, key_bytes)))
