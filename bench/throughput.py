"""Images per second, lookalike against ImageHash (and pdqhash), side by side in one run.

    python bench/throughput.py [--photos ../shared/photos] [--rounds 5]

Three size classes of JPEGs (quality 90, ~0.3, ~3 and ~12 megapixels) are made from real photos
(see size_classes.py). The seed job (aHash + colorhash) runs on ImageHash, on lookalike's fast and
exact modes, and on the drop-in `lookalike.compat.imagehash` called as a user's script calls it.
Each round times every contestant over every file of a class, in a rotating order; the table shows
the median over rounds, and each ratio is the median of the per-round ratios (both sides measured
in the same round). Then hash_files' scaling over worker
processes, with the load average at the time: this machine is shared, so read ratios, not
absolute speeds.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

import lookalike
from size_classes import DEFAULT_CLASSES, SizeClass, default_cache_dir, make_class

SEED = ["ahash", "colorhash"]
ALL_FAMILIES = ["ahash", "dhash", "phash", "whash", "colorhash", "pdq"]


def available_all() -> list[str]:
    return [name for name in ALL_FAMILIES if name in lookalike.algorithm_names()]


# ----- contestants: each hashes (or just decodes) one file ------------------------------------------


def pillow_draft_floor(path: Path) -> None:
    """The floor: the same JPEG opened with draft at 1/8 scale and loaded, nothing else."""
    with Image.open(path) as image:
        image.draft("RGB", (image.width // 8, image.height // 8))
        image.load()


def imagehash_seed(path: Path) -> tuple[str, str]:
    """The seed article's job with ImageHash: aHash and colorhash of an opened file."""
    import imagehash

    with Image.open(path) as image:
        return str(imagehash.average_hash(image)), str(imagehash.colorhash(image))


def compat_seed(path: Path) -> tuple[str, str]:
    """The same script on the drop-in module, called as users call it: open, then two hashes."""
    import lookalike.compat.imagehash as imagehash

    with Image.open(path) as image:
        return str(imagehash.average_hash(image)), str(imagehash.colorhash(image))


def ours(hashes: Sequence[str], mode: str) -> Callable[[Path], tuple[str, ...]]:
    def run(path: Path) -> tuple[str, ...]:
        result = lookalike.hash_file(path, list(hashes), mode=mode, orientation=mode == "fast")  # type: ignore[arg-type]
        return tuple(str(result[name]) for name in hashes)

    return run


def pdqhash_peer(path: Path) -> Any:
    """The pdqhash package: decode with Pillow, then pdqhash.compute on the RGB array."""
    import pdqhash

    with Image.open(path) as image:
        return pdqhash.compute(np.asarray(image.convert("RGB")))


@dataclass(frozen=True)
class Contestant:
    label: str
    run: Callable[[Path], Any]


@dataclass(frozen=True)
class Ratio:
    label: str
    numerator: str  # contestant labels; ratio = time(numerator) / time(denominator)
    denominator: str
    target: str
    passes: Callable[[float], bool]


def contestants() -> tuple[list[Contestant], list[Ratio]]:
    everything = available_all()
    floor = Contestant("Pillow draft 1/8 decode only (floor)", pillow_draft_floor)
    peer = Contestant("ImageHash aHash+colorhash", imagehash_seed)
    fast = Contestant("lookalike fast aHash+colorhash", ours(SEED, "fast"))
    exact = Contestant("lookalike exact aHash+colorhash", ours(SEED, "exact"))
    compat = Contestant("lookalike.compat.imagehash aHash+colorhash", compat_seed)
    fast_all = Contestant(f"lookalike fast {'+'.join(everything)}", ours(everything, "fast"))
    line_up = [floor, peer, fast, exact, compat, fast_all]
    ratios = [
        Ratio("fast seed: speed-up over ImageHash", peer.label, fast.label, ">= 15x", lambda r: r >= 15),
        Ratio("fast seed: time / floor", fast.label, floor.label, "<= 1.3x", lambda r: r <= 1.3),
        Ratio("exact seed: speed-up over ImageHash", peer.label, exact.label, ">= 3x", lambda r: r >= 3),
        Ratio(
            "compat module seed: speed-up over ImageHash",
            peer.label,
            compat.label,
            ">= 2.5x",
            lambda r: r >= 2.5,
        ),
        Ratio(
            "fast all: speed-up over ImageHash seed", peer.label, fast_all.label, ">= 5x", lambda r: r >= 5
        ),
    ]
    if "pdq" in lookalike.algorithm_names() and _has_module("pdqhash"):
        pdq_peer = Contestant("pdqhash (Pillow decode + compute)", pdqhash_peer)
        pdq_ours = Contestant("lookalike fast pdq", ours(["pdq"], "fast"))
        line_up += [pdq_peer, pdq_ours]
        ratios.append(
            Ratio(
                "fast PDQ: speed-up over pdqhash", pdq_peer.label, pdq_ours.label, ">= 10x", lambda r: r >= 10
            )
        )
    return line_up, ratios


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


