"""ReadAhead: a cold snapshot's pages that a gather needs are asked for before it, and only those;
a warm or in-memory array is left alone; cold snapshots answer as they did in memory."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from lookalike.candidates import tables as tables_module
from lookalike.candidates.keys import KeyLayout
from lookalike.candidates.read_ahead import WARM_AFTER, ReadAhead
from lookalike.candidates.tables import KeyTables, WordStore

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mincore and madvise")


def _evict(folder: Path) -> None:
    """Drop the files' pages from the page cache (they are clean: written and synced)."""
    for path in folder.rglob("*.npy"):
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
            os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def _mapped(path: Path) -> npt.NDArray[np.uint64]:
    array: npt.NDArray[np.uint64] = tables_module._random_access(np.load(path, mmap_mode="r"))
    return array


def _cold(ahead: ReadAhead, pages: npt.NDArray[np.int64]) -> None:
    if all(ahead.resident(pages)):
        pytest.skip("this file system keeps the pages in memory (tmpfs?)")


def test_the_pages_a_gather_needs_are_read_before_it_and_no_others(tmp_path: Path) -> None:
    np.save(tmp_path / "words.npy", np.arange(4 * 2**20, dtype=np.uint64).reshape(-1, 4))  # 32 MB
    _evict(tmp_path)
    words = _mapped(tmp_path / "words.npy")
    ahead = ReadAhead(words)
    assert not ahead.warm
    rows = np.random.default_rng(3).choice(len(words) // 2, size=300, replace=False)  # first half
    needed = ahead.pages(rows)
    far = ahead.pages(np.array([len(words) - 1, 3 * len(words) // 4]))  # the second half's pages
    _cold(ahead, np.concatenate([needed, far]))
    assert not any(ahead.resident(needed)) and not any(ahead.resident(far))
    ahead.rows(rows)  # queued, not waited for: the gather that follows waits where it must
    deadline = time.monotonic() + 10
    while not all(ahead.resident(needed)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert all(ahead.resident(needed))
    assert not any(ahead.resident(far))
    assert len(needed) <= 2 * len(rows) and needed[-1] < far[0]


def test_an_array_in_memory_is_left_alone_and_a_mapped_one_turns_warm(tmp_path: Path) -> None:
    assert ReadAhead(np.zeros((1000, 4), dtype=np.uint64)).warm
    np.save(tmp_path / "words.npy", np.ones((100_000, 4), dtype=np.uint64))
    words = _mapped(tmp_path / "words.npy")
    ahead = ReadAhead(words)
    rows = np.arange(0, len(words), 97)
    assert int(words[rows].sum()) == 4 * len(rows)  # now in memory
    for _ in range(WARM_AFTER - 1):
        ahead.rows(rows)
        assert not ahead.warm
    ahead.rows(rows)
    assert ahead.warm


def test_cold_snapshots_answer_as_the_structures_they_were_saved_from(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    ids = np.sort(rng.choice(400_000, size=300_000, replace=False)).astype(np.int64)
    words = rng.integers(0, 2**63, size=(len(ids), 4), dtype=np.uint64)
    store = WordStore(256)
    store.upsert(ids, words, rng.random(len(ids)).astype(np.float32), rng.random(len(ids)) < 0.1)
    store.save(tmp_path / "words", {"rev": 1})
    layout = KeyLayout(256, ((0, 2, 4), (2, 4, 6), (1, 3, 5)))
    tables = KeyTables(layout)
    tables.add(ids, words)
    tables.save(tmp_path / "keys", {"rev": 1})
    _evict(tmp_path)
    opened_words = WordStore.load(tmp_path / "words", 256)
    opened_keys = KeyTables.load(tmp_path / "keys", layout)
    assert opened_words is not None and opened_keys is not None
    stored_words = opened_words[0]._ahead["words"]
    wanted = np.concatenate([rng.choice(ids, 2000), rng.integers(0, 400_000, 500)])
    _cold(stored_words, stored_words.pages(np.searchsorted(ids, wanted).clip(0, len(ids) - 1)))
    for mine, theirs in zip(opened_words[0].lookup(wanted), store.lookup(wanted), strict=True):
        assert np.array_equal(mine, theirs, equal_nan=mine.dtype.kind == "f")
    query_keys = layout.keys(words[rng.choice(len(ids), 200)])
    for mine, theirs in zip(opened_keys[0].probe(query_keys), tables.probe(query_keys), strict=True):
        assert np.array_equal(mine, theirs)
