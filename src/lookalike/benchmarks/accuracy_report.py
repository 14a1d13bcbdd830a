"""The accuracy benchmark's results as Markdown tables, JSON and a ROC plot (`accuracy.Run` in)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from lookalike.benchmarks import transforms as transform_registry
from lookalike.benchmarks.accuracy import ABLATION_SOURCES, OWN_LIMITS, PARTIAL_FAMILIES, Result, Run
from lookalike.benchmarks.scoring import preset_scorer
from lookalike.matcher import DEFAULT_PRESET

TARGET = "0.999"


def _percent(value: float) -> str:
    return "-" if value != value else f"{100 * value:.1f}"


def _name(result: Result) -> str:
    return result.name if result.peer else f"**{result.name}**"


def _family_table(
    title: str, families: Sequence[str], rows: Sequence[tuple[str, dict[str, float]]]
) -> list[str]:
    lines = [
        "",
        title,
        "",
        "| hash / matcher | " + " | ".join(families) + " |",
        "| --- |" + " ---: |" * len(families),
    ]
    for name, recall in rows:
        lines.append(
            f"| {name} | " + " | ".join(_percent(recall.get(f, float("nan"))) for f in families) + " |"
        )
    return lines


def markdown_tables(run: Run, target: str = TARGET) -> str:
    """The results as Markdown: the overview, presets at their own limits, recall per family
    (whole-image edits, then partial copies), the index path and the hard negatives."""
    present = [
        f for f in transform_registry.families() if any(f in r.family_recall[target] for r in run.results)
    ]
    whole = [f for f in present if f not in PARTIAL_FAMILIES]
    partial = [f for f in present if f in PARTIAL_FAMILIES]
    ordered = sorted(run.results, key=lambda r: (-r.recall[target], r.name))
    hard_total = len(run.hard_negatives)
    lines = [
        f"Recall (%) on the test half at the threshold that gives {100 * float(target):g}% precision "
        "on the tuning half; *whole-image edits* are every family but the partial copies (the "
        "benchmark as it was before them), *light* leaves out 20% crops too.",
        "",
        "| hash / matcher | recall @99.9% | @99.99% | whole-image edits | light | partial copies "
        "| precision reached | threshold | hard negatives matched |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in ordered:
        hard = len(r.hard_negatives.get(target, []))
        lines.append(
            f"| {_name(r)} | {_percent(r.recall[target])} | {_percent(r.recall['0.9999'])} | "
            f"{_percent(r.recall_whole[target])} | {_percent(r.recall_light[target])} | "
            f"{_percent(r.recall_partial[target])} | {_percent(r.precision[target])} | "
            f"{r.thresholds[target]:g} | {hard} of {hard_total} |"
        )
    presets = [r for r in run.results if r.as_shipped]
    if presets:
        lines += [
            "",
            "Presets at their own limits (hash tables), on the test half:",
            "",
            "| preset | recall | whole-image edits | light | partial copies | precision | false pairs "
            "| hard negatives matched |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in presets:
            shipped = r.as_shipped
            lines.append(
                f"| {r.name} | {_percent(shipped['recall'])} | {_percent(shipped['recall_whole'])} | "
                f"{_percent(shipped['recall_light'])} | {_percent(shipped['recall_partial'])} | "
                f"{100 * shipped['precision']:.3f} | "
                f"{int(shipped['false_matches'])} of {run.negatives_test:,} | "
                f"{len(r.hard_negatives.get(OWN_LIMITS, []))} of {hard_total} |"
            )
    lines += _summary_table(run, present, target)
    rows = [(_name(r), r.family_recall[target]) for r in ordered]
    lines += _family_table("Recall (%) per family of whole-image edits, at 99.9% precision:", whole, rows)
    if partial:
        lines += _family_table("Recall (%) per family of partial copies, at 99.9% precision:", partial, rows)
    lines += _index_tables(run, whole, partial)
    lines += _false_pair_table(run)
    lines += _hard_negative_table(run)
    return "\n".join(lines) + "\n"


def _summary_table(run: Run, families: Sequence[str], target: str) -> list[str]:
    """Family by family: the default preset at its own limits (hash tables, and each rule the index
    path ran but the other two presets), and the best peer at 99.9% precision."""
    default = next((r for r in run.results if r.name == preset_scorer(DEFAULT_PRESET).name), None)
    peers = [r for r in run.results if r.peer]
    if default is None:
        return []
    others = {"exact-duplicate", "similar"}
    index_rules = [r for r in run.index.results if r.name not in others] if run.index else []
    header = [
        f"{default.name} (hash tables)",
        *(f"{r.name} (index)" for r in index_rules),
        "best peer @99.9%",
    ]
    lines = [
        "",
        "Family by family, each rule at its own limits on the test half, and the best peer at 99.9% "
        "precision (recall %, the peer's name):",
        "",
        "| family | " + " | ".join(header) + " |",
        "| --- |" + " ---: |" * len(header),
    ]
    for family in families:
        cells = [_percent(default.family_recall[OWN_LIMITS].get(family, float("nan")))]
        cells += [_percent(r.scores.family_recall.get(family, float("nan"))) for r in index_rules]
        best = max(peers, key=lambda r: r.family_recall[target].get(family, -1.0), default=None)
        if best is not None:
            cells.append(f"{_percent(best.family_recall[target].get(family, float('nan')))} ({best.name})")
        else:
            cells.append("-")
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    return lines


def _index_tables(run: Run, whole: Sequence[str], partial: Sequence[str]) -> list[str]:
    if run.index is None:
        return []
    index = run.index
    lines = [
        "",
        f"Index path, test half ({index.images:,} images in a SQLite index with local features, "
        f"indexed in {index.index_seconds:.0f} s): each rule's duplicate search "
        "(`Index.duplicates(matcher=...)`) at its own limits. *Found*: the search paired an original "
        "with its copy; *false pairs*: it paired two images that show no photo in common, of "
        f"{index.negatives:,}; *grouped*: the same for being in one group.",
        "",
        "| rule | recall | precision | false pairs | grouped recall | grouped false pairs | search (s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in index.results:
        scores = result.scores
        precision = "-" if math.isnan(scores.precision) else f"{100 * scores.precision:.3f}"
        lines.append(
            f"| {result.name} | {_percent(scores.recall)} | {precision} | {scores.false_pairs} | "
            f"{_percent(scores.grouped_recall)} | {scores.grouped_false_pairs} | {result.seconds:.0f} |"
        )
    rows: list[tuple[str, dict[str, float]]] = []
    peers = {peer.rule: peer for peer in run.index_peers}
    for result in index.results:
        rows.append((f"**{result.name}** (index)", result.scores.family_recall))
        peer = peers.get(result.name)
        if peer is not None:
            rows.append(
                (
                    f"{peer.peer} at {100 * peer.target:.2f}% (reached {_percent(peer.precision)})",
                    peer.family_recall,
                )
            )
    intro = (
        "on the index path, each rule followed by the best peer with its threshold chosen on the tuning "
        "half for the precision the rule reached on the index path:"
    )
    lines += _family_table(f"Recall (%) per family of whole-image edits {intro}", whole, rows)
    if partial:
        lines += _family_table(f"Recall (%) per family of partial copies {intro}", partial, rows)
    return lines


def _false_pair_table(run: Run, kinds_shown: int = 4) -> list[str]:
    """Where each preset's false pairs are (at its own limits), by the families of their images."""
    rows = [(r.name + " (hash tables)", r.false_kinds) for r in run.results if r.as_shipped]
    if run.index is not None:
        rows += [(r.name + " (index)", r.scores.false_kinds) for r in run.index.results]
    if not rows:
        return []
    lines = [
        "",
        "False pairs at each rule's own limits on the test half, by the families of their two images "
        f"(the {kinds_shown} commonest kinds):",
        "",
        "| rule | false pairs | commonest kinds |",
        "| --- | ---: | --- |",
    ]
    for name, kinds in rows:
        shown = ", ".join(f"{kind} {count}" for kind, count in list(kinds.items())[:kinds_shown])
        lines.append(f"| {name} | {sum(kinds.values())} | {shown or '-'} |")
    return lines


