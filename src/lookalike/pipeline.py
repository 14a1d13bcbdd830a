"""One decode, many hashes: images and files in, `{name: Hash}` out; many files over all cores.

`hash_image` / `hash_file` decode once, convert to grayscale once and resize once per distinct
size, whatever set of algorithms is asked for. `hash_files` streams results as worker processes
finish them, with a bounded number of files in flight, and reports bad files instead of stopping.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from lookalike.algorithms import HashSpec, HashValue, parse_specs
from lookalike.decode import DEFAULT_LIMITS, DecodeLimits, ImageSource, decode, read_file
from lookalike.errors import ImageError, LookalikeError
from lookalike.hash import Hash
from lookalike.prepare import ImageView, Mode
from lookalike.trim import trimmed_view

DEFAULT_HASHES: tuple[str, ...] = ("ahash", "colorhash")
HashNames = str | Sequence[str | HashSpec]


class HashResult(dict[str, HashValue]):
    """`{hash name: Hash}` plus what decoding learnt: path, size, format, sha256 of the bytes."""

    path: str
    width: int
    height: int
    format: str | None
    sha256: str | None
    byte_size: int | None

    def __init__(
        self,
        hashes: dict[str, HashValue],
        path: str,
        width: int,
        height: int,
        image_format: str | None,
        sha256: str | None = None,
        byte_size: int | None = None,
    ) -> None:
        super().__init__(hashes)
        self.path = path
        self.width = width
        self.height = height
        self.format = image_format
        self.sha256 = sha256
        self.byte_size = byte_size

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (
            HashResult,
            (dict(self), self.path, self.width, self.height, self.format, self.sha256, self.byte_size),
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

    @classmethod
    def build(
        cls,
        hashes: HashNames = DEFAULT_HASHES,
        mode: Mode = "fast",
        orientation: bool = True,
        limits: DecodeLimits = DEFAULT_LIMITS,
        dihedral: bool = False,
        trim: bool = False,
    ) -> HashOptions:
        if mode not in ("fast", "exact"):
            raise LookalikeError(f"mode must be 'fast' or 'exact', not {mode!r}")
        items = [h for h in hashes.split(",") if h.strip()] if isinstance(hashes, str) else list(hashes)
        specs = parse_specs(items)
        names = tuple(str(item).strip() if isinstance(item, str) else item.key for item in items)
        by_key = {spec.key: spec for spec in specs}
        ordered = tuple(by_key[parse_specs([name])[0].key] for name in names)
        return cls(ordered, names, mode, orientation, limits, dihedral, trim)

    @property
    def working_side(self) -> int:
        return max(spec.working_side for spec in self.specs)


def compute_hashes(view: ImageView, options: HashOptions) -> dict[str, HashValue]:
    """Every requested hash from one prepared view (shared conversions and resizes).

    With `options.dihedral`, hashes of algorithms that support it carry their 8 rotation/flip
    variants, computed from the same reduced pixels (no second decode).
    """
    results: dict[str, HashValue] = {}
    for name, spec in zip(options.names, options.specs, strict=True):
        value = spec.compute(view)
        if options.dihedral and isinstance(value, Hash) and spec.algorithm.dihedral is not None:
            value = value.with_variants(spec.dihedral(view))
        results[name] = value
    return results


def _hash_decoded_source(
    source: ImageSource, options: HashOptions, name: str | None, sha256: str | None, byte_size: int | None
) -> HashResult:
    draft = options.working_side if options.mode == "fast" else None
    decoded = decode(
        source, orientation=options.orientation, draft_min_side=draft, limits=options.limits, name=name
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
    return HashResult(hashes, decoded.name, decoded.width, decoded.height, decoded.format, sha256, byte_size)


def hash_image(
    image: ImageSource,
    hashes: HashNames = DEFAULT_HASHES,
    *,
    mode: Mode = "fast",
    orientation: bool = True,
    limits: DecodeLimits = DEFAULT_LIMITS,
    dihedral: bool = False,
    trim: bool = False,
) -> HashResult:
    """Hash a Pillow image, bytes, a file object or a path: `{name: Hash}` for each name asked.

    `mode="exact"` is bit-identical to ImageHash 4.3.2 (with `orientation=False`, since ImageHash
    ignores EXIF orientation); `mode="fast"` (default) decodes JPEGs at reduced scale and differs
    from exact by a bit or two at most.
    """
    options = HashOptions.build(hashes, mode, orientation, limits, dihedral, trim)
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
) -> HashResult:
    """Hash one file; the result also carries its sha256, byte size, width, height and format."""
    return _hash_path(os.fspath(path), HashOptions.build(hashes, mode, orientation, limits, dihedral, trim))


def _hash_path(path: str, options: HashOptions) -> HashResult:
    data = read_file(path, options.limits)
    digest = hashlib.sha256(data).hexdigest()
    return _hash_decoded_source(data, options, path, digest, len(data))


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
) -> Iterator[tuple[str, HashResult | ImageError]]:
    """Hash many files on all cores, yielding `(path, result or ImageError)` as each finishes.

    At most a few files per worker are in flight, so memory stays bounded however long `paths`
    is. A worker that crashes (a decoder bug on hostile bytes) is replaced; the file that crashed
    it twice is reported as failed.
    """
    options = HashOptions.build(hashes, mode, orientation, limits, dihedral, trim)
    worker_count = default_workers() if workers is None else max(1, workers)
    path_iter = (os.fspath(p) for p in paths)
    if worker_count == 1:
        for path in path_iter:
            yield path, _hash_path_safely(path, options)
        return
    yield from _hash_in_pool(path_iter, options, worker_count)


def _pool(worker_count: int) -> ProcessPoolExecutor:
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(worker_count, mp_context=multiprocessing.get_context(method))


def _hash_in_pool(
    path_iter: Iterator[str], options: HashOptions, worker_count: int
) -> Iterator[tuple[str, HashResult | ImageError]]:
    max_in_flight = worker_count * 4
    pool = _pool(worker_count)
    in_flight: dict[Future[HashResult | ImageError], str] = {}
    crashes: dict[str, int] = {}
    retry: list[str] = []
    exhausted = False
    try:
        while True:
            while len(in_flight) < max_in_flight and (retry or not exhausted):
                if retry:
                    path = retry.pop()
                else:
                    next_path = next(path_iter, None)
                    if next_path is None:
                        exhausted = True
                        break
                    path = next_path
                in_flight[pool.submit(_hash_path_safely, path, options)] = path
            if not in_flight:
                return
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                path = in_flight.pop(future)
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    broken = True
                    crashes[path] = crashes.get(path, 0) + 1
                    if crashes[path] >= 2:
                        yield path, ImageError(path, "the decoder crashed on this file")
                    else:
                        retry.append(path)
                    continue
                except Exception as exc:  # e.g. a result that cannot be pickled back
                    outcome = ImageError(path, f"worker failed: {type(exc).__name__}: {exc}")
                yield path, outcome
            if broken:
                # Every file still in flight died with the pool; run them again in a fresh one.
                retry.extend(in_flight.values())
                in_flight.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = _pool(worker_count)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
