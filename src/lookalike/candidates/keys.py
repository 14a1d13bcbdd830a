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

Optionally (`LOOKALIKE_KEY_NEIGHBOURS=k`) a query also probes its one-bit neighbours at the
lowest 2D frequencies, the DCT coefficients (r, c) with 0 < r + c <= k: a copy whose keys all
differ from its original's by one of those bits is found too, at the price of more probes (on the
query side only: the stored tables do not change). docs/candidates.md has the trade-off.
"""

from __future__ import annotations

import functools
import itertools
import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Words = npt.NDArray[np.uint64]
Keys = npt.NDArray[np.uint32]

KEY_BYTES = 3
LOW_ROWS = 6  # rows 0-5 of the DCT block: C(6, 3) = 20 tables of rows
LOW_COLUMNS = 6  # and columns 0-5: C(6, 3) = 20 tables of columns, 40 in all
# one-bit neighbours probed at frequencies 0 < r + c <= this (0: none); measured trade-off in
# docs/candidates.md (2: 99.07% of exact-plan pairs for 3.5x the probes, 4: 99.55% for 8x)
NEIGHBOUR_FREQUENCIES = int(os.environ.get("LOOKALIKE_KEY_NEIGHBOURS", "0"))


@dataclass(frozen=True)
class KeyLayout:
    """Which bytes of a hash make each table's key: byte b < nbits / 8 is the hash's own byte b
    (byte 0 = its first 8 bits); with `transposed` (the side of a square hash), byte nbits / 8 + j
    is byte j of the transposed hash (column-major bits: one column's 8 lowest vertical
    frequencies)."""

    nbits: int
    tables: tuple[tuple[int, ...], ...]
    transposed: int = 0
    neighbours: tuple[int, ...] = ()  # bit positions whose one-bit flips a query probes too

    @property
    def table_count(self) -> int:
        return len(self.tables)

    def keys(self, words: Words) -> Keys:
        """Keys of an (n, words) array of hashes: (n, tables) uint32."""
        rows = np.ascontiguousarray(words, dtype=np.uint64)
        if rows.ndim != 2 or rows.shape[1] * 64 != self.nbits:
            raise ValueError(f"expected (n, {self.nbits // 64}) words, got {rows.shape}")
        as_bytes = rows.astype(">u8").view(np.uint8).reshape(len(rows), rows.shape[1] * 8)
        sources, local, chosen = self._gather_plan
        if len(local):  # only the bits behind the column bytes in use, from the bytes holding them
            bits = np.unpackbits(as_bytes[:, sources], axis=1)
            picked = bits[:, local.ravel()].reshape(len(rows), len(local), 8)
            as_bytes = np.concatenate([as_bytes, np.packbits(picked, axis=2)[:, :, 0]], axis=1)
        keys = np.zeros((len(rows), len(self.tables)), dtype=np.uint32)
        for position in range(chosen.shape[1]):  # one gather of every table's byte at a time
            keys <<= np.uint32(8)
            keys |= as_bytes[:, chosen[:, position]]
        return keys

    @functools.cached_property
    def _gather_plan(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.intp]]:
        """How `keys` cuts them, worked out once per layout (a match cuts keys twice, and this
        takes longer than the cutting): the hash bytes holding the column bits in use, each
        column byte's bits among them, and each table's key bytes in the extended byte row."""
        own = self.nbits // 8
        gathered = sorted({byte for table in self.tables for byte in table if byte >= own})
        positions = np.array([self.byte_bits(byte) for byte in gathered], dtype=np.int64).reshape(-1, 8)
        sources = np.unique(positions // 8)
        local = np.searchsorted(sources, positions // 8) * 8 + positions % 8
        place = {byte: own + i for i, byte in enumerate(gathered)}
        chosen = np.array([[place.get(byte, byte) for byte in table] for table in self.tables], dtype=np.intp)
        return sources, local, chosen.reshape(len(self.tables), -1)

    def probe_words(self, words: Words, owners: npt.NDArray[np.int64]) -> tuple[Words, npt.NDArray[np.int64]]:
        """The query hashes to probe: `words`, then each with one of the `neighbours` bits flipped
        (owners repeated). A flip leaves the keys of the tables without that bit as they were,
        and the key tables probe a query's repeated key once, so a flip costs one probe in each
        table that holds its bit."""
        if not self.neighbours or not len(words):
            return words, owners
        expanded = np.repeat(np.asarray(words, dtype=np.uint64)[None], len(self.neighbours) + 1, axis=0)
        for step, position in enumerate(self.neighbours, start=1):
            expanded[step, :, position // 64] ^= np.uint64(1 << (63 - position % 64))
        return expanded.reshape(-1, words.shape[1]), np.tile(owners, len(self.neighbours) + 1)

    def byte_bits(self, byte: int) -> tuple[int, ...]:
        """The hash's bit positions (0 = first) behind key byte `byte`, most significant first."""
        if byte < self.nbits // 8:
            return tuple(range(8 * byte, 8 * byte + 8))
        side = self.transposed
        start = 8 * (byte - self.nbits // 8)  # position in the transposed hash
        return tuple((t % side) * side + t // side for t in range(start, start + 8))


def dct_layout(
    hash_size: int,
    low_rows: int | None = None,
    low_columns: int | None = None,
    key_bytes: int = KEY_BYTES,
    neighbour_frequencies: int | None = None,
) -> KeyLayout | None:
    """The layout for a row-major `hash_size` x `hash_size` DCT hash: every `key_bytes`-of-`low_rows`
    choice of rows, then every choice of as many of the `low_columns` lowest columns (LOW_ROWS
    and LOW_COLUMNS by default), probing one-bit neighbours at the frequencies 0 < r + c <=
    `neighbour_frequencies` (NEIGHBOUR_FREQUENCIES by default) that some key holds; None for
    hashes under 16x16 (64-bit hashes and the like: exact multi-index search serves their radii
    well) and sizes whose rows do not start on byte boundaries.

    Rows and columns fail apart: an edit that shifts the picture sideways (a crop, a pad, an
    overlay at one side) disturbs the horizontal frequencies of every row but leaves more
    columns' vertical frequencies whole, and the other way round (docs/candidates.md)."""
    rows = LOW_ROWS if low_rows is None else low_rows
    columns = LOW_COLUMNS if low_columns is None else low_columns
    reach = NEIGHBOUR_FREQUENCIES if neighbour_frequencies is None else neighbour_frequencies
    return _dct_layout(hash_size, rows, columns, key_bytes, reach)


@functools.lru_cache(maxsize=64)
def _dct_layout(hash_size: int, rows: int, columns: int, key_bytes: int, reach: int) -> KeyLayout | None:
    """`dct_layout` with every choice explicit, made once per choice: every match and probe asks
    for its algorithms' layouts, and finding the keyed bits takes a millisecond."""
    nbits = hash_size * hash_size
    if hash_size < 16 or hash_size % 8 or nbits % 64:
        return None
    row_bytes = [row * hash_size // 8 for row in range(rows)]
    column_bytes = [nbits // 8 + column * hash_size // 8 for column in range(columns)]
    tables = [*itertools.combinations(row_bytes, key_bytes), *itertools.combinations(column_bytes, key_bytes)]
    layout = KeyLayout(nbits, tuple(tables), hash_size if columns else 0)
    keyed = {bit for table in tables for byte in table for bit in layout.byte_bits(byte)}
    flips = sorted(
        r * hash_size + c
        for r in range(hash_size)
        for c in range(hash_size)
        if 0 < r + c <= reach and r * hash_size + c in keyed
    )
    return KeyLayout(nbits, tuple(tables), layout.transposed, tuple(flips))
