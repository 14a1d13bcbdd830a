"""One decode, many hashes: images and files in, `{name: Hash}` out; many files over all cores.

`hash_image` / `hash_file` decode once, convert to grayscale once and resize once per distinct
size, whatever set of algorithms is asked for. `hash_files` streams results as worker processes
finish them, with a bounded number of files in flight, and reports bad files instead of stopping;
given a cache (`lookalike.hash_cache`), unchanged files are answered without decoding.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
from PIL import _imaging as pillow_core

from lookalike.algorithms import HashSpec, HashValue, parse_specs
from lookalike.decode import DEFAULT_LIMITS, DecodeLimits, ImageSource, decode, read_file
from lookalike.errors import ImageError, LookalikeError
from lookalike.hash import Hash
from lookalike.prepare import ImageView, Mode
from lookalike.regions import REGION_BOXES, RelativeBox, relative_boxes
from lookalike.trim import TRIM_BOX, trimmed_view
from lookalike.workers import Failed, Finished, WorkerPool, can_start_workers

if TYPE_CHECKING:
    from lookalike.hash_cache import HashCache
    from lookalike.local.features import LocalFeatures, LocalWanted

# Local features read the image at this shorter side (the keypoint detector then brings it to
# its own working size): a 12-megapixel JPEG still decodes at 1/8 scale.
LOCAL_WORKING_SIDE = 320

DEFAULT_HASHES: tuple[str, ...] = ("ahash", "colorhash")
HashNames = str | Sequence[str | HashSpec]


class HashResult(dict[str, HashValue]):
    """`{hash name: Hash}` plus what decoding learnt: path, size, format, sha256 of the bytes.

    `cpu_seconds` is the CPU time spent reading, decoding and hashing the file (in the worker
    that did it); `cached` is True when the result came from a cache without decoding.
    """

    path: str
    width: int
    height: int
    format: str | None
    sha256: str | None
    byte_size: int | None
    cpu_seconds: float | None
    cached: bool
    content: tuple[int, int] | None  # width x height left after trimming uniform borders, if known
    local: LocalFeatures | None  # keypoints (`local=True`), and those of the mirrored image
    local_mirrored: LocalFeatures | None
    # the pictures inside the image that `phash_eq_regions` hashed, in the order of its variants
    # after the first (relative boxes: lookalike.regions), so a match through one says where
    regions: tuple[RelativeBox, ...]

    def __init__(
        self,
        hashes: dict[str, HashValue],
        path: str,
        width: int,
        height: int,
        image_format: str | None,
        sha256: str | None = None,
        byte_size: int | None = None,
        cpu_seconds: float | None = None,
        cached: bool = False,
        content: tuple[int, int] | None = None,
        local: LocalFeatures | None = None,
        local_mirrored: LocalFeatures | None = None,
        regions: tuple[RelativeBox, ...] = (),
    ) -> None:
        super().__init__(hashes)
        self.path = path
        self.width = width
        self.height = height
        self.format = image_format
        self.sha256 = sha256
        self.byte_size = byte_size
        self.cpu_seconds = cpu_seconds
        self.cached = cached
        self.content = content
        self.local = local
        self.local_mirrored = local_mirrored
        self.regions = regions

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (
            HashResult,
            (
                dict(self),
                self.path,
                self.width,
                self.height,
                self.format,
                self.sha256,
                self.byte_size,
                self.cpu_seconds,
                self.cached,
                self.content,
                self.local,
                self.local_mirrored,
                self.regions,
            ),
        )


@dataclass(frozen=True)
class HashOptions:
    """How to hash: which algorithms, which mode, EXIF orientation, decoding limits."""

    specs: tuple[HashSpec, ...]
    names: tuple[str, ...]  # the names as the caller wrote them, keys of the result
    mode: Mode = "fast"
    orientation: bool = True
    limits: DecodeLimits = DEFAULT_LIMITS
    dihedral: bool = False
    trim: bool = False  # hash the image without its uniform borders (lookalike.trim)
    # local features too (lookalike.local; mirrored ones with `dihedral`); "query": with the
    # finer set a search's own picture carries for its fallback verification
    local: LocalWanted = False

    @classmethod
    def build(
        cls,
        hashes: HashNames = DEFAULT_HASHES,
        mode: Mode = "fast",
        orientation: bool = True,
        limits: DecodeLimits = DEFAULT_LIMITS,
        dihedral: bool = False,
        trim: bool = False,
        local: LocalWanted = False,
    ) -> HashOptions:
        if mode not in ("fast", "exact"):
            raise LookalikeError(f"mode must be 'fast' or 'exact', not {mode!r}")
        items = [h for h in hashes.split(",") if h.strip()] if isinstance(hashes, str) else list(hashes)
        specs = parse_specs(items)
        names = tuple(str(item).strip() if isinstance(item, str) else item.key for item in items)
        by_key = {spec.key: spec for spec in specs}
        ordered = tuple(by_key[parse_specs([name])[0].key] for name in names)
        return cls(ordered, names, mode, orientation, limits, dihedral, trim, local)

    @property
    def working_side(self) -> int:
        side = max(spec.working_side for spec in self.specs)
        return max(side, LOCAL_WORKING_SIDE) if self.local else side


def compute_hashes(view: ImageView, options: HashOptions) -> dict[str, HashValue]:
    """Every requested hash from one prepared view (shared conversions and resizes).

    In fast mode each algorithm reads the decoded image box-reduced to its own working side.
    With `options.dihedral`, hashes of algorithms that support it carry their 8 rotation/flip
    variants, computed from the same reduced pixels (no second decode).
    """
    results: dict[str, HashValue] = {}
    for name, spec in zip(options.names, options.specs, strict=True):
        own_view = view.for_side(spec.working_side)  # fast mode: no more pixels than it needs
        value = spec.compute(own_view)
        if options.dihedral and isinstance(value, Hash) and spec.algorithm.dihedral is not None:
            value = value.with_variants(spec.dihedral(own_view))
        results[name] = value
    return results


def _hash_decoded_source(
    source: ImageSource, options: HashOptions, name: str | None, sha256: str | None, byte_size: int | None
) -> HashResult:
    draft = options.working_side if options.mode == "fast" else None
    decoded = decode(
        source,
        orientation=options.orientation,
        draft_min_side=draft,
        limits=options.limits,
        name=name,
        into_scratch=options.mode == "exact",  # the image lives only until hashed, below
    )
    view = ImageView(decoded, options.mode, options.working_side)
    if options.trim:
        view = trimmed_view(view)
    try:
        hashes = compute_hashes(view, options)
    except LookalikeError:
        raise
    except Exception as exc:  # a hash failing on odd pixels must still name the file
        raise ImageError(decoded.name, f"cannot hash: {type(exc).__name__}: {exc}") from exc
    content = _content_size(view, decoded.width, decoded.height)
    local, local_mirrored = _local_features(view, options, decoded.name) if options.local else (None, None)
    return HashResult(
        hashes,
        decoded.name,
        decoded.width,
        decoded.height,
        decoded.format,
        sha256,
        byte_size,
        content=content,
        local=local,
        local_mirrored=local_mirrored,
        regions=_found_regions(view, options),
    )


def _found_regions(view: ImageView, options: HashOptions) -> tuple[RelativeBox, ...]:
    """The pictures a hash found inside the image (`phash_eq_regions`), as relative boxes; none
    when no requested hash looked for them (no extra work), or when the image was trimmed first
    (the boxes would be shares of the trimmed picture)."""
    if options.trim:
        return ()
    for spec in options.specs:
        own_view = view.for_side(spec.working_side)
        boxes = own_view.memoised(REGION_BOXES)
        if isinstance(boxes, list) and boxes:
            return relative_boxes(boxes, own_view.rgb_image().size)
    return ()


def _local_features(
    view: ImageView, options: HashOptions, name: str
) -> tuple[LocalFeatures | None, LocalFeatures | None]:
    """Keypoints from the same decode (the view reduced to the local features' working side);
    with `dihedral`, those of the mirrored image too (ORB descriptors are not mirror-invariant)."""
    from lookalike.local.features import extract, mirrored

    try:
        gray = np.asarray(view.for_side(LOCAL_WORKING_SIDE).gray_image())
        finer = options.local == "query"
        features = extract(gray, finer=finer)
        return features, extract(mirrored(gray), finer=finer) if options.dihedral else None
    except LookalikeError:
        raise
    except Exception as exc:
        raise ImageError(name, f"cannot compute local features: {type(exc).__name__}: {exc}") from exc


def _content_size(view: ImageView, width: int, height: int) -> tuple[int, int] | None:
    """The full-resolution size of the image without its uniform borders, when a hash already
    trimmed them (no extra work otherwise): a letterboxed copy then does not outrank its original
    as the best copy of a duplicate group just because its bars add pixels."""
    box = view.memoised(TRIM_BOX)
    if not isinstance(box, tuple):
        return None
    left, top, right, bottom = box
    gray_width, gray_height = view.gray_image().size
    return (round(width * (right - left) / gray_width), round(height * (bottom - top) / gray_height))


def local_features_of_file(
    path: str, limits: DecodeLimits = DEFAULT_LIMITS, *, mirrored: bool = False
) -> tuple[LocalFeatures | None, LocalFeatures | None]:
    """Every keypoint `index add` finds in the file at `path` (an index keeps a compact share),
    from the same fast decode, and with `mirrored` those of its mirror image; (None, None) if the
    file cannot be read or decoded, or local features are not installed."""
    from lookalike.local.features import local_features_available

    if not local_features_available():
        return None, None
    options = HashOptions(specs=(), names=(), limits=limits, local=True, dihedral=mirrored)  # no hash
    try:
        decoded = decode(path, draft_min_side=LOCAL_WORKING_SIDE, limits=limits)
        return _local_features(ImageView(decoded, "fast", LOCAL_WORKING_SIDE), options, decoded.name)
    except Exception:  # any failure leaves the caller with what it had
        return None, None


def hash_image(
    image: ImageSource,
    hashes: HashNames = DEFAULT_HASHES,
    *,
    mode: Mode = "fast",
    orientation: bool = True,
    limits: DecodeLimits = DEFAULT_LIMITS,
    dihedral: bool = False,
    trim: bool = False,
    local: LocalWanted = False,
) -> HashResult:
    """Hash a Pillow image, bytes, a file object or a path: `{name: Hash}` for each name asked.

    `mode="exact"` is bit-identical to ImageHash 4.3.2 (with `orientation=False`, since ImageHash
    ignores EXIF orientation); `mode="fast"` (default) decodes JPEGs at reduced scale and differs
    from exact by a bit or two at most.
    """
    options = HashOptions.build(hashes, mode, orientation, limits, dihedral, trim, local)
    return _hash_decoded_source(image, options, None, None, None)


def hash_file(
    path: str | os.PathLike[str],
    hashes: HashNames = DEFAULT_HASHES,
    *,
    mode: Mode = "fast",
    orientation: bool = True,
    limits: DecodeLimits = DEFAULT_LIMITS,
    dihedral: bool = False,
    trim: bool = False,
    local: LocalWanted = False,
) -> HashResult:
    """Hash one file; the result also carries its sha256, byte size, width, height and format;
    with `local`, its local features (`result.local`, and `result.local_mirrored` with
    `dihedral`): `local=True` for what an index stores, `local="query"` for a picture to search
    with (the same keypoints and a finer set that verifies small insets)."""
    options = HashOptions.build(hashes, mode, orientation, limits, dihedral, trim, local)
    return _hash_path(os.fspath(path), options)


def _hash_path(path: str, options: HashOptions) -> HashResult:
    started = time.process_time()
    data = read_file(path, options.limits)
    digest = hashlib.sha256(data).hexdigest()
    result = _hash_decoded_source(data, options, path, digest, len(data))
    result.cpu_seconds = time.process_time() - started
    return result


def _hash_path_safely(path: str, options: HashOptions) -> HashResult | ImageError:
    """Worker entry point: never raises, so one bad file cannot stop a batch."""
    try:
        return _hash_path(path, options)
    except ImageError as exc:
        return exc
    except LookalikeError as exc:
        return ImageError(path, str(exc))
    except MemoryError:
        return ImageError(path, "out of memory while hashing")
    except Exception as exc:
        return ImageError(path, f"unexpected {type(exc).__name__}: {exc}")


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def hash_files(
    paths: Iterable[str | os.PathLike[str]],
    hashes: HashNames = DEFAULT_HASHES,
    *,
    workers: int | None = None,
    mode: Mode = "fast",
    orientation: bool = True,
    limits: DecodeLimits = DEFAULT_LIMITS,
    dihedral: bool = False,
    trim: bool = False,
    cache: HashCache | ResultStore | None = None,
    local: LocalWanted = False,
) -> Iterator[tuple[str, HashResult | ImageError]]:
    """Hash many files on all cores, yielding `(path, result or ImageError)` as each finishes.

    Paths are read lazily and at most a few files per worker are in flight, so memory stays
    bounded however long `paths` is. A worker that dies (a decoder crash on hostile bytes, the
    OOM killer) is replaced and the files it may have taken down are run again one by one; a
    file that kills a worker on its own is reported as failed. With `cache`, a file whose path,
    size and mtime are unchanged since it was hashed with the same settings is answered from
    the cache (`result.cached` is True) without being read. `cache` may also be any
    `ResultStore` (an index keeping results its own way). Workers never re-run the caller's
    `__main__`, so scripts need no `if __name__ == "__main__":` guard; a process that may not
    start workers (itself a daemonic worker) hashes in-process.
    """
    options = HashOptions.build(hashes, mode, orientation, limits, dihedral, trim, local)
    worker_count = default_workers() if workers is None else max(1, workers)
    path_iter = (os.fspath(p) for p in paths)
    store: ResultStore
    if cache is None:
        store = _NoStore()
    elif isinstance(cache, ResultStore):
        store = cache
    else:
        from lookalike.hash_cache import CacheSession

        store = CacheSession(cache, options)
    try:
        if worker_count == 1 or not can_start_workers():
            yield from _hash_in_process(path_iter, options, store)
        else:
            yield from _hash_in_pool(path_iter, options, worker_count, store)
    finally:
        store.close()


@runtime_checkable
class ResultStore(Protocol):
    """Where hash_files finds results it need not compute, and keeps the ones it did: `lookup`
    before a file is read (None: hash it), `store` after, `forget` when it failed, `close` at the
    end of the run."""

    def lookup(self, path: str) -> HashResult | None: ...
    def store(self, path: str, result: HashResult) -> None: ...
    def forget(self, path: str) -> None: ...
    def close(self) -> None: ...


class _NoStore:
    def lookup(self, path: str) -> HashResult | None:
        return None

    def store(self, path: str, result: HashResult) -> None:
        pass

    def forget(self, path: str) -> None:
        pass

    def close(self) -> None:
        pass


def _finished(path: str, outcome: HashResult | ImageError, store: ResultStore) -> HashResult | ImageError:
    if isinstance(outcome, HashResult):
        store.store(path, outcome)
    else:
        store.forget(path)
    return outcome


def _hash_in_process(
    path_iter: Iterator[str], options: HashOptions, store: ResultStore
) -> Iterator[tuple[str, HashResult | ImageError]]:
    with pillow_block_cache():
        for path in path_iter:
            known = store.lookup(path)
            if known is not None:
                yield path, known
                continue
            yield path, _finished(path, _hash_path_safely(path, options), store)


# Pillow frees every decoded image's memory back to the OS by default, so each 12 MP photo costs
# ~60 MB of fresh page faults; keeping a few freed blocks for reuse makes full-scale decoding up to
# ~2x faster here. Set while hash_files runs (and in its workers), restored after.
PILLOW_BLOCKS_KEPT = 16


@contextmanager
def pillow_block_cache(blocks: int = PILLOW_BLOCKS_KEPT) -> Iterator[None]:
    previous = pillow_core.get_blocks_max()
    pillow_core.set_blocks_max(max(previous, blocks))
    try:
        yield
    finally:
        pillow_core.set_blocks_max(previous)


def _worker_init() -> None:
    pillow_core.set_blocks_max(PILLOW_BLOCKS_KEPT)


def _worker_context() -> multiprocessing.context.BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        forkserver = multiprocessing.get_context("forkserver")
        # Workers fork from a server that has imported lookalike (NumPy, SciPy, Pillow) once.
        forkserver.set_forkserver_preload(["lookalike.pipeline"])
        return forkserver
    return multiprocessing.get_context("spawn")  # pragma: no cover - not Linux


def _hash_task(task: tuple[str, HashOptions]) -> HashResult | ImageError:
    return _hash_path_safely(*task)


CRASHES_TO_BLAME = 2  # a file whose worker dies under it twice crashed it; once may be the OOM killer
MAX_CULPRITS_IN_A_ROW = 3  # three files in a row that each kill two workers: the workers are broken


def _hash_in_pool(
    path_iter: Iterator[str], options: HashOptions, worker_count: int, store: ResultStore
) -> Iterator[tuple[str, HashResult | ImageError]]:
    """Keep two files per worker in flight; a file whose worker dies under it is run again.

    Each worker has its own pipe (lookalike.workers), so a death names the file it was hashing;
    the files queued behind it are handed to other workers. A file that takes down a second
    worker is reported as a crash; the others are hashed normally.
    """
    deaths: Counter[str] = Counter()
    again: deque[str] = deque()  # files handed back by a dead worker, to be submitted first
    culprits_in_a_row = 0
    exhausted = False
    pool: WorkerPool[tuple[str, HashOptions], HashResult | ImageError]
    with WorkerPool(worker_count, _hash_task, initializer=_worker_init, context=_worker_context()) as pool:
        while True:
            while pool.free_slots and (again or not exhausted):
                if again:
                    pool.submit((again.popleft(), options))
                    continue
                next_path = next(path_iter, None)
                if next_path is None:
                    exhausted = True
                    break
                known = store.lookup(next_path)
                if known is not None:
                    yield next_path, known  # the workers keep working meanwhile
                    continue
                pool.submit((next_path, options))
            if not pool.busy:
                return
            for event in pool.events():
                path = event.task[0]
                if isinstance(event, Finished):
                    culprits_in_a_row = 0
                    yield path, _finished(path, event.result, store)
                elif isinstance(event, Failed):  # e.g. a result that could not be sent back
                    yield path, _finished(path, ImageError(path, f"worker failed: {event.reason}"), store)
                elif not event.running:
                    again.append(path)
                else:
                    deaths[path] += 1
                    if deaths[path] < CRASHES_TO_BLAME:
                        again.appendleft(path)
                        continue
                    culprits_in_a_row += 1
                    if culprits_in_a_row >= MAX_CULPRITS_IN_A_ROW:
                        raise LookalikeError(
                            "worker processes keep dying, whatever file they are given "
                            "(out of memory, or a broken installation? workers=1 hashes in-process)"
                        )
                    crashed = ImageError(path, "the decoder crashed on this file (worker process died)")
                    yield path, _finished(path, crashed, store)
