"""The Index API every backend implements (SQLite embedded by default, chDB, ClickHouse server).

How matching flows, in six lines:
1. Items are `(key, {algorithm: Hash})` pairs, or `IndexItem`s that also carry file facts.
2. `add` stores them in the catalog (one row per key; the same sha256 under a second id is one
   entry, but every file path `add_files` reads is its own entry: exact copies are duplicates).
3. `range_search(queries, algorithm, r)` returns every stored hash within Hamming distance r.
4. `search(queries, algorithm, k)` returns the exact k nearest, ties broken by key.
5. With `dihedral=True` each query's 8 rotation/flip variants are searched; the best counts.
6. Hashes flagged unreliable (low quality, flat) are skipped unless `include_flagged=True`.

Answers are always exact: approximate structures may prune, never drop a true match.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import numpy.typing as npt

from lookalike.hash import Hash
from lookalike.pipeline import HashNames, HashResult
from lookalike.prepare import Mode

if TYPE_CHECKING:
    from lookalike.candidates.batch import QueryBatch
    from lookalike.candidates.judge import StoredHashes
    from lookalike.candidates.keys import KeyLayout
    from lookalike.candidates.stored_variants import StoredVariants
    from lookalike.dedupe.grouping import Group
    from lookalike.hash_cache import HashCache
    from lookalike.local.features import LocalFeatures
    from lookalike.matcher import Matcher, Verdict


# Where an entry's key came from, set by the code that adds it and never read from an item's
# metadata or id: FROM_FILE entries are files the command line hashed from disk (only these may be
# moved, deleted or linked by `lookalike dupes --action`), FROM_API ones came over HTTP, and None is
# anything else (`Index.add` from Python, imported lists, entries stored before origins were).
# A write replaces the origin: an HTTP upload under a file's key makes it FROM_API.
FROM_FILE = "file"
FROM_API = "api"


@dataclass(frozen=True)
class IndexItem:
    """What `Index.add` stores for one image: its key, hashes and (optionally) file facts."""

    key: str
    hashes: Mapping[str, Hash]
    sha256: str | None = None
    byte_size: int | None = None
    width: int | None = None
    height: int | None = None
    mtime: float | None = None
    metadata: Mapping[str, Any] | None = None
    origin: str | None = None  # FROM_FILE, FROM_API or None (see above)
    local: LocalFeatures | None = None  # keypoints to store (compact) for local verification
    local_mirrored: LocalFeatures | None = None
    # the pictures inside the image (`HashResult.regions`: relative boxes, in the order of its
    # `phash_eq_regions` variants after the first), so a query found in one is shown there
    regions: tuple[tuple[float, float, float, float], ...] = ()


def checked_item(item: IndexItem | tuple[str, Mapping[str, Hash]], where: str) -> IndexItem:
    """`item` as an IndexItem whose hashes carry canonical algorithm names, after checking that its
    key is a non-empty string and its hashes are `Hash`es (`where` names the index in errors)."""
    from lookalike.errors import IndexStoreError, InvalidHashError
    from lookalike.index.queries import canonical_algorithm

    if not isinstance(item, IndexItem):
        key, given = item
        item = IndexItem(key, given)
    if not isinstance(item.key, str) or not item.key:
        raise IndexStoreError(f"{where}: an index key must be a non-empty string, got {item.key!r}")
    canonical: dict[str, Hash] = {}
    for name, value in item.hashes.items():
        if not isinstance(value, Hash):
            raise InvalidHashError(f"{item.key}: {name} is a {type(value).__name__}, not a Hash")
        canonical[canonical_algorithm(name)] = value
    return replace(item, hashes=canonical)


def checked_keys(keys: Sequence[str], where: str) -> list[str]:
    """`keys` as a list after checking that each is a non-empty string (`where` names the index)."""
    from lookalike.errors import IndexStoreError

    listed = list(keys)
    try:  # str.__len__ refuses a non-string: a check in C (the bulk path checks 100,000s)
        valid = all(map(str.__len__, listed))
    except TypeError:
        valid = False
    if not valid:
        position, key = next((i, k) for i, k in enumerate(listed) if not (isinstance(k, str) and k))
        raise IndexStoreError(
            f"{where}: an index key must be a non-empty string, got {key!r} (item {position})"
        )
    return listed


@dataclass(frozen=True)
class Entry:
    """One catalog row as stored."""

    id: int
    key: str
    hashes: Mapping[str, Hash]  # algorithm key -> Hash (quality restored on the Hash)
    sha256: str | None
    byte_size: int | None
    width: int | None
    height: int | None
    mtime: float | None
    added_at: float
    flagged: frozenset[str] = frozenset()  # algorithm keys whose hash is unreliable
    metadata: Mapping[str, Any] = field(default_factory=dict)
    origin: str | None = None  # FROM_FILE, FROM_API or None: where the key came from

    @property
    def pixels(self) -> int:
        return (self.width or 0) * (self.height or 0)


@dataclass(frozen=True, order=True)
class Match:
    """A stored hash near a query: sorted by distance, then key."""

    distance: int
    key: str
    id: int = field(default=0, compare=False)
    variant: int = field(default=0, compare=False)  # which dihedral variant of the query matched


@dataclass(frozen=True)
class AddReport:
    """What an add did: new keys, changed keys, unchanged keys, failures (key, reason), and
    `same_bytes`: (key, existing key) for items skipped because their sha256 is already stored."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: tuple[tuple[str, str], ...] = ()
    same_bytes: tuple[tuple[str, str], ...] = ()

    def merge(self, other: AddReport) -> AddReport:
        return AddReport(
            self.added + other.added,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
            self.failed + other.failed,
            self.same_bytes + other.same_bytes,
        )


