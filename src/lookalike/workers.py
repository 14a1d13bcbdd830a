"""Worker processes fed through one pipe each, so a worker's death names the task it was running.

concurrent.futures' process pool shares one queue between its workers: when one dies, the whole
pool breaks, every task in flight is lost with it, and (CPython 3.11+) a worker being started as
the pool breaks can leave the manager thread, and so the interpreter's exit, waiting forever.
Here each worker has its own pipe and at most `depth` tasks: a dead worker is dropped (the next
task starts a new one), the task it was running is reported `Lost(running=True)`, the ones queued
behind it `Lost(running=False)`.
Workers are daemons, terminated rather than joined if the caller exits without closing the pool.

Workers do not run the caller's `__main__` again (see `_caller_main_hidden`), so a plain script,
`python -c`, stdin, a notebook or an interactive prompt can start them without an
`if __name__ == "__main__":` guard, unless the pool's own functions are defined in `__main__`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import signal
import sys
import threading
import types
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any, Generic, TypeVar

from lookalike.errors import LookalikeError

TaskT = TypeVar("TaskT")
ResultT = TypeVar("ResultT")

_READY = "ready"
_DONE = "done"
_FAILED = "failed"

JOIN_SECONDS = 5.0  # how long a closing pool waits for an idle worker to exit before killing it


@dataclass(frozen=True)
class Finished(Generic[TaskT, ResultT]):
    """The task ran; `result` is what the function returned."""

    task: TaskT
    result: ResultT


@dataclass(frozen=True)
class Failed(Generic[TaskT]):
    """The function raised, or its result could not be sent back; `reason` says what happened."""

    task: TaskT
    reason: str


@dataclass(frozen=True)
class Lost(Generic[TaskT]):
    """The worker died holding this task: `running` if the worker had it in hand (the likely cause),
    False if the task was only queued behind another (innocent: submit it again)."""

    task: TaskT
    running: bool


Event = Finished[TaskT, ResultT] | Failed[TaskT] | Lost[TaskT]


class WorkersFailToStart(LookalikeError):
    """Worker processes die before taking any work (see the message for the usual cause)."""


def can_start_workers() -> bool:
    """Whether this process may start worker processes: a daemonic process (itself a worker of
    some pool) may not, so work asked of it runs in-process instead."""
    return not multiprocessing.current_process().daemon


def _defined_in_main(function: Callable[..., Any] | None) -> bool:
    return function is not None and getattr(function, "__module__", None) == "__main__"


_MAIN_SWAP = threading.Lock()  # two threads starting workers must not interleave their swaps


@contextlib.contextmanager
def _caller_main_hidden() -> Iterator[None]:
    """While a worker starts, show multiprocessing a `__main__` with no file and no spec.

    A spawn or forkserver child re-runs the parent's main script (as `__mp_main__`, found from
    `sys.modules["__main__"].__file__` or `__spec__` when the process starts) so that functions
    defined there can be unpickled. A script without an `if __name__ == "__main__":` guard then
    starts workers from inside each starting worker, and they all die. Our workers' functions live
    in importable modules and need no main script, so the child is told of none. The stand-in
    holds the same names, so another thread pickling objects of `__main__` meanwhile still can.
    """
    with _MAIN_SWAP:
        main = sys.modules.get("__main__")
        stand_in = types.ModuleType("__main__")
        if main is not None:
            stand_in.__dict__.update(vars(main))
        stand_in.__dict__.pop("__file__", None)
        stand_in.__spec__ = None
        sys.modules["__main__"] = stand_in
        try:
            yield
        finally:
            if main is None:
                del sys.modules["__main__"]
            else:
                sys.modules["__main__"] = main


def _serve(conn: Connection, run: Callable[[Any], Any], initializer: Callable[[], None] | None) -> None:
    """A worker's life: announce itself, then run each task from the pipe until told to stop."""
    # Ctrl-C reaches the whole process group: the parent stops the workers, they need not react.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer()
    conn.send((_READY, None))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if task is None:
            return
        try:
            message = pickle.dumps((_DONE, run(task)), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            message = pickle.dumps((_FAILED, f"{type(exc).__name__}: {exc}"))
        conn.send_bytes(message)


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection
    outstanding: deque[Any] = field(default_factory=deque)  # sent, not yet answered; head is running
    ready: bool = False


class WorkerPool(Generic[TaskT, ResultT]):
    """Up to `count` daemon processes that apply `run` to tasks; see the module docstring.

    Submit while `free_slots`, then call `events()` while `busy`. Workers start when work needs
    them (three files on a 64-core machine start three), and a dead one is dropped, to be
    replaced by the next submit; if `max_start_failures` workers in a row die before taking any
    work, `events()` raises `WorkersFailToStart`.
    """

    def __init__(
        self,
        count: int,
        run: Callable[[TaskT], ResultT],
        *,
        initializer: Callable[[], None] | None = None,
        context: BaseContext | None = None,
        depth: int = 2,
        max_start_failures: int = 3,
    ) -> None:
        if count < 1 or depth < 1:
            raise ValueError("a worker pool needs at least one worker and one task per worker")
        self._run = run
        self._initializer = initializer
        self._context = context or multiprocessing.get_context()
        self._depth = depth
        self._max_start_failures = max_start_failures
        self._start_failures = 0
        self._count = count
        self._workers: list[_Worker] = []
        # Functions defined in the caller's main script are found only by running it again.
        self._needs_caller_main = _defined_in_main(run) or _defined_in_main(initializer)

    def __enter__(self) -> WorkerPool[TaskT, ResultT]:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close(graceful=kind is None)

    @property
    def free_slots(self) -> int:
        room = sum(self._depth - len(worker.outstanding) for worker in self._workers)
        return room + (self._count - len(self._workers)) * self._depth

    @property
    def busy(self) -> bool:
        return any(worker.outstanding for worker in self._workers)

    def submit(self, task: TaskT) -> None:
        """Hand `task` to an idle worker, else to a new one while fewer than `count` run, else to
        the least loaded; there must be a free slot."""
        idle = [worker for worker in self._workers if not worker.outstanding]
        if idle:
            worker = idle[0]
        elif len(self._workers) < self._count:
            worker = self._start()
            self._workers.append(worker)
        else:
            worker = min(self._workers, key=lambda candidate: len(candidate.outstanding))
            if len(worker.outstanding) >= self._depth:
                raise RuntimeError("no free slot: wait for events() first")
        worker.outstanding.append(task)
        with contextlib.suppress(OSError):  # the worker has died: events() hands the task back
            worker.conn.send(task)

    def events(self) -> list[Event[TaskT, ResultT]]:
        """Wait until at least one task finished, failed or was lost, and return all such events."""
        if not self.busy:
            raise RuntimeError("no task is in flight")
        events: list[Event[TaskT, ResultT]] = []
        while not events:
            owners: dict[Any, _Worker] = {}  # a pipe or a process sentinel
            for worker in self._workers:
                owners[worker.conn] = worker
                owners[worker.process.sentinel] = worker
            for ready in wait(list(owners)):
                worker = owners[ready]
                if worker in self._workers:  # not already dropped in this round
                    self._read(worker, events, exited=ready is not worker.conn)
        return events

    def close(self, graceful: bool = True) -> None:
        """Stop every worker: `graceful` lets idle workers exit by themselves first; otherwise
        (an error, or the caller stopped early) they are terminated whatever they are doing."""
        workers, self._workers = self._workers, []
        if graceful:
            for worker in workers:
                with contextlib.suppress(OSError):
                    worker.conn.send(None)
        for worker in workers:
            _stop(worker.process, JOIN_SECONDS if graceful else 0.0)
            worker.conn.close()

    def _start(self) -> _Worker:
        parent_end, child_end = self._context.Pipe(duplex=True)
        process = self._context.Process(  # type: ignore[attr-defined]
            target=_serve,
            args=(child_end, self._run, self._initializer),
            daemon=True,
            name="lookalike-worker",
        )
        try:
            with contextlib.nullcontext() if self._needs_caller_main else _caller_main_hidden():
                process.start()
        finally:
            child_end.close()
        return _Worker(process, parent_end)

    def _read(self, worker: _Worker, events: list[Event[TaskT, ResultT]], exited: bool) -> None:
        """Take every message the worker has sent; if it has died (or its pipe broke), drop it."""
        try:
            while worker.conn.poll():
                kind, payload = worker.conn.recv()
                if kind == _READY:
                    worker.ready = True
                    self._start_failures = 0
                elif kind == _DONE:
                    events.append(Finished(worker.outstanding.popleft(), payload))
                else:
                    events.append(Failed(worker.outstanding.popleft(), str(payload)))
        except Exception:  # EOF, a message cut short by the death: the worker is gone
            exited = True
        if exited:
            self._drop(worker, events)

    def _drop(self, dead: _Worker, events: list[Event[TaskT, ResultT]]) -> None:
        """Hand back a dead worker's tasks as Lost and forget it (the next submit starts another)."""
        self._workers.remove(dead)
        _stop(dead.process, 0.0)
        dead.conn.close()
        for position, task in enumerate(dead.outstanding):
            events.append(Lost(task, running=position == 0 and dead.ready))
        if not dead.ready:
            self._start_failures += 1
            if self._start_failures >= self._max_start_failures:
                cause = (
                    "a script that defines the workers' functions needs `if __name__ == '__main__':`"
                    if self._needs_caller_main
                    else f"the last exited with code {dead.process.exitcode}; its error is on stderr"
                )
                raise WorkersFailToStart(
                    f"{self._start_failures} worker processes in a row died before taking any work ({cause})"
                )


def _stop(process: BaseProcess, grace: float) -> None:
    """Let the process exit within `grace` seconds, then terminate it, then kill it."""
    process.join(grace)
    if process.is_alive():
        process.terminate()
        process.join(1.0)
    if process.is_alive():
        process.kill()
        process.join(1.0)
