"""The default matcher at collection scale: photo-like synthetic collections with planted copies.

A collection of N images is made from the accuracy corpus (`lookalike.benchmarks.corpus`):
- planted: real photos and their real edited copies, with the hashes and variants lookalike
  computed for them (every pair of one photo's images is a pair the rule should find);
- the rest: photo-like hashes, each a real photo's hashes (and variants) with every bit flipped
  at 35%, so bits keep the bias and clusters of real photos while no two are copies. Hashes of
  one image that are equal in the real photo stay equal (one mask for both): a borderless photo's
  trimmed hash is its whole hash, and an index files such a hash once. Real photos hold 1.98
  distinct equalised pHashes of the four per image; flipping each independently made 3.9.

Then the same job runs on each backend: bulk add, a duplicate search of every image with its
variants, and single `match` queries; time, peak memory and the planted pairs found are measured.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lookalike.benchmarks import transforms as transform_registry
from lookalike.benchmarks.corpus import CorpusLayout, build_corpus, find_photos
from lookalike.benchmarks.hashers import HashTable
from lookalike.benchmarks.hashing import hash_all
from lookalike.candidates.batch import QueryBatch, QueryHashes
from lookalike.matcher import Matcher

FLIP = 0.35


@dataclass(frozen=True)
class RealHashes:
    """The accuracy corpus's hashes of the rule's algorithms: base words, variants, quality,
    and which photo each image is of."""

    algorithms: tuple[str, ...]
    words: dict[str, npt.NDArray[np.uint64]]  # (images, words)
    variants: dict[str, npt.NDArray[np.uint64]]  # (images, variants, words)
    quality: dict[str, npt.NDArray[np.float32]]
    photo: npt.NDArray[np.int64]  # photo index of each image
    original: npt.NDArray[np.bool_]

    @functools.cached_property
    def mask_salts(self) -> npt.NDArray[np.int64]:
        """(images, algorithms): which algorithm's flip mask a synthetic image made from this
        image uses for each algorithm: its own number, or the first earlier algorithm whose
        hash is the same (equal hashes of one image stay equal when flipped)."""
        count = len(self.photo)
        salts = np.tile(np.arange(len(self.algorithms), dtype=np.int64), (count, 1))
        for number, algorithm in enumerate(self.algorithms):
            words = self.words[algorithm]
            for earlier in reversed(range(number)):
                other = self.words[self.algorithms[earlier]]
                if other.shape == words.shape:
                    same = np.all(other == words, axis=1)
                    salts[same, number] = salts[same, earlier]
        return salts


def load_real(photos_dir: Path, cache_dir: Path, rule: Matcher, workers: int = 2) -> RealHashes:
    """Hashes of the accuracy corpus (built and hashed on first use, then read from its cache)."""
    images, named = _corpus_tables(photos_dir, cache_dir, rule.algorithms, workers)
    paths = [str(image.path) for image in images]
    words, variants, quality = {}, {}, {}
    for algorithm in rule.algorithms:
        table = named[algorithm]
        assert table.words is not None
        words[algorithm] = table.words
        variants[algorithm] = table.variants if table.variants is not None else table.words[:, None]
        quality[algorithm] = (
            np.full(len(paths), np.nan, np.float32)
            if table.quality is None
            else table.quality.astype(np.float32)
        )
    photo = np.array([image.photo for image in images], dtype=np.int64)
    original = np.array([image.transform is None for image in images], dtype=bool)
    return RealHashes(tuple(rule.algorithms), words, variants, quality, photo, original)


def load_real_words(
    photos_dir: Path, cache_dir: Path, algorithm: str, workers: int = 2
) -> npt.NDArray[np.uint64]:
    """One more algorithm's words (images, words) for the accuracy corpus, in `load_real`'s row
    order: what a peer that reads a hash the rule does not (a 64-bit pHash) is given."""
    _, named = _corpus_tables(photos_dir, cache_dir, (algorithm,), workers)
    words = named[algorithm].words
    assert words is not None
    return words


def _corpus_tables(
    photos_dir: Path, cache_dir: Path, algorithms: Sequence[str], workers: int
) -> tuple[list[Any], dict[str, HashTable]]:
    photos = find_photos(photos_dir)
    layout = CorpusLayout(cache_dir, 512, "jpeg")
    images = build_corpus(photos, layout, transform_registry.select(None), workers)
    paths = [str(image.path) for image in images]
    tables, _ = hash_all(paths, layout.folder / "hashes", list(algorithms), [], False, workers)
    return images, {name.partition(":")[2]: table for name, table in tables.items()}


@dataclass(frozen=True)
class Collection:
    """N images: the first `planted` rows are real images (several per photo), the rest
    synthetic. `seed[i]` is the real image row each synthetic image was made from, and
    `flips[i]` its random mask seed."""

    size: int
    planted_rows: npt.NDArray[np.int64]  # real image rows of the planted images
    seed_rows: npt.NDArray[np.int64]  # real image row behind each synthetic image
    real: RealHashes
    random_seed: int

    @property
    def planted(self) -> int:
        return len(self.planted_rows)

    def keys(self, start: int, stop: int) -> list[str]:
        return [f"img{i:09d}" for i in range(start, stop)]

    def hashes(
        self, start: int, stop: int, variants: bool
    ) -> dict[str, tuple[npt.NDArray[np.uint64], npt.NDArray[np.float32]]]:
        """(words, quality) per algorithm for images start..stop: words (n, words), or with
        `variants` (n, variants, words)."""
        return self.hashes_of(np.arange(start, stop), variants)

    def hashes_of(
        self, rows: npt.NDArray[np.int64], variants: bool
    ) -> dict[str, tuple[npt.NDArray[np.uint64], npt.NDArray[np.float32]]]:
        """`hashes` of the images `rows`, in that order."""
        planted = rows < self.planted
        real_rows = np.where(planted, self.planted_rows[np.minimum(rows, self.planted - 1)], 0)
        synthetic = ~planted
        seed_index = np.clip(rows - self.planted, 0, max(len(self.seed_rows) - 1, 0))
        if len(self.seed_rows):
            real_rows = np.where(synthetic, self.seed_rows[seed_index], real_rows)
        out = {}
        salts = self.real.mask_salts[real_rows[synthetic]]
        for number, algorithm in enumerate(self.real.algorithms):
            source = self.real.variants[algorithm] if variants else self.real.words[algorithm][:, None]
            chosen = source[real_rows].copy()
            masks = np.zeros((int(synthetic.sum()), chosen.shape[2]), dtype=np.uint64)
            for salt in np.unique(salts[:, number]).tolist():
                alike = salts[:, number] == salt
                masks[alike] = _flip_masks(rows[synthetic][alike], salt, chosen.shape[2], self.random_seed)
            chosen[synthetic] ^= masks[:, None, :]
            quality = self.real.quality[algorithm][real_rows]
            out[algorithm] = (chosen if variants else chosen[:, 0], quality)
        return out

    def words_of(
        self, real_words: npt.NDArray[np.uint64], salt: int, start: int, stop: int
    ) -> npt.NDArray[np.uint64]:
        """Images start..stop of a hash given as the real images' words (images, words), or their
        variants (images, variants, words): planted rows as they are, synthetic rows their seed's
        words flipped with the masks of `salt`. `hashes` gives the rule's algorithm number k the
        words of `words_of(..., k, ...)` where that hash differs from the earlier ones'."""
        rows = np.arange(start, stop)
        planted = rows < self.planted
        real_rows = np.where(planted, self.planted_rows[np.minimum(rows, self.planted - 1)], 0)
        if len(self.seed_rows):
            seed_index = np.clip(rows - self.planted, 0, len(self.seed_rows) - 1)
            real_rows = np.where(planted, real_rows, self.seed_rows[seed_index])
        chosen: npt.NDArray[np.uint64] = real_words[real_rows].copy()
        masks = _flip_masks(rows[~planted], salt, chosen.shape[-1], self.random_seed)
        chosen[~planted] ^= masks if chosen.ndim == 2 else masks[:, None, :]
        return chosen

    def batches(
        self, size: int, variants: bool, ids: npt.NDArray[np.int64] | None = None
    ) -> Iterator[QueryBatch]:
        """The collection as query batches (entry ids from `ids`, row order)."""
        for start in range(0, self.size, size):
            rows = np.arange(start, min(self.size, start + size))
            yield self._batch(rows, variants, None if ids is None else ids[rows])

    def queries_by_id(self, ids: npt.NDArray[np.int64]) -> Callable[[npt.NDArray[np.int64]], QueryBatch]:
        """Given each row's entry id (`ids[row]`), the images of chosen entry ids as one batch
        with their variants: what `rule_pairs` asks for its second hop."""
        order = np.argsort(ids, kind="stable")

        def batch(wanted: npt.NDArray[np.int64]) -> QueryBatch:
            rows = order[np.searchsorted(ids, wanted, sorter=order)].astype(np.int64)
            return self._batch(rows, True, ids[rows])

        return batch

    def _batch(
        self, rows: npt.NDArray[np.int64], variants: bool, ids: npt.NDArray[np.int64] | None
    ) -> QueryBatch:
        hashes = {}
        for algorithm, (words, quality) in self.hashes_of(rows, True).items():
            chosen = words if variants else words[:, :1]
            hashes[algorithm] = QueryHashes(chosen.shape[2] * 64, chosen, quality, np.ones(len(rows), bool))
        return QueryBatch(len(rows), hashes, ids)

    def planted_pairs(self) -> set[tuple[int, int]]:
        """Row pairs (a < b) of planted images of one photo: what a duplicate search should find."""
        photos = self.real.photo[self.planted_rows]
        pairs: set[tuple[int, int]] = set()
        for photo in np.unique(photos):
            rows = np.flatnonzero(photos == photo).tolist()
            pairs.update((a, b) for i, a in enumerate(rows) for b in rows[i + 1 :])
        return pairs


