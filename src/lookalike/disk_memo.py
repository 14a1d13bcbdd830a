"""NumPy arrays computed once per machine and kept in the cache folder, checked on every load.

A file is named after what it holds and its sha256 (`NAME-<sha256 prefix>.npy`); a file whose
content does not match its name is removed and the array built again. When the folder cannot be
written the array is simply built in memory: a missing cache never stops anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lookalike.cache_dir import default_cache_dir

DIGEST_CHARS = 16


def _digest(array: npt.NDArray[np.generic]) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()[:DIGEST_CHARS]


def stored_array(name: str, folder: Path | None = None) -> npt.NDArray[np.generic] | None:
    """The array kept under `name`, if a file for it exists and its content matches its digest."""
    folder = folder if folder is not None else default_cache_dir()
    try:
        candidates = sorted(folder.glob(f"{name}-*.npy"))
    except OSError:
        return None
    for path in candidates:
        array: npt.NDArray[np.generic] | None
        try:
            array = np.asarray(np.load(path, allow_pickle=False))
        except (OSError, ValueError):
            array = None
        if array is not None and path.stem == f"{name}-{_digest(array)}":
            return array
        with contextlib.suppress(OSError):
            path.unlink()
    return None


def cached_array(
    name: str, build: Callable[[], npt.NDArray[np.generic]], folder: Path | None = None
) -> npt.NDArray[np.generic]:
    """`build()`'s array: loaded from the cache folder if kept there, else built and kept."""
    folder = folder if folder is not None else default_cache_dir()
    array = stored_array(name, folder)
    if array is not None:
        return array
    array = build()
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(prefix=f".{name}-", suffix=".npy", dir=folder)
        try:
            with os.fdopen(handle, "wb") as file:
                np.save(file, array, allow_pickle=False)
            os.replace(partial, folder / f"{name}-{_digest(array)}.npy")
        finally:
            with contextlib.suppress(OSError):
                os.unlink(partial)
    return array