# ----- timing -------------------------------------------------------------------------------------


def time_rounds(line_up: list[Contestant], files: list[Path], rounds: int) -> dict[str, list[float]]:
    """Seconds per image for each contestant in each round; the order rotates every round."""
    for contestant in line_up:  # warm-up: imports, lazily built tables, page cache
        contestant.run(files[0])
    per_round: dict[str, list[float]] = {c.label: [] for c in line_up}
    for round_index in range(rounds):
        shift = round_index % len(line_up)
        for contestant in line_up[shift:] + line_up[:shift]:
            start = time.perf_counter()
            for path in files:
                contestant.run(path)
            per_round[contestant.label].append((time.perf_counter() - start) / len(files))
    return per_round


def check_exact_bits(files: list[Path]) -> tuple[int, int, int]:
    """(files whose exact-mode aHash+colorhash equal ImageHash's, the same for the compat module,
    files checked)."""
    exact = ours(SEED, "exact")
    peer = {path: imagehash_seed(path) for path in files}
    same = sum(exact(path) == peer[path] for path in files)
    same_compat = sum(compat_seed(path) == peer[path] for path in files)
    return same, same_compat, len(files)


def report_class(size_class: SizeClass, files: list[Path], rounds: int) -> None:
    line_up, ratios = contestants()
    megapixels = statistics.median(_megapixels(p) for p in files)
    per_round = time_rounds(line_up, files, rounds)
    print(f"\n### {size_class.label}: {len(files)} JPEGs, median {megapixels:.1f} MP, {rounds} rounds\n")
    print("| contestant | ms / image | images / s |")
    print("|---|---:|---:|")
    for contestant in line_up:
        seconds = statistics.median(per_round[contestant.label])
        print(f"| {contestant.label} | {seconds * 1000:.1f} | {1 / seconds:.1f} |")
    same, same_compat, checked = check_exact_bits(files)
    print(
        f"\nexact mode == ImageHash (aHash and colorhash hex): {same}/{checked} files; "
        f"compat module == ImageHash: {same_compat}/{checked} files\n"
    )
    print("| ratio (median of per-round ratios) | value | target (12 MP) | met |")
    print("|---|---:|---|---|")
    for ratio in ratios:
        values = [
            a / b for a, b in zip(per_round[ratio.numerator], per_round[ratio.denominator], strict=True)
        ]
        value = statistics.median(values)
        met = ("yes" if ratio.passes(value) else "NO") if size_class.megapixels >= 12 else ""
        print(f"| {ratio.label} | {value:.2f}x | {ratio.target} | {met} |")


def _megapixels(path: Path) -> float:
    with Image.open(path) as image:
        return image.width * image.height / 1e6


# ----- scaling over worker processes -------------------------------------------------------------------


@dataclass(frozen=True)
class PoolRun:
    wall_per_image: float  # steady state: first result to last
    cpu_per_image: float  # median of the workers' own CPU time per file
    load: float
    on_cpu: float  # shares of the workers' wall time: running, waiting for a core, asleep
    waiting_for_cpu: float
    asleep: float


def _schedstat(pids: list[int]) -> tuple[float, float]:
    """Seconds on a CPU and seconds runnable but waiting for one, summed over `pids` (Linux)."""
    on_cpu = waiting = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/schedstat") as handle:
                run_ns, wait_ns, _ = handle.read().split()
        except (OSError, ValueError):
            continue
        on_cpu += int(run_ns) / 1e9
        waiting += int(wait_ns) / 1e9
    return on_cpu, waiting


