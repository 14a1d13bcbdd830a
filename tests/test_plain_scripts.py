"""The Python API from a plain script, `python -c`, stdin, `-m` and an interactive prompt: no
`if __name__ == "__main__":` guard needed, and files are still hashed by parallel workers."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest

import lookalike
from conftest import COMMITTED_PHOTOS
from lookalike.pipeline import _worker_context

HASHES = ["ahash", "colorhash"]
PHOTOS = [str(path) for path in COMMITTED_PHOTOS[:6]]

# What a newcomer writes: no guard, no function, top-level code only. No compound statement, so
# an interactive prompt fed line by line runs it as it is.
UNGUARDED = f"""\
import multiprocessing
import lookalike
photos = {PHOTOS!r}
stream = lookalike.hash_files(photos, {HASHES!r}, workers=2)
results = [next(stream)]
workers = {{p.pid for p in multiprocessing.active_children() if p.name == "lookalike-worker"}}
results += list(stream)
same = all(dict(result) == dict(lookalike.hash_file(path, {HASHES!r})) for path, result in results)
print("hashed", len(results), "files in", len(workers), "worker processes; same as hash_file:", same)
"""
EXPECTED = f"hashed {len(PHOTOS)} files in 2 worker processes; same as hash_file: True"


def _python(tmp_path: Path, how: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "example.py"
    script.write_text(UNGUARDED)
    commands = {
        "script": ([sys.executable, str(script)], None),
        "-c": ([sys.executable, "-c", UNGUARDED], None),
        "stdin": ([sys.executable, "-"], UNGUARDED),
        "-m": ([sys.executable, "-m", "example"], None),
        "interactive": ([sys.executable, "-i"], UNGUARDED + "\n"),
    }
    command, stdin = commands[how]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=180, cwd=tmp_path)


@pytest.mark.parametrize("how", ["script", "-c", "stdin", "-m", "interactive"])
def test_an_unguarded_program_hashes_files_in_two_worker_processes(tmp_path: Path, how: str) -> None:
    done = _python(tmp_path, how)
    assert done.returncode == 0, done.stderr
    assert EXPECTED in done.stdout, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def _hash_in_a_daemon(photos: list[str], out: multiprocessing.queues.Queue[object]) -> None:
    try:
        out.put([(path, dict(result)) for path, result in lookalike.hash_files(photos, HASHES, workers=2)])
    except Exception as exc:
        out.put(f"{type(exc).__name__}: {exc}")


def test_a_daemonic_process_which_may_not_start_workers_hashes_in_process() -> None:
    context = _worker_context()
    out: multiprocessing.queues.Queue[object] = context.Queue()
    daemon = context.Process(target=_hash_in_a_daemon, args=(PHOTOS[:3], out), daemon=True)
    daemon.start()
    try:
        answer = out.get(timeout=120)
    finally:
        daemon.join(10)
    assert not isinstance(answer, str), answer
    expected = {path: dict(lookalike.hash_file(path, HASHES)) for path in PHOTOS[:3]}
    assert dict(answer) == expected  # type: ignore[call-overload]
