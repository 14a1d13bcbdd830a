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
from lookalike.local.features import LocalFeatures

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
    # per query, its local features and those of its mirror image (None where not computed)
    local: Sequence[tuple[LocalFeatures | None, LocalFeatures | None]] | None = None

    def __len__(self) -> int:
        return self.size

    def take(self, rows: Ids) -> QueryBatch:
        return QueryBatch(
            len(rows),
            {name: value.take(rows) for name, value in self.hashes.items()},
            None if self.ids is None else self.ids[rows],
            None if self.local is None else [self.local[int(row)] for row in rows],
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
        local = [(getattr(q, "local", None), getattr(q, "local_mirrored", None)) for q in queries]
        has_local = any(pair[0] is not None for pair in local)
        return cls(len(queries), hashes, id_array, local if has_local else None)


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


def stack_variants(base: npt.NDArray[np.uint64], blobs: list[bytes | None]) -> npt.NDArray[np.uint64]:
    """(n, variants, words) from each query's own hash (`base`, (n, words)) and the stored words
    of its other variants (big-endian, concatenated; None: it has none): variant 0 is the hash,
    and shorter lists repeat it."""
    word_count = base.shape[1]
    lengths = [0 if blob is None else len(blob) // (8 * word_count) for blob in blobs]
    width = 1 + max(lengths, default=0)
    words = np.repeat(base[:, None, :], width, axis=1)
    for row, (blob, length) in enumerate(zip(blobs, lengths, strict=True)):
        if length and blob is not None:
            words[row, 1 : 1 + length] = np.frombuffer(blob, dtype=">u8", count=length * word_count).reshape(
                length, word_count
            )
    return words


def variant_blobs(hashes: Mapping[str, Hash]) -> list[tuple[str, bytes, str]]:
    """(algorithm, variant words, twin) for each hash that carries variants: the big-endian words
    of its variants after the first, or (empty words) the name of an earlier hash of the same
    image whose hash and variants are the same (a picture without borders: one trimmed and
    untrimmed hash). What an index stores for `stack_variants` to read back."""
    rows: list[tuple[str, bytes, str]] = []
    seen: dict[bytes, str] = {}
    for algorithm, value in hashes.items():
        variants = value.variants
        if not variants or len(variants) < 2:
            continue
        width = 8 * ((value.nbits + 63) // 64)
        blob = b"".join(int(v).to_bytes(width, "big") for v in variants[1:] if v.nbits == value.nbits)
        signature = int(value).to_bytes(width, "big") + blob
        twin = seen.get(signature)
        if twin is not None:
            rows.append((algorithm, b"", twin))
        else:
            seen[signature] = algorithm
            rows.append((algorithm, blob, ""))
    return rows


REGION_ALGORITHM = "phash_eq_regions"  # the hash whose variants after the first are pictures inside


def region_boxes(algorithm: str, value: Hash, regions: Sequence[tuple[float, ...]]) -> bytes | None:
    """What an index stores beside `phash_eq_regions`' variants: where each variant's picture lies
    in the image (relative left, top, right, bottom as little-endian float32), so a query found
    as one of them is shown there; None for other hashes, or boxes that do not pair with the
    variants one to one."""
    variants = value.variants or ()
    if algorithm != REGION_ALGORITHM or not regions or len(regions) != len(variants) - 1:
        return None
    return np.asarray(regions, dtype="<f4").reshape(-1, 4).tobytes()


def boxes_of(blob: bytes | None) -> list[tuple[float, float, float, float]]:
    """The relative boxes `region_boxes` stored (none for None)."""
    if not blob:
        return []
    rows = np.frombuffer(blob, dtype="<f4").reshape(-1, 4).astype(np.float64).tolist()
    return [(a, b, c, d) for a, b, c, d in rows]


def regions_of_rows(
    rows: Sequence[tuple[int, bytes | None, bytes | None]],
) -> dict[int, tuple[npt.NDArray[np.uint64], list[tuple[float, float, float, float]]]]:
    """`Index.stored_regions` from (entry id, region variant words big-endian, `region_boxes`)
    rows: entries whose words and boxes pair one to one."""
    found: dict[int, tuple[npt.NDArray[np.uint64], list[tuple[float, float, float, float]]]] = {}
    for entry, blob, boxes_blob in rows:
        boxes = boxes_of(boxes_blob)
        if not blob or not boxes or len(blob) % (8 * len(boxes)):
            continue
        words = np.frombuffer(blob, dtype=">u8").reshape(len(boxes), -1).astype(np.uint64)
        found[int(entry)] = (words, boxes)
    return found
