"""The scale benchmark's peers: other libraries doing the duplicate search's job on one hash.

Every peer gets one hash of the collection as words (rows, words) of uint64 and a radius, and
answers the same question: every pair of rows (a < b) at most `radius` bits apart. That is the
job of our duplicate search reduced to what a one-hash index can do (no variants, no second
hash): FAISS's binary indexes (flat, IVF, multi-hash), a pure-Python BK-tree (`pybktree`, the
structure imagededup uses) and a C++ BK-tree (`cppbktree`).

A peer answers its queries in blocks of rows, in row order, so the planted images (the first
rows of a collection) are always answered; past a time budget the rest is sampled and the
search time extrapolated from the rows answered (`PeerRun.estimated`), which keeps recall exact
and makes hour-long peers measurable. FAISS runs on one thread, as our search does.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Rows = npt.NDArray[np.int64]
Words = npt.NDArray[np.uint64]


class RangeStructure(Protocol):
    """A built peer index: the rows within `radius` of each query row, as (query row, found row)."""

    def within(self, rows: Rows, radius: int) -> tuple[Rows, Rows]: ...


@dataclass(frozen=True)
class Peer:
    """A peer library: its name in tables, what it is, and how it builds its index."""

    name: str
    description: str
    exact: bool  # every pair within the radius, by construction
    build: Callable[[Words], RangeStructure]
    block: int = 4096  # query rows per call


@dataclass(frozen=True)
class PeerRun:
    """One peer's duplicate search over a collection."""

    first: Rows  # pairs (first < second) within the radius, over the rows answered
    second: Rows
    build_seconds: float
    search_seconds: float  # extrapolated to every row when `estimated`
    rows_answered: int
    estimated: bool
    peak_mb: float  # the process's peak resident memory after the search
    beyond_radius: int  # pairs the peer returned that are farther apart than the radius (dropped)
    index_mb: float  # resident memory the build added (the index, and its copy of the hashes)

    @property
    def seconds(self) -> float:
        return self.build_seconds + self.search_seconds


def _faiss() -> Any:
    import faiss  # type: ignore[import-not-found, unused-ignore]

    faiss.omp_set_num_threads(1)
    return faiss


def _codes(words: Words) -> npt.NDArray[np.uint8]:
    """FAISS's binary codes: the words' bytes (Hamming distance does not care about byte order)."""
    codes: npt.NDArray[np.uint8] = np.ascontiguousarray(words).view(np.uint8).reshape(len(words), -1)
    return codes


class _FaissRange:
    """A FAISS binary index answering range searches (FAISS's radius is strict: asked r + 1)."""

    def __init__(self, index: Any, codes: npt.NDArray[np.uint8]) -> None:
        self.index = index
        self.codes = codes

    def within(self, rows: Rows, radius: int) -> tuple[Rows, Rows]:
        limits, _, found = self.index.range_search(self.codes[rows], radius + 1)
        queries = np.repeat(rows, np.diff(limits.astype(np.int64)))
        return queries.astype(np.int64), found.astype(np.int64)


def faiss_flat(words: Words) -> RangeStructure:
    """IndexBinaryFlat: brute force, XOR + popcount against every stored code."""
    faiss = _faiss()
    codes = _codes(words)
    index = faiss.IndexBinaryFlat(codes.shape[1] * 8)
    index.add(codes)
    return _FaissRange(index, codes)


class _FaissVariants:
    """FAISS IndexBinaryFlat over the stored hashes, queried with each image's variants (the
    candidate stage's job): a pair is found when any variant of either image is within the
    radius of the other, reported once as (smaller row, larger row)."""

    def __init__(self, words: Words, variants: npt.NDArray[np.uint64]) -> None:
        faiss = _faiss()
        codes = _codes(words)
        self.per_image = variants.shape[1]
        self.queries = _codes(variants.reshape(-1, variants.shape[2]))
        self.index = faiss.IndexBinaryFlat(codes.shape[1] * 8)
        self.index.add(codes)

    def within(self, rows: Rows, radius: int) -> tuple[Rows, Rows]:
        variant_rows = (rows[:, None] * self.per_image + np.arange(self.per_image)).ravel()
        limits, _, found = self.index.range_search(self.queries[variant_rows], radius + 1)
        queries = np.repeat(np.repeat(rows, self.per_image), np.diff(limits.astype(np.int64)))
        found = found.astype(np.int64)
        pairs = np.unique(np.stack([np.minimum(queries, found), np.maximum(queries, found)]), axis=1)
        pairs = pairs[:, pairs[0] != pairs[1]]
        # oriented for run_peer (query row first): a pair whose smaller row is outside this block
        # was found from its larger row, and is kept once because first < second
        return pairs[0], pairs[1]