def run_pool(files: list[Path], workers: int) -> PoolRun:
    """Hash `files` with hash_files; between its first and last result, also read the kernel's
    account of where the workers' time went: on a core, waiting for one, or asleep (which is
    where a lock or a queue inside lookalike would show)."""
    load_before = os.getloadavg()[0]
    stamps: list[float] = []
    cpu: list[float] = []
    pids: list[int] = []
    start = (0.0, 0.0)
    end = (0.0, 0.0)
    for index, (_, result) in enumerate(lookalike.hash_files(files, SEED, workers=workers)):
        if isinstance(result, Exception):
            raise result
        stamps.append(time.perf_counter())
        cpu.append(result.cpu_seconds or 0.0)
        if index == 0:
            pids = (
                [c.pid for c in multiprocessing.active_children() if c.pid] if workers > 1 else [os.getpid()]
            )
            start = _schedstat(pids)
        if index == len(files) - 1:
            end = _schedstat(pids)
    load = max(load_before, os.getloadavg()[0])
    span = stamps[-1] - stamps[0]
    worker_time = span * len(pids)
    on_cpu = (end[0] - start[0]) / worker_time
    waiting = (end[1] - start[1]) / worker_time
    return PoolRun(
        span / (len(stamps) - 1), statistics.median(cpu), load, on_cpu, waiting, 1 - on_cpu - waiting
    )


def report_scaling(files: list[Path], repeat: int, rounds: int) -> None:
    batch = files * repeat
    print(f"\n### Scaling: hash_files, fast aHash+colorhash, {len(batch)} images per run, {rounds} rounds\n")
    results: dict[int, list[PoolRun]] = {1: [], 2: []}
    for round_index in range(rounds):
        for workers in (1, 2) if round_index % 2 == 0 else (2, 1):
            results[workers].append(run_pool(batch, workers))
    print(
        "| workers | images / s (wall) | worker CPU ms / image | load average (1 min) "
        "| worker time on a core / waiting for a core / asleep |"
    )
    print("|---:|---:|---:|---:|---|")
    for workers, runs in results.items():
        wall = statistics.median(r.wall_per_image for r in runs)
        cpu = statistics.median(r.cpu_per_image for r in runs)
        load = statistics.median(r.load for r in runs)
        shares = " / ".join(
            f"{statistics.median(getattr(r, name) for r in runs):.0%}"
            for name in ("on_cpu", "waiting_for_cpu", "asleep")
        )
        print(f"| {workers} | {1 / wall:.1f} | {cpu * 1000:.1f} | {load:.2f} | {shares} |")
    speedups = [
        one.wall_per_image / two.wall_per_image for one, two in zip(results[1], results[2], strict=True)
    ]
    cpu_ratio = [
        two.cpu_per_image / one.cpu_per_image for one, two in zip(results[1], results[2], strict=True)
    ]
    print(
        f"\nwall-clock speed-up with 2 workers: {statistics.median(speedups):.2f}x; "
        f"CPU per image, 2 workers / 1 worker: {statistics.median(cpu_ratio):.2f} (target <= 1.10); "
        f"cores: {os.cpu_count()}; {cpu_pressure()}"
    )


def cpu_pressure() -> str:
    """Linux PSI: the share of the last 10 s in which some runnable task waited for a CPU."""
    try:
        with open("/proc/pressure/cpu") as handle:
            first = handle.readline().split()
        return f"CPU pressure (time something waited for a core, last 10 s): {first[1].split('=')[1]}%"
    except (OSError, IndexError):
        return "CPU pressure: unknown"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    here = Path(__file__).resolve().parent
    parser.add_argument("--photos", type=Path, default=here.parent.parent / "shared" / "photos")
    parser.add_argument("--cache", type=Path, default=default_cache_dir(), help="where the JPEGs go")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--classes", default="0.3,3,12", help="megapixel classes to run, e.g. 12")
    parser.add_argument("--no-scaling", action="store_true", help="skip the worker-scaling runs")
    parser.add_argument("--scaling-only", action="store_true", help="only the worker-scaling runs")
    args = parser.parse_args(argv)
    if not args.photos.is_dir():
        parser.error(f"{args.photos} is not a folder of photos; pass --photos")
    wanted = {float(x) for x in args.classes.split(",")}
    classes = [c for c in DEFAULT_CLASSES if c.megapixels in wanted]
    print(
        f"# lookalike throughput ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.2f})"
    )
    arguments = " ".join(argv if argv is not None else sys.argv[1:])
    print(f"\ncommand: python bench/throughput.py {arguments}".rstrip())
    files_by_class = {c: make_class(args.photos, args.cache, c) for c in classes}
    for size_class, files in files_by_class.items():
        if not args.scaling_only:
            report_class(size_class, files, args.rounds)
    if not args.no_scaling and classes:
        largest = files_by_class[classes[-1]]
        report_scaling(largest, repeat=max(1, 128 // len(largest)), rounds=3)


if __name__ == "__main__":
    main()
