"""WorkerPool: one pipe per worker, so a death names its task; dead workers are replaced."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from lookalike.pipeline import _worker_context
from lookalike.workers import Failed, Finished, Lost, WorkerPool, WorkersFailToStart
from tests_support import all_process_stats

# The context hash_files uses: the forkserver is one per program, started with lookalike imported.
CONTEXT = _worker_context()


def _run(task: tuple[str, float]) -> Any:
    """A task is (what to do, seconds to sleep first)."""
    action, seconds = task
    time.sleep(seconds)
    if action == "die":
        os._exit(3)
    if action == "raise":
        raise ValueError("no such thing")
    if action == "unpicklable":
        return (x for x in range(3))
    return os.getpid()


def _die_at_start() -> None:
    os._exit(4)


def _drain(pool: WorkerPool[tuple[str, float], Any]) -> list[Any]:
    events: list[Any] = []
    while pool.busy:
        events.extend(pool.events())
    return events


@pytest.fixture
def pool() -> Iterator[WorkerPool[tuple[str, float], Any]]:
    with WorkerPool(2, _run, context=CONTEXT) as workers:
        yield workers


def test_every_task_finishes_and_the_work_is_spread_over_the_workers(
    pool: WorkerPool[tuple[str, float], Any],
) -> None:
    assert pool.free_slots == 4  # two workers, two tasks each
    for _ in range(4):
        pool.submit(("pid", 0.2))
    assert pool.free_slots == 0
    with pytest.raises(RuntimeError):
        pool.submit(("pid", 0.0))
    events = _drain(pool)
    assert all(isinstance(event, Finished) for event in events) and len(events) == 4
    assert len({event.result for event in events}) == 2


def test_workers_start_only_when_work_needs_them() -> None:
    before = set(multiprocessing.active_children())
    with WorkerPool(8, _run, context=CONTEXT) as pool:
        assert set(multiprocessing.active_children()) == before and pool.free_slots == 16
        pool.submit(("pid", 0.0))
        [finished] = _drain(pool)
        pool.submit(("pid", 0.0))  # an idle worker exists: no second one
        [again] = _drain(pool)
        assert finished.result == again.result
        assert len(set(multiprocessing.active_children()) - before) == 1


def test_a_death_blames_the_running_task_and_hands_back_the_one_queued_behind_it(
    pool: WorkerPool[tuple[str, float], Any],
) -> None:
    pool.submit(("die", 0.3))  # worker A: dies while running this one...
    pool.submit(("pid", 0.0))  # worker B
    pool.submit(("queued", 0.0))  # worker A: ...with this one waiting behind it
    events = _drain(pool)
    lost = {event.task[0]: event.running for event in events if isinstance(event, Lost)}
    assert lost == {"die": True, "queued": False}
    # The dead worker is gone; the next tasks start a new one: two workers answer again.
    pool.submit(("pid", 0.2))
    pool.submit(("pid", 0.2))
    assert len({event.result for event in _drain(pool)}) == 2


def test_an_exception_or_an_unpicklable_result_fails_the_task_not_the_worker(
    pool: WorkerPool[tuple[str, float], Any],
) -> None:
    pool.submit(("raise", 0.0))
    pool.submit(("unpicklable", 0.0))
    events = _drain(pool)
    assert all(isinstance(event, Failed) for event in events)
    reasons = {event.task[0]: event.reason for event in events}
    assert reasons["raise"] == "ValueError: no such thing"
    assert "generator" in reasons["unpicklable"]
    pool.submit(("pid", 0.0))
    [finished] = _drain(pool)
    assert isinstance(finished, Finished)


def test_workers_that_die_before_taking_work_stop_the_pool_with_their_exit_code() -> None:
    before = set(multiprocessing.active_children())
    with (
        pytest.raises(WorkersFailToStart, match="exited with code 4"),
        WorkerPool(2, _run, initializer=_die_at_start, context=CONTEXT) as pool,
    ):
        pool.submit(("pid", 0.0))
        while pool.busy:  # hand each lost task back, as hash_files does
            for event in pool.events():
                assert isinstance(event, Lost) and not event.running
                pool.submit(event.task)
    assert set(multiprocessing.active_children()) <= before


def test_closing_early_stops_a_busy_worker_at_once() -> None:
    before = set(multiprocessing.active_children())
    pool: WorkerPool[tuple[str, float], Any] = WorkerPool(1, _run, context=CONTEXT)
    pool.submit(("pid", 60.0))
    started = time.monotonic()
    pool.close(graceful=False)
    assert time.monotonic() - started < 5
    assert set(multiprocessing.active_children()) <= before


def test_a_pool_whose_function_an_unguarded_script_defines_fails_with_a_hint_instead_of_hanging(
    tmp_path: Path,
) -> None:
    # hash_files needs no guard (its functions live in lookalike: tests/test_plain_scripts.py);
    # a pool running a function of the script itself must re-run the script in each worker.
    script = tmp_path / "no_guard.py"
    script.write_text(
        "from lookalike.pipeline import _worker_context\n"
        "from lookalike.workers import Lost, WorkerPool\n"
        "def double(x):\n"
        "    return 2 * x\n"
        "with WorkerPool(2, double, context=_worker_context()) as pool:\n"
        "    pool.submit(21)\n"
        "    while pool.busy:\n"
        "        for event in pool.events():\n"
        "            if isinstance(event, Lost):\n"
        "                pool.submit(event.task)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode != 0
    assert "WorkersFailToStart" in done.stderr
    assert "if __name__ == '__main__':" in done.stderr


def test_ctrl_c_stops_a_hash_run_and_its_workers_without_tracebacks(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    noise = np.random.default_rng(1).integers(0, 256, (1500, 2000, 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "0.png", compress_level=1)
    for index in range(1, 1000):  # half a minute of work or more: busy when interrupted
        os.link(folder / "0.png", folder / f"{index}.png")
    run = subprocess.Popen(
        [sys.executable, "-m", "lookalike", "hash", str(folder), "--mode", "exact", "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives it
        # A job started in the background by a non-interactive shell (as CI may run the suite)
        # inherits SIGINT ignored, and Python then leaves it ignored: give the run a terminal's.
        preexec_fn=_default_sigint,
    )
    deadline = time.monotonic() + 60
    while len(_busy_members(run.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # until both workers are hashing
    assert len(_busy_members(run.pid)) >= 2 and run.poll() is None
    os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C does: the signal goes to the whole group
    _, errors = run.communicate(timeout=60)
    assert run.returncode != 0
    assert "Traceback" not in errors, errors
    deadline = time.monotonic() + 10
    while _group_alive(run.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group_alive(run.pid), "a worker outlived the interrupted run"


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _busy_members(group: int, cpu_seconds: float = 0.3) -> list[int]:
    """The workers of a process group (forked by its forkserver, so not children of its leader)
    that have worked `cpu_seconds`."""
    return [
        stat.pid
        for stat in all_process_stats()
        if stat.process_group == group
        and group not in (stat.pid, stat.parent)
        and stat.cpu_seconds >= cpu_seconds
    ]


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True
