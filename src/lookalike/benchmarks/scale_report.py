"""The scale benchmark's report: docs/scale.md (a table per size), docs/scale.json, docs/scale.png.

Input is `bench/scale.py`'s results, one dict per (job, size, round): ours on a backend
(`sqlite`, `chdb`) or a peer (`faiss-flat`, ...). Times are medians over rounds, and each is also
given as a ratio to ours on SQLite at the same size, since the machine is shared and noisy:
ratios measured in one run hold, seconds do not. Recall is the same count for every job, the
planted pairs (two images of one photo, original or edited) found.

    python -m lookalike.benchmarks.scale_report results.jsonl docs "python bench/scale.py ..."
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

OURS = ("sqlite", "chdb")
OURS_LABEL = {
    "sqlite": "lookalike, SQLite: near-duplicate rule, 5 hashes with variants",
    "chdb": "lookalike, chDB: near-duplicate rule, 5 hashes with variants",
}
PEER_LABEL = {
    "faiss-flat": "FAISS IndexBinaryFlat (brute force)",
    "faiss-flat-variants": "FAISS IndexBinaryFlat, queried with 8 dihedral variants",
    "faiss-ivf": "FAISS IndexBinaryIVF (4 sqrt(n) lists, nprobe 1/32)",
    "faiss-multihash": "FAISS IndexBinaryMultiHash (16 x 16-bit, exact)",
    "pybktree": "pybktree (Python BK-tree)",
    "pybktree-phash64": "pybktree, 64-bit pHash (imagededup's approach)",
    "cppbktree-phash64": "cppbktree, 64-bit pHash (C++ BK-tree, czkawka's approach)",
}
MEDIANS = (
    "dedupe_seconds",
    "baseline_mb",
    "index_mb",
    "build_seconds",
    "search_seconds",
    "add_seconds",
    "peak_mb",
    "match_p50_ms",
    "match_p95_ms",
    "first_query_seconds",
    "search_memory_mb",
)


def summarise(results: Iterable[dict[str, Any]]) -> dict[int, dict[str, dict[str, Any]]]:
    """Per size, per job: the medians over rounds of the timed fields, the counts (the same every
    round: the collections are reproducible) and how many rounds ran."""
    grouped: dict[int, dict[str, list[dict[str, Any]]]] = {}
    for result in results:
        grouped.setdefault(int(result["size"]), {}).setdefault(result["backend"], []).append(result)
    summary: dict[int, dict[str, dict[str, Any]]] = {}
    for size, jobs in sorted(grouped.items()):
        summary[size] = {}
        for job, runs in jobs.items():
            row: dict[str, Any] = {"rounds": len(runs)}
            last = runs[-1]
            for key, value in last.items():
                if key not in MEDIANS and key not in ("log", "round", "add_rates"):
                    row[key] = value
            for key in MEDIANS:
                values = [r[key] for r in runs if r.get(key) is not None]
                if values:
                    row[key] = statistics.median(values)
            rates = [statistics.median(r["add_rates"]) for r in runs if r.get("add_rates")]
            if rates:
                row["add_items_per_second"] = statistics.median(rates)
            row["estimated"] = any(r.get("estimated") for r in runs)
            summary[size][job] = row
        reference = summary[size].get("sqlite", {}).get("dedupe_seconds")
        for row in summary[size].values():
            if reference and row.get("dedupe_seconds"):
                row["time_vs_ours"] = row["dedupe_seconds"] / reference
    return summary


def markdown(summary: dict[int, dict[str, dict[str, Any]]], command: str) -> str:
    """docs/scale.md: how it was measured, then a table per size."""
    lines = [
        "# Scale: duplicate search against the peers",
        "",
        "A duplicate search of a whole collection: every pair of images the rule accepts. Ours runs",
        "the `near-duplicate` preset (five 256-bit hashes, each image's dihedral, trimmed and crop",
        "variants, hashing excluded: the variants are given) through the candidate stage",
        "([candidates.md](candidates.md)). Each peer does the same job on one hash without variants:",
        "every pair within a radius, on equalised pHash (256 bits) at the rule's radius for it (56),",
        "or on a 64-bit pHash at imagededup's default radius (10), the BK-tree approach of",
        "imagededup and czkawka. One FAISS peer is queried with each image's 8 dihedral variants of",
        "equalised pHash (the candidate stage's job on that hash).",
        "",
        "Collections are photo-like (`lookalike.benchmarks.scale`): 60 real photos with all their",
        "edited copies planted, the rest made from real photos' hashes with 35% of",
        "their bits flipped. **Recall** is the same count for everyone: the planted pairs (two images",
        "of one photo: original or edit, including heavy crops and edits no hash survives) found.",
        "Peak memory is the process's (each job runs alone in its own, and the collection's hashes",
        "take their share); index memory is ours' search structures (SQLite), or the resident memory",
        "a peer's build added. `runs`: rounds behind the median.",
        "",
        "The machine has 2 cores shared with other jobs (load 2-4): read the ratios (`x ours`, time",
        "over ours on SQLite in the same rounds), not the seconds. Times are medians over rounds.",
        "FAISS runs on one thread. A peer marked *est.* was stopped after its time budget, having",
        "answered every planted image (its recall is exact) and a sample of the rest; its time is",
        "extrapolated from the images it answered.",
        "",
        "Made by:",
        "",
        "```sh",
        command,
        "```",
        "",
    ]
    for size, jobs in summary.items():
        lines += table(size, jobs)
    lines += add_table(summary)
    lines += [
        "",
        "Notes: `cppbktree` 0.2.0's tree for byte strings measures hashes over 64 bits as 4x the",
        "distance of their first 8 bytes (it misses pairs and returns others far away), so it runs",
        "on the 64-bit pHash only (`tests/test_scale_peers.py`). Pairs a peer returned beyond its",
        "radius are dropped before counting.",
        "",
    ]
    return "\n".join(lines)


def table(size: int, jobs: dict[str, dict[str, Any]]) -> list[str]:
    """One size's table: ours first, then the peers by time."""
    planted = next(iter(jobs.values()))
    truth = max((row.get("truth_pairs", 0) for row in jobs.values()), default=0)
    lines = [
        f"## {size:,} images",
        "",
        f"{planted.get('planted', 0):,} planted images, {truth:,} planted pairs.",
        "",
        "| job | hash <= radius | runs | duplicate search | x ours | planted pairs found"
        " | pairs outside planted | peak memory | index memory |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ours = [job for job in OURS if job in jobs]
    peers = sorted((job for job in jobs if job not in OURS), key=lambda j: jobs[j].get("dedupe_seconds", 0))
    for job in [*ours, *peers]:
        row = jobs[job]
        if "dedupe_seconds" not in row:
            continue
        if job in OURS:
            label, hashed = OURS_LABEL[job], "the rule"
        else:
            label = PEER_LABEL.get(job, job)
            hashed = f"{row['hash']} ({row['bits']} bits) <= {row['radius']}"
        seconds = _seconds(row["dedupe_seconds"]) + (" est." if row.get("estimated") else "")
        ratio = f"{row['time_vs_ours']:.2f}" if "time_vs_ours" in row else ""
        found = row.get("truth_found", 0)
        recall = f"{found:,} ({100 * found / max(row.get('truth_pairs', 0), 1):.1f}%)"
        outside = f"{row.get('outside_planted', 0):,}"
        memory = _index_memory(row)
        lines.append(
            f"| {label} | {hashed} | {row['rounds']} | {seconds} | {ratio} | {recall} | {outside}"
            f" | {row['peak_mb']:,.0f} MB | {memory} |"
        )
    return [*lines, ""]


def _index_memory(row: dict[str, Any]) -> str:
    """Ours: the search structures' size (SQLite reports it); a peer: the resident memory its
    index's build added."""
    for key in ("search_memory_mb", "index_mb"):
        if row.get(key) is not None:  # memory freed during a build can hide a small index
            return f"{row[key]:,.0f} MB" if row[key] >= 0.5 else "< 1 MB"
    return ""


def add_table(summary: dict[int, dict[str, dict[str, Any]]]) -> list[str]:
    """`Index.add` throughput and single-query times of ours, per size and backend."""
    lines = [
        "## Bulk add and single queries (ours)",
        "",
        "`Index.add` through `add_words` (the 5 hashes of every image, batches of 100,000), and",
        "`match` of one planted image with its variants. Bulk add per batch up to a million, and",
        "before/after its speed-up: [bulk_add.md](bulk_add.md).",
        "",
        "| images | backend | add, items/s | match p50 | match p95 | first query after reopening |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for size, jobs in summary.items():
        for job in OURS:
            row = jobs.get(job)
            if not row or "add_items_per_second" not in row:
                continue
            lines.append(
                f"| {size:,} | {job} | {row['add_items_per_second']:,.0f} | {row['match_p50_ms']:.1f} ms"
                f" | {row['match_p95_ms']:.1f} ms | {row['first_query_seconds']:.2f} s |"
            )
    return [*lines, ""]


def _seconds(value: float) -> str:
    return f"{value:,.1f} s" if value < 600 else f"{value / 60:,.0f} min"


def plot(summary: dict[int, dict[str, dict[str, Any]]], path: Path) -> bool:
    """Duplicate search time against collection size, a line per job (recall at the largest size
    in the legend). Needs matplotlib (the bench extra); False when it is missing."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    jobs: list[str] = []
    for rows in summary.values():
        jobs += [job for job in rows if job not in jobs]
    fig, ax = plt.subplots(figsize=(8.5, 4.6), dpi=80)
    for number, job in enumerate(jobs):
        points = [
            (size, rows[job]) for size, rows in summary.items() if "dedupe_seconds" in rows.get(job, {})
        ]
        if not points:
            continue
        largest = points[-1][1]
        recall = 100 * largest.get("truth_found", 0) / max(largest.get("truth_pairs", 0), 1)
        label = f"{OURS_LABEL.get(job, PEER_LABEL.get(job, job))}: recall {recall:.1f}%"
        ax.plot(
            [size for size, _ in points],
            [row["dedupe_seconds"] for _, row in points],
            marker="o",
            color=plt.get_cmap("tab10")(number % 10),
            linewidth=2.2 if job in OURS else 1.2,
            linestyle="-" if job in OURS else "--",
            label=label,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("images in the collection")
    ax.set_ylabel("duplicate search, seconds (median)")
    ax.set_title("Duplicate search of a whole collection (2 shared cores)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def write_report(results: Sequence[dict[str, Any]], out_dir: Path, command: str) -> None:
    """docs/scale.md, docs/scale.json (medians and every run) and docs/scale.png (with matplotlib)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarise(results)
    runs = [{k: v for k, v in r.items() if k != "log"} for r in results]
    data = {"command": command, "medians": {str(s): jobs for s, jobs in summary.items()}, "runs": runs}
    (out_dir / "scale.json").write_text(json.dumps(data, indent=1))
    (out_dir / "scale.md").write_text(markdown(summary, command))
    plot(summary, out_dir / "scale.png")


def main(argv: Sequence[str] | None = None) -> None:
    """`results.jsonl out_dir command`: rewrite the report from saved results."""
    results_path, out_dir, command = (argv if argv is not None else sys.argv[1:])[:3]
    results = [json.loads(line) for line in Path(results_path).read_text().splitlines() if line.strip()]
    write_report(results, Path(out_dir), command)


if __name__ == "__main__":
    main()