@dataclass(frozen=True)
class FileState:
    """What the index remembers about a file: enough to tell whether it must be hashed again."""

    byte_size: int | None
    mtime: float | None
    algorithms: frozenset[str]
    mode: str | None = None  # the hashing mode ("fast" / "exact") the stored hashes were made in
    # The revision of each stored algorithm that is past its first (lookalike.algorithms.registry):
    # hashes made by an older revision of an algorithm are made again.
    revisions: Mapping[str, int] = field(default_factory=dict)
    origin: str | None = None  # an entry not FROM_FILE is hashed again, so that it becomes one
    variants: bool | None = None  # whether the entry holds query variants (None: unknown)
    local: bool | None = None  # whether it holds local features (None: unknown)


@dataclass(frozen=True)
class IndexStats:
    """What `lookalike index stats` shows: entries, hashes and flagged hashes per algorithm, disk use."""

    entries: int
    hashes: Mapping[str, int]
    flagged: Mapping[str, int]
    nbits: Mapping[str, int]
    disk_bytes: int | None


@dataclass(frozen=True)
class Pairs:
    """Pairs of stored entries (by entry id) with their distance, and the entries involved."""

    first: npt.NDArray[np.int64]
    second: npt.NDArray[np.int64]
    distances: npt.NDArray[np.int64]
    entries: Mapping[int, Entry]

    def __len__(self) -> int:
        return len(self.first)


Query = Hash | Sequence[Hash]


