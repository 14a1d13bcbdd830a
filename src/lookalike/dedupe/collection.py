"""Duplicate search over a collection: index files keeping their variants, then group them.

Shared by `lookalike dupes` and `lookalike demo`. Stored hashes carry no variants, so each image
is searched for with its own variants (rotations, flips, crops: `dihedral=True`); a file freshly
hashed while indexing keeps its result, others are hashed again through the hash cache (which
answers unchanged files without decoding), and entries without a readable file (hash lists) are
searched with their stored hashes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from lookalike.algorithms import parse_spec
from lookalike.dedupe.grouping import Group
from lookalike.errors import ImageError, LookalikeError
from lookalike.hash import Hash
from lookalike.index.base import AddReport, Index
from lookalike.matcher import Matcher
from lookalike.pipeline import HashResult, hash_files
from lookalike.prepare import Mode

if TYPE_CHECKING:
    from lookalike.hash_cache import HashCache

Queries = dict[str, dict[str, Hash]]


def plain_hashes(result: HashResult) -> dict[str, Hash]:
    return {name: value for name, value in result.items() if isinstance(value, Hash)}


def index_files(
    index: Index,
    files: Sequence[str],
    names: Sequence[str],
    queries: Queries,
    *,
    workers: int | None = None,
    mode: Mode = "fast",
    cache: HashCache | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> AddReport:
    """Add `files` to the index (keys: absolute paths), keeping fresh results in `queries`."""

    def keep(key: str, result: HashResult) -> None:
        queries[key] = plain_hashes(result)

    from lookalike.local.features import local_features_available

    return index.add_files(
        files,
        list(names),
        workers=workers,
        mode=mode,
        cache=cache,
        dihedral=True,
        on_hashed=keep,
        progress=progress,
        local=local_features_available(),  # the presets verify partial copies by geometry
    )


def complete_queries(
    index: Index,
    keys: Sequence[str],
    queries: Queries,
    names: Sequence[str],
    *,
    workers: int | None = None,
    mode: Mode = "fast",
    cache: HashCache | None = None,
) -> list[ImageError]:
    """Give every key in `keys` a query (see the module docstring); returns files that failed."""
    missing = [key for key in keys if key not in queries]
    files = [key for key in missing if os.path.isabs(key) and os.path.isfile(key)]
    failures = []
    from lookalike.local.features import local_features_available

    # hashed as `index add` hashed them (with local features if it stored them): the cache answers
    states = index.file_states(files)
    local = local_features_available() and any(state.local for state in states.values())
    for path, result in hash_files(
        files, _as_indexed(index, names), workers=workers, mode=mode, dihedral=True, cache=cache, local=local
    ):
        if isinstance(result, ImageError):
            failures.append(result)
        else:
            queries[path] = plain_hashes(result)
    for key, entry in index.get_many(key for key in missing if key not in queries).items():
        queries[key] = dict(entry.hashes)
    return failures


def _as_indexed(index: Index, names: Sequence[str]) -> list[str]:
    """`names` plus every other algorithm the index stores, as `index add` hashed them: the hash
    cache is keyed by the whole algorithm set (in fast mode the set decides the decode scale), so
    this finds what `index add` cached instead of decoding every file again, and the queries
    agree bit for bit with the stored hashes. Stored names lookalike cannot compute are left out."""
    wanted = list(dict.fromkeys([*names, *index.algorithm_bits()]))
    computable = []
    for name in wanted:
        try:
            parse_spec(name)
        except LookalikeError:
            continue
        computable.append(name)
    return computable


def duplicate_groups(
    index: Index,
    queries: Queries,
    rule: Matcher | str,
    *,
    strict: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> list[Group]:
    """Groups of images the rule matches, best copy first. Entries the index holds variants and
    local features of are searched with those (what `dupes --index` and the service do, so every
    surface answers alike); `queries` serve entries stored without them."""
    return index.duplicates(
        matcher=rule, strict=strict, queries=None if _all_stored(index) else queries, progress=progress
    )


def _all_stored(index: Index) -> bool:
    """Whether every entry of the index was stored with its variants (a current `index add`)."""
    states = index.file_states([entry.key for entry in index.entries()])
    return all(state.variants is not False for state in states.values())