def faiss_flat_variants(variants: npt.NDArray[np.uint64]) -> Peer:
    """The FAISS flat peer given each image's variants (images, variants, words) as queries."""
    return Peer(
        "faiss-flat-variants",
        f"FAISS IndexBinaryFlat, queried with {variants.shape[1]} variants per image",
        True,
        lambda words: _FaissVariants(words, variants),
        block=512,
    )


def faiss_ivf(words: Words) -> RangeStructure:
    """IndexBinaryIVF, 4 sqrt(n) lists, probing 1/32 of them: approximate, FAISS's usual setup."""
    faiss = _faiss()
    codes = _codes(words)
    lists = max(1, int(4 * np.sqrt(len(codes))))
    quantizer = faiss.IndexBinaryFlat(codes.shape[1] * 8)
    index = faiss.IndexBinaryIVF(quantizer, codes.shape[1] * 8, lists)
    sample = np.random.default_rng(0).permutation(len(codes))[: 40 * lists]
    index.train(codes[np.sort(sample)])
    index.add(codes)
    index.nprobe = max(1, lists // 32)
    return _FaissRange(index, codes)


def multihash_tables(bits: int, radius: int) -> tuple[int, int]:
    """(tables, flips) for an exact IndexBinaryMultiHash at `radius`: 16-bit substrings, and
    enough flips that a pair within the radius agrees within `flips` bits on some substring
    (pigeonhole: tables * (flips + 1) > radius)."""
    tables = max(1, bits // 16)
    return tables, radius // tables


def faiss_multihash(words: Words, radius: int) -> RangeStructure:
    """IndexBinaryMultiHash (multi-index hashing), set up to be exact at `radius`."""
    faiss = _faiss()
    codes = _codes(words)
    bits = codes.shape[1] * 8
    tables, flips = multihash_tables(bits, radius)
    index = faiss.IndexBinaryMultiHash(bits, tables, bits // tables)
    index.nflip = flips
    index.add(codes)
    return _FaissRange(index, codes)


def _as_ints(words: Words) -> list[int]:
    """Each row's words as one Python int (big-endian word order)."""
    values = [int(w) for w in words[:, 0].tolist()]
    for column in range(1, words.shape[1]):
        values = [(v << 64) | int(w) for v, w in zip(values, words[:, column].tolist(), strict=True)]
    return values


class _PyBKTree:
    """pybktree over the distinct hash values (equal hashes share a node's rows, as imagededup does)."""

    def __init__(self, words: Words) -> None:
        import pybktree  # type: ignore[import-not-found, unused-ignore]

        self.values = _as_ints(words)
        self.rows_of: dict[int, list[int]] = {}
        for row, value in enumerate(self.values):
            self.rows_of.setdefault(value, []).append(row)
        self.tree = pybktree.BKTree(lambda a, b: (a ^ b).bit_count(), list(self.rows_of))

    def within(self, rows: Rows, radius: int) -> tuple[Rows, Rows]:
        queries: list[int] = []
        found: list[int] = []
        for row in rows.tolist():
            for _, value in self.tree.find(self.values[row], radius):
                matched = self.rows_of[value]
                queries.extend([row] * len(matched))
                found.extend(matched)
        return np.array(queries, np.int64), np.array(found, np.int64)


class _CppBKTree:
    """cppbktree's BKTree64, over 64-bit hashes only: its byte-string tree (0.2.0) measures
    longer hashes as 4 x the distance of their first 8 bytes, so it misses pairs within the
    radius and returns pairs far beyond it (tests/test_scale_peers.py found it)."""

    def __init__(self, words: Words) -> None:
        import cppbktree  # type: ignore[import-not-found, unused-ignore]

        if words.shape[1] != 1:
            raise ValueError("cppbktree measures hashes longer than 64 bits wrongly: 64-bit hashes only")
        self.items = [int(w) for w in words[:, 0].tolist()]
        self.tree = cppbktree.BKTree64(self.items)

    def within(self, rows: Rows, radius: int) -> tuple[Rows, Rows]:
        queries: list[int] = []
        found: list[int] = []
        for row in rows.tolist():
            matched = self.tree.find(self.items[row], radius)
            queries.extend([row] * len(matched))
            found.extend(matched)
        return np.array(queries, np.int64), np.array(found, np.int64)


def peers(radius: int) -> dict[str, Peer]:
    """The peers, by name (FAISS's multi-hash is set up for `radius`)."""
    return {
        "faiss-flat": Peer("faiss-flat", "FAISS IndexBinaryFlat (brute force)", True, faiss_flat),
        "faiss-ivf": Peer(
            "faiss-ivf", "FAISS IndexBinaryIVF (4 sqrt(n) lists, nprobe 1/32)", False, faiss_ivf
        ),
        "faiss-multihash": Peer(
            "faiss-multihash",
            "FAISS IndexBinaryMultiHash (16-bit substrings, exact)",
            True,
            lambda words: faiss_multihash(words, radius),
            block=256,
        ),
        "pybktree": Peer("pybktree", "pybktree (pure-Python BK-tree)", True, _PyBKTree, block=64),
        "cppbktree": Peer("cppbktree", "cppbktree (C++ BK-tree, 64-bit hashes)", True, _CppBKTree, block=256),
    }


def run_peer(
    peer: Peer,
    words: Words,
    radius: int,
    answer_first: int = 0,
    budget_seconds: float | None = None,
    variants: npt.NDArray[np.uint64] | None = None,
) -> PeerRun:
    """Every pair within `radius`: build the peer's index, query every row in blocks. Rows below
    `answer_first` are always answered; once the search has taken `budget_seconds`, only every
    few blocks of the remaining rows are (as many as fit in about another budget) and the time
    is extrapolated from them."""
    resident = _resident_mb()
    began = time.perf_counter()
    structure = peer.build(words)
    build_seconds = time.perf_counter() - began
    index_mb = _resident_mb() - resident
    count = len(words)
    forced = min(answer_first, count)
    firsts: list[Rows] = []
    seconds: list[Rows] = []
    forced_seconds = 0.0
    answered_rows = rest_rows = 0
    stride = 0  # 0 until the budget is spent: then one block in `stride` is answered
    sampled_from = 0
    began = time.perf_counter()
    for number, start in enumerate(range(0, count, peer.block)):
        stop = min(count, start + peer.block)
        elapsed = time.perf_counter() - began
        if not stride and budget_seconds is not None and start >= forced and elapsed > budget_seconds:
            per_row = elapsed / max(answered_rows, 1)
            stride = max(2, int(np.ceil((count - start) * per_row / max(budget_seconds, 1e-3))))
            sampled_from = number
        if stride > 1 and (number - sampled_from) % stride:
            continue
        queries, found = structure.within(np.arange(start, stop, dtype=np.int64), radius)
        keep = found > queries
        firsts.append(queries[keep])
        seconds.append(found[keep])
        answered_rows += stop - start
        if stop <= forced:
            forced_seconds = time.perf_counter() - began
        else:
            rest_rows += stop - max(start, forced)
    answered = time.perf_counter() - began
    estimated = answered_rows < count
    search_seconds = answered
    if estimated and rest_rows:
        search_seconds = forced_seconds + (answered - forced_seconds) * (count - forced) / rest_rows
    first = np.concatenate(firsts) if firsts else np.zeros(0, np.int64)
    second = np.concatenate(seconds) if seconds else np.zeros(0, np.int64)
    # a peer's answers are checked (outside its timing): pairs beyond the radius are dropped and
    # counted
    if variants is None:
        within = np.bitwise_count(words[first] ^ words[second]).sum(axis=1) <= radius
    else:  # found from either side's variants: each pair once, judged on its nearest variant
        if len(first):
            first, second = np.unique(np.stack([first, second]), axis=1)
        forward = np.bitwise_count(variants[first] ^ words[second][:, None]).sum(axis=2).min(axis=1)
        backward = np.bitwise_count(variants[second] ^ words[first][:, None]).sum(axis=2).min(axis=1)
        within = np.minimum(forward, backward) <= radius
    return PeerRun(
        first[within],
        second[within],
        build_seconds,
        search_seconds,
        answered_rows,
        estimated,
        _peak_mb(),
        int((~within).sum()),
        index_mb,
    )


def brute_force_pairs(words: Words, radius: int, block: int = 1024) -> tuple[Rows, Rows]:
    """The oracle: every pair (a < b) within `radius`, by XOR + popcount in NumPy."""
    firsts: list[Rows] = []
    seconds: list[Rows] = []
    for start in range(0, len(words), block):
        chunk = words[start : start + block]
        distances = np.bitwise_count(chunk[:, None, :] ^ words[None, :, :]).sum(axis=2)
        query, found = np.nonzero(distances <= radius)
        query = query + start
        keep = found > query
        firsts.append(query[keep].astype(np.int64))
        seconds.append(found[keep].astype(np.int64))
    return np.concatenate(firsts), np.concatenate(seconds)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _resident_mb() -> float:
    """The process's resident memory now (Linux), 0 where /proc is missing."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
    except OSError:
        return 0.0
    return pages * resource.getpagesize() / 2**20
