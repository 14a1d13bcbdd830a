"""Query batches: many queries' hashes as arrays, each with its variants, ready for the candidate
stage. A batch of a thousand images is a few arrays, not a thousand dicts of Hash objects, so a
duplicate search over a million images streams through bounded memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lookalike.hash import Hash
from lookalike.index.queries import canonical_algorithm

Ids = npt.NDArray[np.int64]


@dataclass(frozen=True)
class QueryHashes:
    """One algorithm's hashes for a batch: `words[i, v]` is query i's variant v (variant 0 is the
    hash itself; queries with fewer variants repeat variant 0, which changes no minimum)."""

    nbits: int
    words: npt.NDArray[np.uint64]  # (n, variants, words)
    quality: npt.NDArray[np.float32]  # (n,), NaN where unknown
    present: npt.NDArray[np.bool_]  # (n,): whether query i has this hash at all

    @property
    def variant_count(self) -> int:
        return int(self.words.shape[1])

    def take(self, rows: Ids) -> QueryHashes:
        return QueryHashes(self.nbits, self.words[rows], self.quality[rows], self.present[rows])


@dataclass(frozen=True)
class QueryBatch:
    """Queries as arrays per algorithm. `ids` names the stored entry each query is, when the
    queries come from the index itself (a duplicate search): a query never matches itself."""

    size: int
    hashes: Mapping[str, QueryHashes]
    ids: Ids | None = None

    def __len__(self) -> int:
        return self.size

    def take(self, rows: Ids) -> QueryBatch:
        return QueryBatch(
            len(rows),
            {name: value.take(rows) for name, value in self.hashes.items()},
            None if self.ids is None else self.ids[rows],
        )

    @classmethod
    def from_hashes(
        cls,
        queries: Sequence[Mapping[str, object]],
        *,
        variants: bool = True,
        ids: Sequence[int] | None = None,
    ) -> QueryBatch:
        """A batch from per-query mappings of algorithm -> `Hash` (other values are ignored);
        with `variants`, each hash's `variants` are searched too."""
        columns: dict[str, list[tuple[int, Hash]]] = {}
        for row, query in enumerate(queries):
            for name, value in query.items():
                if isinstance(value, Hash):
                    columns.setdefault(canonical_algorithm(name), []).append((row, value))
        hashes = {name: _stack(len(queries), found, variants) for name, found in columns.items()}
        id_array = None if ids is None else np.asarray(ids, dtype=np.int64)
        return cls(len(queries), hashes, id_array)


def _stack(count: int, found: list[tuple[int, Hash]], variants: bool) -> QueryHashes:
    nbits = max(value.nbits for _, value in found)
    word_count = (nbits + 63) // 64
    same_length = [(row, value) for row, value in found if value.nbits == nbits]
    width = max((len(value.variants or ()) if variants else 1) for _, value in same_length) or 1
    words = np.zeros((count, width, word_count), dtype=np.uint64)
    quality = np.full(count, np.nan, dtype=np.float32)
    present = np.zeros(count, dtype=bool)
    for row, value in same_length:
        options = (value.variants or (value,)) if variants else (value,)
        stacked = np.stack([option.words() for option in options])
        words[row, : len(stacked)] = stacked
        words[row, len(stacked) :] = stacked[0]
        present[row] = True
        if value.quality is not None:
            quality[row] = value.quality
    return QueryHashes(nbits, words, quality, present)