def make_collection(real: RealHashes, size: int, planted_photos: int, random_seed: int = 0) -> Collection:
    """A collection of `size` images: every image of `planted_photos` real photos (original and
    edited copies), and synthetic images made from random real images."""
    rng = np.random.default_rng(random_seed)
    photos = np.unique(real.photo)
    chosen = rng.choice(photos, min(planted_photos, len(photos)), replace=False)
    planted_rows = np.flatnonzero(np.isin(real.photo, chosen))
    planted_rows = planted_rows[:size]
    synthetic = max(0, size - len(planted_rows))
    seed_rows = rng.choice(np.flatnonzero(real.original), synthetic) if synthetic else np.zeros(0, np.int64)
    return Collection(size, planted_rows.astype(np.int64), seed_rows.astype(np.int64), real, random_seed)


def _flip_masks(
    rows: Sequence[int] | npt.NDArray[np.int64], salt: int, word_count: int, seed: int
) -> npt.NDArray[np.uint64]:
    """Per row, a mask with each bit set at probability FLIP, reproducible from (seed, row, salt):
    the same synthetic image gets the same hashes whichever batch asks."""
    rows = np.asarray(rows, dtype=np.uint64)
    if not len(rows):
        return np.zeros((0, word_count), dtype=np.uint64)
    masks = np.zeros((len(rows), word_count), dtype=np.uint64)
    # counter-based: a splitmix64 stream per (row, salt, word, bit chunk) gives uniform words;
    # AND-ing/OR-ing two uniform words gives bits at 1/4 and 3/4: mix them into ~0.35 per bit
    for word in range(word_count):
        a = splitmix(rows * np.uint64(1 << 20) + np.uint64(seed * 131 + salt * 17 + word * 3 + 1))
        b = splitmix(a ^ np.uint64(0x9E3779B97F4A7C15))
        c = splitmix(b ^ np.uint64(0xBF58476D1CE4E5B9))
        # P(bit) = P(a & b) + P(~(a & b)) * P(c & d...) ~ 0.25 + 0.75 * 0.125 = 0.344
        d = splitmix(c ^ np.uint64(0x94D049BB133111EB))
        e = splitmix(d ^ np.uint64(0x2545F4914F6CDD1D))
        masks[:, word] = (a & b) | (c & d & e)
    return masks


def splitmix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """SplitMix64's finaliser: 64 well-mixed bits of each value (a counter-based generator, so a
    synthetic item is made again from its number alone)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        result: npt.NDArray[np.uint64] = z ^ (z >> np.uint64(31))
    return result