class Index(ABC):
    """A persistent catalog of image hashes with exact Hamming search. Use as a context manager."""

    url: str

    # ----- writing -------------------------------------------------------------------------------
    @abstractmethod
    def add(self, items: Iterable[IndexItem | tuple[str, Mapping[str, Hash]]]) -> AddReport:
        """Store items; an existing key is updated, a known sha256 under a new key is skipped
        unless the item is a file read from disk (origin FROM_FILE), which keeps its own entry."""

    def add_files(
        self,
        paths: Iterable[str | os.PathLike[str]],
        hashes: HashNames | None = None,
        *,
        workers: int | None = None,
        mode: Mode = "fast",
        progress: Callable[[int, int], None] | None = None,
        cache: HashCache | None = None,
        dihedral: bool = True,
        on_hashed: Callable[[str, HashResult], None] | None = None,
        local: bool | None = None,
    ) -> AddReport:
        """Hash files on all cores and add them under their absolute paths; `hashes` defaults to
        what the matcher presets read (`lookalike.matcher.default_index_hashes()`).

        A file whose size and mtime match its entry, and whose entry already holds every
        requested hash, is skipped without being read: the index is the hash cache.
        `progress(done, total)` is called as files finish.

        >>> index.add_files(["a.jpg", "b.jpg"], hashes=["phash", "colorhash"])
        AddReport(added=2, updated=0, unchanged=0, failed=(), same_bytes=())
        """
        from lookalike.index.files import add_files

        return add_files(
            self,
            paths,
            hashes,
            workers=workers,
            mode=mode,
            progress=progress,
            cache=cache,
            dihedral=dihedral,
            on_hashed=on_hashed,
            local=local,
        )

    def add_words(
        self,
        keys: Sequence[str],
        algorithm: str,
        words: npt.NDArray[np.uint64],
        nbits: int,
        quality: Sequence[int | None] | None = None,
    ) -> AddReport:
        """Add one algorithm's hashes given as an (n, words) uint64 array (big-endian words, as
        `Hash.words()`): the fast path for large hash lists. Backends may override it."""
        rows = np.asarray(words, dtype=np.uint64).reshape(len(keys), -1)
        items = [
            (
                key,
                {
                    algorithm: Hash.from_words(row, nbits).with_quality(
                        None if quality is None else quality[i]
                    )
                },
            )
            for i, (key, row) in enumerate(zip(keys, rows, strict=True))
        ]
        return self.add(items)

    @abstractmethod
    def remove(self, keys: Iterable[str]) -> int:
        """Delete entries by key; returns how many existed."""

    def compact(self) -> int:
        """Physically drop what updates and removals left behind (backends that keep old row
        versions); returns how many rows went. Readers may run meanwhile."""
        return 0

    # ----- reading -------------------------------------------------------------------------------
    @abstractmethod
    def get(self, key: str) -> Entry | None: ...

    def get_many(self, keys: Iterable[str]) -> dict[str, Entry]:
        """Entries by key (missing keys are left out)."""
        found = {}
        for key in keys:
            entry = self.get(key)
            if entry is not None:
                found[key] = entry
        return found

    def file_states(self, keys: Sequence[str]) -> dict[str, FileState]:
        """Byte size, mtime and stored algorithms per known key (what `add_files` checks)."""
        return {
            key: FileState(
                entry.byte_size,
                entry.mtime,
                frozenset(entry.hashes),
                _hash_mode(entry.metadata),
                hash_revisions(entry.metadata),
                entry.origin,
            )
            for key, entry in self.get_many(keys).items()
        }

    @abstractmethod
    def entries(self) -> Iterator[Entry]: ...

    @abstractmethod
    def __len__(self) -> int: ...

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    # ----- searching -----------------------------------------------------------------------------
    @overload
    def range_search(
        self,
        queries: Hash,
        algorithm: str,
        max_distance: int,
        *,
        dihedral: bool = ...,
        include_flagged: bool = ...,
    ) -> list[Match]: ...

    @overload
    def range_search(
        self,
        queries: Sequence[Hash],
        algorithm: str,
        max_distance: int,
        *,
        dihedral: bool = ...,
        include_flagged: bool = ...,
    ) -> list[list[Match]]: ...

    @abstractmethod
    def range_search(
        self,
        queries: Query,
        algorithm: str,
        max_distance: int,
        *,
        dihedral: bool = False,
        include_flagged: bool = False,
    ) -> list[Match] | list[list[Match]]:
        """Every stored hash within `max_distance` of each query, sorted by (distance, key)."""

    @overload
    def search(
        self,
        queries: Hash,
        algorithm: str,
        k: int = ...,
        *,
        dihedral: bool = ...,
        include_flagged: bool = ...,
    ) -> list[Match]: ...

    @overload
    def search(
        self,
        queries: Sequence[Hash],
        algorithm: str,
        k: int = ...,
        *,
        dihedral: bool = ...,
        include_flagged: bool = ...,
    ) -> list[list[Match]]: ...

    @abstractmethod
    def search(
        self,
        queries: Query,
        algorithm: str,
        k: int = 10,
        *,
        dihedral: bool = False,
        include_flagged: bool = False,
    ) -> list[Match] | list[list[Match]]:
        """The exact `k` nearest stored hashes for each query, sorted by (distance, key)."""

    @abstractmethod
    def algorithm_bits(self) -> dict[str, int]:
        """Every stored algorithm and its hash length in bits."""

    @abstractmethod
    def pairs(self, algorithm: str, max_distance: int, *, include_flagged: bool = False) -> Pairs:
        """Every pair of stored entries whose `algorithm` hashes are within `max_distance`."""

    def duplicates(
        self,
        algorithm: str | None = None,
        max_distance: int | None = None,
        *,
        matcher: Matcher | str | None = None,
        queries: Mapping[str, Mapping[str, Hash]] | Iterable[QueryBatch] | None = None,
        strict: bool = False,
        include_flagged: bool = False,
        exact: bool = False,
        progress: Callable[[int, int], None] | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
    ) -> list[Group]:
        """Groups of near-duplicates, best copy first: connected components of the "match" graph,
        or with `strict=True`, groups whose every member matches the group's centre.

        Either one hash and a radius (`duplicates("phash", 6)`: exact all-pairs search), or a
        `matcher` (a rule or preset: `duplicates(matcher="near-duplicate")`), whose candidate
        stage searches every stored image as a batched job (`exact=True` for the exact plan).
        With `queries` (stored key -> that image's hashes with variants, from
        `hash_file(..., dihedral=True)`), rotated, flipped and cropped copies group as well.
        `progress(done, total)` follows the job; with a `checkpoint` file an interrupted job
        resumes where it stopped.

        >>> for group in index.duplicates(matcher="near-duplicate"):
        ...     keep, *others = group.members
        """
        from lookalike.dedupe.grouping import group_pairs
        from lookalike.dedupe.pairs import rule_pairs

        if matcher is not None:
            found = rule_pairs(
                self,
                matcher,
                queries=queries,
                exact=exact,
                include_flagged=include_flagged,
                progress=progress,
                checkpoint=checkpoint,
            )
        elif algorithm is None or max_distance is None:
            from lookalike.errors import MatcherSyntaxError

            raise MatcherSyntaxError(
                "duplicates needs a matcher (matcher='near-duplicate') or an algorithm and a radius"
                " (duplicates('phash', 6))"
            )
        else:
            self.require_algorithm(algorithm)
            found = self.pairs(algorithm, max_distance, include_flagged=include_flagged)
        return group_pairs(found.first, found.second, found.distances, found.entries, strict=strict)

    def match(
        self,
        hashes: Mapping[str, Any],
        matcher: Matcher | str = "near-duplicate",
        *,
        dihedral: bool | None = None,
        include_flagged: bool = False,
        exact: bool = False,
        local: tuple[LocalFeatures | None, LocalFeatures | None] | None = None,
    ) -> list[Verdict]:
        """Stored images that `matcher` (a `Matcher`, a rule or a preset name) accepts for the
        query's hashes, sorted by (score, key). The candidate stage nominates stored images (by
        candidate keys, or with `exact=True` by the rule's exact range searches); the rule then
        decides on every hash it names. The query's variants (rotations, flips, crops;
        `hash_file(..., dihedral=True)`) are searched unless `dihedral=False`.

        >>> upload = lookalike.hash_file("upload.jpg", default_index_hashes(), dihedral=True, local="query")
        >>> index.match(upload, "near-duplicate")
        [Verdict(key='/photos/cat.jpg', distances={'phash_eq': 2, ...}, score=..., variant=0)]
        """
        return self.match_many(
            [hashes],
            matcher,
            dihedral=dihedral,
            include_flagged=include_flagged,
            exact=exact,
            local=None if local is None else [local],
        )[0]

    def match_many(
        self,
        queries: Sequence[Mapping[str, Any]],
        matcher: Matcher | str = "near-duplicate",
        *,
        dihedral: bool | None = None,
        include_flagged: bool = False,
        exact: bool = False,
        local: Sequence[tuple[LocalFeatures | None, LocalFeatures | None]] | None = None,
    ) -> list[list[Verdict]]:
        """`match` for many queries in one batch (one candidate search for all of them). Local
        features come from each query (a `HashResult` of `hash_file(..., local="query")`), or `local`
        gives them (features, mirrored features) per query."""
        from lookalike.candidates.batch import QueryBatch
        from lookalike.candidates.stage import match_batch
        from lookalike.matcher import Matcher

        rule = matcher if isinstance(matcher, Matcher) else Matcher.parse(matcher)
        if dihedral is None:
            dihedral = any(getattr(v, "variants", None) for query in queries for v in query.values())
        batch = QueryBatch.from_hashes(queries, variants=dihedral)
        if local is not None and any(pair[0] is not None for pair in local):
            batch = replace(batch, local=list(local))
        return match_batch(self, batch, rule, exact=exact, include_flagged=include_flagged)

    def require_algorithm(self, algorithm: str) -> int:
        """The bit length of a stored algorithm; a clear error naming what the index holds if
        it holds no such hash (a search for it could only ever answer nothing)."""
        from lookalike.errors import UnknownAlgorithmError
        from lookalike.index.queries import canonical_algorithm

        widths = self.algorithm_bits()
        name = canonical_algorithm(algorithm)
        if name not in widths:
            held = ", ".join(sorted(widths)) or "nothing yet"
            raise UnknownAlgorithmError(f"{self.url} holds no {name} hashes (it holds: {held})")
        return widths[name]

    # ----- the candidate stage's access to stored hashes (lookalike.candidates.stage) --------------
    def nominate(
        self,
        family: str,
        layout: KeyLayout,
        words: npt.NDArray[np.uint64],
        include_flagged: bool,
        owners: npt.NDArray[np.int64] | None = None,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(row of `words`, entry id) for every stored hash of `family` sharing a candidate key;
        with `owners` (the query of each row), any row of a query may stand for the others."""
        raise NotImplementedError

    def nominate_exact(
        self, algorithm: str, words: npt.NDArray[np.uint64], radius: int, include_flagged: bool
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(row of `words`, entry id) for every stored hash within `radius` of it (exact)."""
        raise NotImplementedError

    def stored_hashes(self, algorithm: str, ids: npt.NDArray[np.int64]) -> StoredHashes:
        """One algorithm's stored hashes for these entry ids (absent ones marked)."""
        raise NotImplementedError

    def stored_hashes_many(
        self, algorithms: Sequence[str], ids: npt.NDArray[np.int64]
    ) -> dict[str, StoredHashes]:
        """`stored_hashes` of several algorithms (backends may answer in one read)."""
        return {algorithm: self.stored_hashes(algorithm, ids) for algorithm in algorithms}

    def hold_stored_hashes(self, algorithms: Sequence[str]) -> None:  # noqa: B027 - optional
        """A job is about to judge candidates all over the index on `algorithms` (a duplicate
        search): a backend that reads stored hashes from elsewhere may hold them in memory,
        until the index changes. SQLite holds them already."""

    def keys_by_id(self, ids: npt.NDArray[np.int64]) -> dict[int, str]:
        """Keys of these entry ids (removed ones are left out)."""
        raise NotImplementedError

    def stored_local(
        self, ids: npt.NDArray[np.int64]
    ) -> dict[int, tuple[LocalFeatures, LocalFeatures | None]]:
        """Stored local features (and mirrored ones) of these entry ids, where stored."""
        return {}

    def local_at_hand(
        self, ids: npt.NDArray[np.int64], *, mirrored: bool = False
    ) -> dict[int, tuple[LocalFeatures, LocalFeatures | None]]:
        """Every keypoint of these entries whose indexed files are at hand and unchanged
        (`lookalike.local.at_hand`), and with `mirrored` of their mirror images: a second look at a
        pair that came close."""
        from lookalike.local.at_hand import features_at_hand

        return features_at_hand(self.entries_by_id(ids), mirrored=mirrored)

    def nominate_local(
        self, keys: npt.NDArray[np.uint32], tables: npt.NDArray[np.int64], limit: int | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.uint64]]:
        """(probe, entry id, keypoint signature) for every stored keypoint whose descriptor key in
        table `tables[p]` is `keys[p]` (lookalike.local.retrieval); keys held by `limit` keypoints
        or more may return none. Backends without local features find none."""
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), np.zeros(0, dtype=np.uint64)

    def stored_variants(self, algorithm: str) -> StoredVariants | None:
        """The stored variants of `algorithm` that a query's own hash is compared with
        (`Algorithm.stored_variants_searched`: the pictures inside stored composites), made once
        per state of the index (`fingerprint`); None for other algorithms or none stored."""
        from lookalike.algorithms import parse_spec
        from lookalike.candidates.plan import family_of
        from lookalike.candidates.stored_variants import StoredVariants
        from lookalike.errors import UnknownAlgorithmError
        from lookalike.index.queries import canonical_algorithm

        name = canonical_algorithm(algorithm)
        try:
            searched = parse_spec(name).algorithm.stored_variants_searched
        except UnknownAlgorithmError:
            return None
        found = family_of(name)
        if not searched or found is None or name not in self.algorithm_bits():
            return None
        state = self.fingerprint()  # read first: a write after it is read again next time
        cache: dict[str, tuple[str, StoredVariants]] = self.__dict__.setdefault("_stored_variants_made", {})
        made = cache.get(name)
        if made is None or made[0] != state:
            changes = None if made is None else self.variant_changes(name, made[0])
            if made is None or changes is None:
                stored = StoredVariants.from_blobs(found[1], self.variant_rows(name))
            else:
                stored = made[1].update(*changes)
            made = (state, stored)
            cache[name] = made
        return made[1] if len(made[1]) else None

    def variant_rows(self, algorithm: str) -> list[tuple[int, bytes]]:
        """(entry id, its stored variant words of `algorithm` after the hash itself) of every
        entry that stores some; backends without stored variants have none."""
        return []

    def stored_regions(
        self, ids: Iterable[int]
    ) -> dict[int, tuple[npt.NDArray[np.uint64], list[tuple[float, float, float, float]]]]:
        """Per entry id, the pictures found inside it: their `phash_eq_regions` hashes ((k,
        words) uint64) and where each lies (relative boxes), for entries stored with both;
        backends without stored regions have none."""
        return {}

    def variant_changes(
        self, algorithm: str, since: str
    ) -> tuple[npt.NDArray[np.int64], list[tuple[int, bytes]]] | None:
        """(entries whose stored variants of `algorithm` may have changed since the index's state
        was `since`, a `fingerprint`; their `variant_rows` now), so `stored_variants` updates
        what it holds instead of reading every entry's; None where the backend cannot tell (the
        variants are then read anew)."""
        return None

    def ids_by_key(self, keys: Sequence[str]) -> dict[str, int]:
        """Entry ids of these keys (unknown keys are left out)."""
        return {key: entry.id for key, entry in self.get_many(keys).items()}

    def entries_by_id(self, ids: Iterable[int] | npt.NDArray[np.int64]) -> dict[int, Entry]:
        """Entries by id (removed ones are left out)."""
        keys = self.keys_by_id(np.asarray(list(ids), dtype=np.int64))
        return {entry.id: entry for entry in self.get_many(keys.values()).values()}

    def stored_batches(
        self,
        algorithms: Sequence[str],
        size: int,
        include_flagged: bool = False,
        variants: bool = True,
        local: bool = False,
    ) -> Iterator[QueryBatch]:
        """Every stored entry as a query (`stored_batch`), in batches of `size`, always in the
        same order (a resumed duplicate search relies on it)."""
        ids = self.stored_ids()
        widths = self._query_widths(algorithms)  # read once for the whole job
        for start in range(0, len(ids), size):
            yield self._stored_batch(ids[start : start + size], widths, include_flagged, variants, local)

    def stored_ids(self) -> npt.NDArray[np.int64]:
        """The ids of every stored entry, sorted."""
        raise NotImplementedError

    def stored_batch(
        self,
        ids: npt.NDArray[np.int64],
        algorithms: Sequence[str],
        include_flagged: bool = False,
        variants: bool = True,
        local: bool = False,
    ) -> QueryBatch:
        """The entries `ids` as queries: their stored hashes of `algorithms` with their stored
        variants (unless `variants=False`), flagged hashes left out unless asked, and with
        `local` their stored local features."""
        return self._stored_batch(ids, self._query_widths(algorithms), include_flagged, variants, local)

    def _query_widths(self, algorithms: Sequence[str]) -> dict[str, int]:
        """The stored algorithms among `algorithms` (canonical names, in order) and their bits."""
        from lookalike.index.queries import canonical_algorithm

        widths = self.algorithm_bits()
        names = dict.fromkeys(canonical_algorithm(a) for a in algorithms)
        return {name: widths[name] for name in names if name in widths}

    def _stored_batch(
        self,
        ids: npt.NDArray[np.int64],
        widths: Mapping[str, int],
        include_flagged: bool,
        variants: bool,
        local: bool,
    ) -> QueryBatch:
        from lookalike.candidates.batch import QueryBatch, QueryHashes, stack_variants

        stored = self.stored_variant_words(ids) if variants else {}
        every = self.stored_hashes_many(list(widths), ids)
        hashes = {}
        for name, nbits in widths.items():
            found = every[name]
            present = found.present if include_flagged else found.present & ~found.flagged
            blobs = [stored.get((int(i), name)) for i in ids]
            words = stack_variants(found.words, blobs) if any(blobs) else found.words[:, None, :]
            hashes[name] = QueryHashes(nbits, words, found.quality, present)
        features = None
        if local:
            stored_features = self.stored_local(ids)
            features = [stored_features.get(int(i), (None, None)) for i in ids]
        return QueryBatch(len(ids), hashes, ids, features)

    def stored_variant_words(self, ids: npt.NDArray[np.int64]) -> dict[tuple[int, str], bytes]:
        """(entry id, algorithm) -> the stored words of that hash's variants, for entries `ids`."""
        return {}

    def fingerprint(self) -> str:
        """Changes whenever the stored hashes change (what a duplicate-search checkpoint checks)."""
        return str(len(self))

    def stats(self) -> IndexStats:
        """Counts per algorithm (hashes, flagged hashes) and bytes on disk."""
        hashes: dict[str, int] = {}
        flagged: dict[str, int] = {}
        count = 0
        for entry in self.entries():
            count += 1
            for name in entry.hashes:
                hashes[name] = hashes.get(name, 0) + 1
            for name in entry.flagged:
                flagged[name] = flagged.get(name, 0) + 1
        return IndexStats(count, hashes, flagged, self.algorithm_bits(), self.disk_bytes())

    def disk_bytes(self) -> int | None:
        """Bytes the index occupies on disk, if the backend can tell."""
        return None

    # ----- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:  # noqa: B027 - optional for backends with nothing to release
        """Release connections and files."""

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _hash_mode(metadata: Mapping[str, Any] | None) -> str | None:
    mode = (metadata or {}).get("mode")
    return mode if isinstance(mode, str) else None