def _hard_negative_table(run: Run) -> list[str]:
    if not run.hard_negatives:
        return []
    lines = [
        "",
        f"Hard negatives: {len(run.hard_negatives)} pairs of different photos of one place or object "
        "(`lookalike.benchmarks.hard_negatives`), matched by:",
        "",
        "| matcher | pairs matched |",
        "| --- | --- |",
    ]
    for r in run.results:
        if r.as_shipped:
            matched = r.hard_negatives.get(OWN_LIMITS, [])
            lines.append(f"| {r.name} (own limits) | {len(matched)}: {', '.join(matched) or '-'} |")
    for rule, matched in run.index_hard_negatives.items():
        lines.append(f"| {rule} (index) | {len(matched)}: {', '.join(matched) or '-'} |")
    for r in sorted(run.results, key=lambda r: -r.recall[TARGET]):
        if r.peer and r.hard_negatives.get(TARGET):
            matched = r.hard_negatives[TARGET]
            lines.append(f"| {r.name} @99.9% | {len(matched)}: {', '.join(matched)} |")
    return lines


def save_run(run: Run, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    data = asdict(run)
    data.pop("roc")
    (out_dir / "accuracy.json").write_text(json.dumps(data, indent=1, default=float))
    (out_dir / "accuracy.md").write_text(markdown_tables(run))


def plot_roc(run: Run, path: Path, names: Sequence[str] | None = None, peers_shown: int = 4) -> None:
    """ROC curves on the test half (log false-positive rate): the default preset, its ingredients
    and the best peers by recall at 99.9% precision. Needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if names is None:
        ranked = sorted(run.results, key=lambda r: -r.recall[TARGET])
        default = preset_scorer(DEFAULT_PRESET).name
        ours = [default, *(s.replace("@d4", " +variants") for s in ABLATION_SOURCES)]
        best_peers = [r.name for r in ranked if r.peer][:peers_shown]
        names = [n for n in (*ours, *best_peers) if n in run.roc]
    peers_of = {r.name: r.peer for r in run.results}
    colours = [plt.get_cmap("tab10")(i) for i in range(10)]
    fig, ax = plt.subplots(figsize=(8.5, 4.6), dpi=80)
    for index, name in enumerate(names):
        fpr, recall = run.roc[name]
        ax.step(
            np.maximum(np.asarray(fpr), 1e-9),
            recall,
            where="post",
            color=colours[index % len(colours)],
            linewidth=1.2 if peers_of[name] else 2.2 if index == 0 else 1.6,
            linestyle="--" if peers_of[name] else "-",
            label=name,
        )
    ax.set_xscale("log")
    ax.set_xlim(1e-8, 1e-3)
    ax.set_ylim(0, 1)
    ax.set_xlabel("false-positive rate (pairs of images of different photos)")
    ax.set_ylabel("recall (original vs edited copy)")
    ax.set_title(f"Test half: {run.test_photos} photos, {run.negatives_test:,} negative pairs", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7.5, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
