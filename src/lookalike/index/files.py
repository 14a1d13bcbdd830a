"""Backend-neutral `add_files`: hash files in parallel and add them, skipping unchanged ones.

The hash cache lives in the index: a file whose (absolute path, byte size, mtime) match its entry
and whose entry already holds every requested hash is not read again.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from lookalike.discover import path_text
from lookalike.errors import ImageError, UnknownAlgorithmError
from lookalike.hash import Hash
from lookalike.pipeline import HashNames, HashOptions, HashResult, hash_files
from lookalike.prepare import Mode

if TYPE_CHECKING:
    from lookalike.hash_cache import HashCache
    from lookalike.index.base import AddReport, Index, IndexItem

Progress = Callable[[int, int], None]  # (files done, files in total)
ADD_BATCH = 256


def add_files(
    index: Index,
    paths: Iterable[str | os.PathLike[str]],
    hashes: HashNames | None = None,
    *,
    workers: int | None = None,
    mode: Mode = "fast",
    progress: Progress | None = None,
    cache: HashCache | None = None,
    dihedral: bool = True,
    on_hashed: Callable[[str, HashResult], None] | None = None,
    local: bool | None = None,
) -> AddReport:
    """Hash `paths` (keys are absolute paths, as text: `discover.file_key`) and add them; see
    `Index.add_files`.

    `cache` and `dihedral` are passed to `hash_files`; with `dihedral` (the default) the index
    stores each hash's variants too (rotations, flips, crops), so a duplicate search finds such
    copies without the files; `local` stores each image's local features for geometric
    verification (default: with the default hashes, when OpenCV is installed);
    `on_hashed(key, result)` sees every freshly hashed file."""
    from lookalike.index.base import FROM_FILE, AddReport, IndexItem
    from lookalike.matcher import default_index_hashes

    if local is None:  # with the default hashes, when OpenCV is installed
        from lookalike.local.features import local_features_available

        local = hashes is None and local_features_available()
    if hashes is None:
        hashes = default_index_hashes()
    options = HashOptions.build(hashes, mode)
    for spec in options.specs:
        if spec.algorithm.multi:
            raise UnknownAlgorithmError(
                f"{spec.key} gives several hashes per image and cannot be indexed yet"
            )
    wanted = frozenset(spec.key for spec in options.specs)
    # Algorithms past their first revision are recorded per entry, so hashes an older revision
    # made are made again (see Algorithm.revision).
    revisions = {spec.key: spec.algorithm.revision for spec in options.specs if spec.algorithm.revision != 1}
    absolute = list(dict.fromkeys(os.path.abspath(os.fspath(p)) for p in paths))
    keys = {path: path_text(path) for path in absolute}  # a name that is not UTF-8 is escaped
    total = len(absolute)
    states = index.file_states(list(keys.values()))
    report = AddReport()
    failed: list[tuple[str, str]] = []
    stats: dict[str, os.stat_result] = {}
    to_hash: list[str] = []
    done = 0
    for path in absolute:
        try:
            stat = os.stat(path)
        except OSError as exc:
            failed.append((keys[path], exc.strerror or str(exc)))
            done += 1
            continue
        known = states.get(keys[path])
        if (
            known is not None
            and known.byte_size == stat.st_size
            and known.mtime == stat.st_mtime
            and wanted <= known.algorithms
            and known.mode == mode
            and all(known.revisions.get(key) == revision for key, revision in revisions.items())
            and known.origin == FROM_FILE
            and (not dihedral or known.variants is not False)
            and (not local or known.local is not False)
        ):
            report = report.merge(AddReport(unchanged=1))
            done += 1
            continue
        stats[path] = stat
        to_hash.append(path)
    if progress is not None and done:
        progress(done, total)
    batch: list[IndexItem] = []
    unique, copies = _same_bytes(to_hash, stats)
    hashed = hash_files(
        unique, options.names, workers=workers, mode=mode, cache=cache, dihedral=dihedral, local=local
    )
    for path, outcome in _with_copies(hashed, copies):
        done += 1
        if isinstance(outcome, ImageError):
            failed.append((keys[path], outcome.reason))
        else:
            if on_hashed is not None:
                on_hashed(keys[path], outcome)
            values = {
                spec.key: outcome[name]
                for name, spec in zip(options.names, options.specs, strict=True)
                if isinstance(outcome[name], Hash)
            }
            batch.append(
                IndexItem(
                    key=keys[path],
                    hashes=values,  # type: ignore[arg-type]  # filtered to Hash above
                    sha256=outcome.sha256,  # a copy's bytes are its original's
                    byte_size=stats[path].st_size,
                    width=outcome.width,
                    height=outcome.height,
                    mtime=stats[path].st_mtime,
                    origin=FROM_FILE,
                    local=outcome.local,
                    local_mirrored=outcome.local_mirrored,
                    regions=outcome.regions,
                    metadata={
                        "format": outcome.format,
                        "mode": mode,
                        **({"revisions": revisions} if revisions else {}),
                        **({"content": list(outcome.content)} if outcome.content else {}),
                    },
                )
            )
        if len(batch) >= ADD_BATCH:
            report = report.merge(index.add(batch))
            batch = []
        if progress is not None:
            progress(done, total)
    if batch:
        report = report.merge(index.add(batch))
    return report.merge(AddReport(failed=tuple(failed)))


def _same_bytes(paths: list[str], stats: dict[str, os.stat_result]) -> tuple[list[str], dict[str, list[str]]]:
    """Files to decode, and for each the other paths holding the very same bytes: identical files
    are decoded once and share the hashes. Only files whose size another file shares are read
    for their sha256 here (a cheap pass next to decoding)."""
    sizes = Counter(stats[path].st_size for path in paths)
    first_of: dict[str, str] = {}
    copies: dict[str, list[str]] = {}
    unique: list[str] = []
    for path in paths:
        digest = _sha256(path) if sizes[stats[path].st_size] > 1 else None
        if digest is not None and digest in first_of:
            copies[first_of[digest]].append(path)
            continue
        if digest is not None:
            first_of[digest] = path
        unique.append(path)
        copies[path] = []
    return unique, copies


def _sha256(path: str) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None  # the hashing pass reports why
    return digest.hexdigest()


def _with_copies(
    hashed: Iterable[tuple[str, HashResult | ImageError]], copies: dict[str, list[str]]
) -> Iterator[tuple[str, HashResult | ImageError]]:
    """Each hashed file's outcome, then the same outcome for each file with the same bytes."""
    for path, outcome in hashed:
        yield path, outcome
        for copy in copies.get(path, ()):
            yield copy, outcome