def hash_revisions(metadata: Mapping[str, Any] | None) -> dict[str, int]:
    """The algorithm revisions an entry's metadata records (`add_files` writes them)."""
    revisions = (metadata or {}).get("revisions")
    if not isinstance(revisions, dict):
        return {}
    return {str(k): v for k, v in revisions.items() if isinstance(v, int)}


DEFAULT_INDEX_URL = "sqlite:///lookalike.db"


def open_index(url: str | os.PathLike[str] | None = None, **options: Any) -> Index:
    """Open (creating if needed) the index at `url`.

    `sqlite:///path/index.db` (the default, `./lookalike.db`), a bare file path (SQLite),
    `chdb:///path` (embedded ClickHouse, extra `lookalike[chdb]`), or
    `clickhouse://user:password@host:port/database[?cluster=NAME&secure=1]` (extra `lookalike[clickhouse]`).
    """
    text = DEFAULT_INDEX_URL if url is None else os.fspath(url)
    scheme = text.split("://", 1)[0].lower() if "://" in text else "sqlite"
    if scheme == "sqlite":
        from lookalike.index.sqlite import SQLiteIndex

        index: Index = SQLiteIndex.open(text, **options)
        return index
    if scheme == "chdb":
        from lookalike.index.clickhouse import ClickHouseIndex

        embedded: Index = ClickHouseIndex.open_chdb(text, **options)
        return embedded
    if scheme in ("clickhouse", "clickhouses"):
        from lookalike.index.clickhouse import ClickHouseIndex

        server: Index = ClickHouseIndex.open_server(text, **options)
        return server
    from lookalike.errors import IndexStoreError

    raise IndexStoreError(f"unknown index URL scheme {scheme!r} in {text!r}")
