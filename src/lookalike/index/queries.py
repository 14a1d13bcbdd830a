"""Backend-neutral query handling: normalising queries and algorithm names, dihedral expansion,
and turning raw (query, entry id, distance) hits into sorted `Match` lists.

Every backend answers the same way: per query, matches sorted by (distance, key); with
`dihedral=True` each key appears once, at the best distance over the query's 8 variants.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from lookalike.algorithms import parse_spec
from lookalike.errors import InvalidHashError, MissingVariantsError, UnknownAlgorithmError
from lookalike.hash import Hash
from lookalike.index.base import IndexItem, Match

_FOREIGN_NAME = re.compile(r"^[a-z0-9][a-z0-9_.:-]*$")


@functools.lru_cache(maxsize=1024)
def canonical_algorithm(name: str) -> str:
    """The registry's key for a name ("pHash" -> "phash", "phash:8" -> "phash"); names the registry
    does not know (hash lists made elsewhere) are kept, lowercased, if they are simple words."""
    try:
        return parse_spec(name).key
    except UnknownAlgorithmError:
        cleaned = name.strip().lower()
        if not _FOREIGN_NAME.match(cleaned):
            raise UnknownAlgorithmError(f"not a usable algorithm name: {name!r}") from None
        return cleaned


def as_query_list(queries: Hash | Sequence[Hash]) -> tuple[list[Hash], bool]:
    """(the queries as a list, whether a single Hash was given)."""
    if isinstance(queries, Hash):
        return [queries], True
    if isinstance(queries, str | bytes):
        raise TypeError("a query is a Hash or a sequence of Hash; parse hex with Hash.from_hex")
    listed = list(queries)
    for value in listed:
        if not isinstance(value, Hash):
            raise TypeError(f"a query is a Hash, not {type(value).__name__}")
    return listed, False


def check_lengths(queries: Iterable[Hash], nbits: int, algorithm: str) -> None:
    for value in queries:
        if value.nbits != nbits:
            raise InvalidHashError(
                f"{algorithm} hashes in this index have {nbits} bits; query has {value.nbits}"
            )


def expand_dihedral(
    queries: Sequence[Hash], dihedral: bool
) -> tuple[list[Hash], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The hashes to search, the query each came from, and which variant it is (0 = itself)."""
    if not dihedral:
        count = len(queries)
        return list(queries), np.arange(count, dtype=np.int64), np.zeros(count, dtype=np.int64)
    expanded: list[Hash] = []
    owners: list[int] = []
    variants: list[int] = []
    for position, query in enumerate(queries):
        if not query.variants:
            raise MissingVariantsError(
                f"query {query} has no dihedral variants; hash it with hash_file(..., dihedral=True) "
                "or hash_image(..., dihedral=True) (aHash, dHash, pHash, wHash and PDQ support it)"
            )
        for number, variant in enumerate(query.variants):
            expanded.append(variant)
            owners.append(position)
            variants.append(number)
    return expanded, np.array(owners, dtype=np.int64), np.array(variants, dtype=np.int64)


def best_per_entry(
    owner: npt.NDArray[np.int64],
    variant: npt.NDArray[np.int64],
    ids: npt.NDArray[np.int64],
    distances: npt.NDArray[np.integer],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Keep, per (query, entry), the smallest distance (then the lowest variant number)."""
    if len(ids) == 0:
        return owner, variant, ids, distances.astype(np.int64)
    order = np.lexsort((variant, distances, ids, owner))
    owner, variant, ids, dist = owner[order], variant[order], ids[order], distances[order].astype(np.int64)
    first = np.ones(len(ids), dtype=bool)
    first[1:] = (owner[1:] != owner[:-1]) | (ids[1:] != ids[:-1])
    return owner[first], variant[first], ids[first], dist[first]


def build_matches(
    query_count: int,
    owner: npt.NDArray[np.int64],
    variant: npt.NDArray[np.int64],
    ids: npt.NDArray[np.int64],
    distances: npt.NDArray[np.integer],
    keys_of: Callable[[Sequence[int]], Mapping[int, str]],
    k: int | None = None,
) -> list[list[Match]]:
    """Per query, `Match`es sorted by (distance, key), cut to `k` if given; ids whose entry has
    vanished meanwhile (removed by another writer) are dropped."""
    owner, variant, ids, dist = best_per_entry(owner, variant, ids, distances)
    keys = keys_of(sorted(set(ids.tolist())))
    results: list[list[Match]] = [[] for _ in range(query_count)]
    for q, v, entry_id, d in zip(owner.tolist(), variant.tolist(), ids.tolist(), dist.tolist(), strict=True):
        key = keys.get(entry_id)
        if key is not None:
            results[q].append(Match(d, key, entry_id, v))
    for position, matches in enumerate(results):
        matches.sort()
        if k is not None:
            results[position] = matches[:k]
    return results


def new_algorithm_widths(
    items: Iterable[IndexItem], stored_width: Callable[[str], int | None], where: str
) -> dict[str, int]:
    """Each algorithm keeps one bit length in an index: the algorithms in `items` new to it, with
    their widths; a hash whose length differs from its algorithm's stored one is an error."""
    new: dict[str, int] = {}
    for item in items:
        for algorithm, value in item.hashes.items():
            known = stored_width(algorithm) or new.get(algorithm)
            if known is None:
                new[algorithm] = value.nbits
            elif known != value.nbits:
                raise InvalidHashError(
                    f"{item.key}: {algorithm} hashes in {where} have {known} bits, this one has {value.nbits}"
                )
    return new
