"""Reading a cold snapshot's scattered pages side by side instead of one fault at a time.

A query gathers a few thousand rows scattered over memory-mapped snapshot arrays (the words of
its candidates, their key buckets). Right after an index is opened from a cold disk every such
row is a page fault, and faults are served one after another: about 75 microseconds each on this
machine's disk, seconds for the first query at ten million images. Asking the kernel for all of
a gather's pages first (`madvise(MADV_WILLNEED)`, which queues their reads at once) costs about
one microsecond a page and lets the disk read them in parallel: about 5x less time for 7,600
cold pages. Once the pages a gather needs are found in memory a few times running, the array
is taken to be warm and no more advice is given (a warm query pays nothing).
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import sys
from typing import Any

import numpy as np
import numpy.typing as npt

PAGE = mmap.PAGESIZE
SAMPLED_PAGES = 16  # pages of a gather whose residency is checked before advising
WARM_AFTER = 4  # gathers in a row whose sampled pages were all in memory: the array is warm


def _libc() -> Any | None:
    """The C library's `mincore` and `madvise`, where the platform has both (Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        mincore, madvise = libc.mincore, libc.madvise
    except (OSError, AttributeError):
        return None
    for function in (mincore, madvise):
        function.restype = ctypes.c_int
    mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return libc


_LIBC = _libc()
_WILLNEED = getattr(mmap, "MADV_WILLNEED", 3)


def is_memory_mapped(array: npt.NDArray[Any]) -> bool:
    """Whether the array's memory is a file mapping (a snapshot), not the heap."""
    base: Any = array
    while base is not None:
        if isinstance(base, mmap.mmap):
            return True
        base = getattr(base, "_mmap", None) or getattr(base, "base", None)
    return False


class ReadAhead:
    """Advice for gathers of rows from one memory-mapped array, until it is warm."""

    def __init__(self, array: npt.NDArray[Any], span: int = 1) -> None:
        """`span`: the rows a gather reads from each index on (2 for a directory's bucket starts,
        read with the next one)."""
        self.address = int(array.ctypes.data)
        self.row_bytes = int(array.strides[0]) if array.ndim else int(array.itemsize)
        self.read_bytes = span * self.row_bytes  # from each row's start
        self.size = int(array.nbytes)
        self.warm = _LIBC is None or self.size == 0 or not is_memory_mapped(array)
        self._clean = 0  # gathers in a row whose sampled pages were all in memory
        self._residency = np.zeros(1, dtype=np.uint8)

    def pages(self, rows: npt.NDArray[np.integer[Any]]) -> npt.NDArray[np.int64]:
        """The pages (addresses // PAGE) that gathering `array[rows]` touches, sorted."""
        starts = self.address + np.asarray(rows, dtype=np.int64) * self.row_bytes
        return np.unique(np.concatenate([starts // PAGE, (starts + self.read_bytes - 1) // PAGE]))

    def rows(self, rows: npt.NDArray[np.integer[Any]]) -> None:
        """Before gathering `array[rows]`: queue the reads of every page it touches, unless the
        array is warm or a sample of those pages is all in memory."""
        if self.warm or not len(rows):
            return
        pages = self.pages(rows)
        sample = pages[np.linspace(0, len(pages) - 1, min(SAMPLED_PAGES, len(pages))).astype(np.intp)]
        if all(self.resident(sample)):
            self._clean += 1
            self.warm = self._clean >= WARM_AFTER
            return
        self._clean = 0
        self._advise(pages)

    def resident(self, pages: npt.NDArray[np.int64]) -> list[bool]:
        """Whether each page is in memory (True where the kernel cannot say: no advice then)."""
        if _LIBC is None:
            return [True] * len(pages)
        answers = []
        for page in pages.tolist():
            failed = _LIBC.mincore(page * PAGE, PAGE, self._residency.ctypes.data) != 0
            answers.append(failed or bool(self._residency[0] & 1))
        return answers

    def _advise(self, pages: npt.NDArray[np.int64]) -> None:
        """madvise(WILLNEED) over each run of consecutive pages."""
        assert _LIBC is not None
        breaks = np.flatnonzero(np.diff(pages) != 1) + 1
        firsts = np.concatenate([pages[:1], pages[breaks]])
        lasts = np.concatenate([pages[breaks - 1], pages[-1:]])
        with contextlib.suppress(OSError):
            for first, last in zip(firsts.tolist(), lasts.tolist(), strict=True):
                _LIBC.madvise(first * PAGE, (last - first + 1) * PAGE, _WILLNEED)
