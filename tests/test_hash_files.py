"""hash_files: many files over worker processes, streamed, bounded, robust to bad files and dead workers."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lookalike
from conftest import COMMITTED_PHOTOS
from lookalike.errors import (
    CorruptImageError,
    FileMissingError,
    ImageError,
    NotAFileError,
    UnsupportedImageError,
)
from lookalike.pipeline import HashResult, default_workers
from tests_support import process_stat

HASHES = ["ahash", "dhash", "colorhash"]


def test_default_is_one_worker_per_usable_core() -> None:
    assert default_workers() == len(os.sched_getaffinity(0))


def test_two_workers_give_the_same_results_as_hash_file_each_file_once() -> None:
    photos = [str(p) for p in COMMITTED_PHOTOS[:10]]
    results = list(lookalike.hash_files(photos, HASHES, workers=2))
    assert sorted(path for path, _ in results) == sorted(photos)
    for path, result in results:
        assert isinstance(result, HashResult)
        expected = lookalike.hash_file(path, HASHES)
        assert dict(result) == dict(expected)
        assert result.sha256 == expected.sha256 and result.cpu_seconds is not None


def test_the_work_runs_in_as_many_processes_as_workers() -> None:
    photos = [str(p) for p in COMMITTED_PHOTOS] * 2
    stream = lookalike.hash_files(photos, HASHES, workers=2)
    next(stream)
    workers = [p for p in multiprocessing.active_children() if p.pid != os.getpid()]
    assert len(workers) >= 2
    assert sum(1 for _ in stream) == len(photos) - 1


def test_paths_are_read_lazily_with_a_bounded_number_in_flight() -> None:
    pulled = 0

    def paths() -> Iterator[str]:
        nonlocal pulled
        for index in range(200):
            pulled += 1
            yield str(COMMITTED_PHOTOS[index % len(COMMITTED_PHOTOS)])

    stream = lookalike.hash_files(paths(), ["ahash"], workers=2)
    next(stream)
    assert pulled <= 2 * 4 + 1  # at most 4 files per worker were handed out before a result
    assert sum(1 for _ in stream) == 199 and pulled == 200


def _bad_files(folder: Path) -> dict[str, type[ImageError]]:
    truncated = folder / "truncated.jpg"
    truncated.write_bytes(COMMITTED_PHOTOS[1].read_bytes()[:600])
    text = folder / "notes.jpg"
    text.write_text("not an image")
    empty = folder / "empty.png"
    empty.write_bytes(b"")
    sub = folder / "a folder.jpg"
    sub.mkdir()
    return {
        str(truncated): CorruptImageError,
        str(text): UnsupportedImageError,
        str(empty): UnsupportedImageError,
        str(sub): NotAFileError,
        str(folder / "gone.jpg"): FileMissingError,
    }


@pytest.mark.parametrize("workers", [1, 2])
def test_unreadable_files_are_reported_with_path_and_reason_and_the_rest_hashed(
    tmp_path: Path, workers: int
) -> None:
    bad = _bad_files(tmp_path)
    good = [str(p) for p in COMMITTED_PHOTOS[:4]]
    outcomes = dict(lookalike.hash_files([*good[:2], *bad, *good[2:]], HASHES, workers=workers))
    assert len(outcomes) == len(good) + len(bad)
    for path in good:
        assert isinstance(outcomes[path], HashResult)
    for path, error_type in bad.items():
        error = outcomes[path]
        assert isinstance(error, error_type), (path, error)
        assert error.path == path and error.reason


def _kill_workers(
    times: int, stop: threading.Event, killed: set[int], busy_seconds: float = 0.1
) -> threading.Thread:
    """A thread that SIGKILLs a worker once it has worked `busy_seconds` of CPU (so it dies in the
    middle of the slow image, not while idle), `times` times; the pids killed go into `killed`."""

    earlier = {child.pid for child in multiprocessing.active_children()}  # other tests' leftovers

    def run() -> None:
        while len(killed) < times and not stop.is_set():
            for child in multiprocessing.active_children():
                pid = child.pid
                stat = process_stat(pid) if pid and pid not in killed | earlier else None
                if pid and stat is not None and stat.cpu_seconds >= busy_seconds:
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
                    break
            time.sleep(0.005)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _slow_image(folder: Path) -> Path:
    """A noisy 3000x2250 PNG: exact-mode colorhash and wHash take a worker half a second of CPU."""
    rng = np.random.default_rng(7)
    path = folder / "slow.png"
    Image.fromarray(rng.integers(0, 256, (2250, 3000, 3), dtype=np.uint8)).save(path, compress_level=1)
    return path


@pytest.mark.slow
@pytest.mark.timeout(120)  # a hang here is the bug this guards against
def test_a_killed_worker_loses_no_file_and_blames_none(tmp_path: Path) -> None:
    slow = str(_slow_image(tmp_path))
    photos = [slow, *(str(p) for p in COMMITTED_PHOTOS[:12])]
    stop = threading.Event()
    killed: set[int] = set()
    killer = _kill_workers(1, stop, killed)
    try:
        outcomes = list(lookalike.hash_files(photos, ["whash", "colorhash"], workers=2, mode="exact"))
    finally:
        stop.set()
        killer.join()
    assert len(killed) == 1
    assert sorted(path for path, _ in outcomes) == sorted(photos)
    assert all(isinstance(result, HashResult) for _, result in outcomes), outcomes


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_file_that_kills_its_worker_even_alone_is_reported_as_failed(tmp_path: Path) -> None:
    slow = str(_slow_image(tmp_path))
    stop = threading.Event()
    killed: set[int] = set()
    killer = _kill_workers(2, stop, killed)  # kill its worker, then the worker it is retried on
    try:
        outcomes = list(lookalike.hash_files([slow], ["whash", "colorhash"], workers=2, mode="exact"))
    finally:
        stop.set()
        killer.join()
    assert len(killed) == 2
    [(path, error)] = outcomes
    assert path == slow
    assert isinstance(error, ImageError) and "crashed" in error.reason
