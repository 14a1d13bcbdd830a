"""Candidate keys: short exact keys cut from the low frequencies of a 16x16 DCT hash.

A near-duplicate rule accepts pairs up to 56 of 256 bits apart; no exact index answers such a
radius quickly over millions of photo hashes, whose bits cluster. The bits do not flip alike,
though: over the accuracy corpus's accepted pairs, the low-frequency coefficients of the 16x16 DCT
flip 2-4 times less often than the high ones. A key of three of them agrees across most copies,
and with every 3-of-N choice of low rows as a separate table, a copy shares at least one key with
its original in almost every case (docs/candidates.md has the measurement), while two unrelated
photos rarely share a 24-bit key.

The layout is fixed by the hash's geometry, not tuned per corpus: in a 16x16 DCT hash stored
row-major (pHash, equalised pHash), byte `2r` holds row r's eight lowest horizontal frequencies,
and byte `2c` of the transposed hash column c's eight lowest vertical ones. Each table's key is
three such bytes; tables are every 3-row choice of the 6 lowest rows and every 3-column choice
of the 6 lowest columns (40 tables; 3 of 7 rows, 35 tables, finds fewer: docs/candidates.md).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Words = npt.NDArray[np.uint64]
Keys = npt.NDArray[np.uint32]

KEY_BYTES = 3
LOW_ROWS = 6  # rows 0-5 of the DCT block: C(6, 3) = 20 tables of rows
LOW_COLUMNS = 6  # and columns 0-5: C(6, 3) = 20 tables of columns, 40 in all


@dataclass(frozen=True)
class KeyLayout:
    """Which bytes of a hash make each table's key: byte b < nbits / 8 is the hash's own byte b
    (byte 0 = its first 8 bits); with `transposed` (the side of a square hash), byte nbits / 8 + j
    is byte j of the transposed hash (column-major bits: one column's 8 lowest vertical
    frequencies)."""

    nbits: int
    tables: tuple[tuple[int, ...], ...]
    transposed: int = 0

    @property
    def table_count(self) -> int:
        return len(self.tables)

    def keys(self, words: Words) -> Keys:
        """Keys of an (n, words) array of hashes: (n, tables) uint32."""
        rows = np.ascontiguousarray(words, dtype=np.uint64)
        if rows.ndim != 2 or rows.shape[1] * 64 != self.nbits:
            raise ValueError(f"expected (n, {self.nbits // 64}) words, got {rows.shape}")
        as_bytes = rows.astype(">u8").view(np.uint8).reshape(len(rows), rows.shape[1] * 8)
        own = self.nbits // 8
        gathered = sorted({byte for table in self.tables for byte in table if byte >= own})
        if gathered:  # only the bits behind the column bytes in use, from the bytes holding them
            positions = np.array([self.byte_bits(byte) for byte in gathered], dtype=np.int64)
            sources = np.unique(positions // 8)
            bits = np.unpackbits(as_bytes[:, sources], axis=1)
            local = np.searchsorted(sources, positions // 8) * 8 + positions % 8
            picked = bits[:, local.ravel()].reshape(len(rows), len(gathered), 8)
            as_bytes = np.concatenate([as_bytes, np.packbits(picked, axis=2)[:, :, 0]], axis=1)
            place = {byte: own + i for i, byte in enumerate(gathered)}
        else:
            place = {}
        chosen = np.array([[place.get(byte, byte) for byte in table] for table in self.tables], dtype=np.intp)
        keys = np.zeros((len(rows), len(self.tables)), dtype=np.uint32)
        for position in range(chosen.shape[1]):  # one gather of every table's byte at a time
            keys <<= np.uint32(8)
            keys |= as_bytes[:, chosen[:, position]]
        return keys

    def byte_bits(self, byte: int) -> tuple[int, ...]:
        """The hash's bit positions (0 = first) behind key byte `byte`, most significant first."""
        if byte < self.nbits // 8:
            return tuple(range(8 * byte, 8 * byte + 8))
        side = self.transposed
        start = 8 * (byte - self.nbits // 8)  # position in the transposed hash
        return tuple((t % side) * side + t // side for t in range(start, start + 8))


def dct_layout(
    hash_size: int, low_rows: int | None = None, low_columns: int | None = None, key_bytes: int = KEY_BYTES
) -> KeyLayout | None:
    """The layout for a row-major `hash_size` x `hash_size` DCT hash: every `key_bytes`-of-`low_rows`
    choice of rows, then every choice of as many of the `low_columns` lowest columns (LOW_ROWS
    and LOW_COLUMNS by default); None for hashes under 16x16 (64-bit hashes and the like: exact
    multi-index search serves their radii well) and sizes whose rows do not start on byte
    boundaries.

    Rows and columns fail apart: an edit that shifts the picture sideways (a crop, a pad, an
    overlay at one side) disturbs the horizontal frequencies of every row but leaves more
    columns' vertical frequencies whole, and the other way round (docs/candidates.md)."""
    nbits = hash_size * hash_size
    if hash_size < 16 or hash_size % 8 or nbits % 64:
        return None
    rows = LOW_ROWS if low_rows is None else low_rows
    columns = LOW_COLUMNS if low_columns is None else low_columns
    row_bytes = [row * hash_size // 8 for row in range(rows)]
    column_bytes = [nbits // 8 + column * hash_size // 8 for column in range(columns)]
    tables = [*itertools.combinations(row_bytes, key_bytes), *itertools.combinations(column_bytes, key_bytes)]
    return KeyLayout(nbits, tuple(tables), hash_size if columns else 0)
