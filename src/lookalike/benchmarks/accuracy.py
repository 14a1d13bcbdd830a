"""The accuracy benchmark: recall at a fixed precision, per transform family, lookalike vs its peers.

1. Every photo is scaled to a working size and copied through every transform (cached on disk).
2. Every image is hashed by lookalike and by the peers (ImageHash, pdqhash, perception; cached).
3. Photos are split in two halves (stratified by subset, deterministic). On the tuning half, each
   hash or matcher gets the threshold at which precision first drops below the target, over
   positives (each original with each of its copies) and negatives (every pair of images of two
   different photos, copies included). On the test half that threshold gives the recall reported,
   overall and per family, and the precision reached.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lookalike.benchmarks import transforms as transform_registry
from lookalike.benchmarks.corpus import CorpusLayout, build_corpus, find_photos, split_photos
from lookalike.benchmarks.hashers import HashTable
from lookalike.benchmarks.hashing import hash_all
from lookalike.benchmarks.metrics import choose_threshold, operating_point, roc_points
from lookalike.benchmarks.scoring import (
    PairScores,
    PairSet,
    Scorer,
    SourceCache,
    make_pair_set,
    pair_scores,
    preset_scorer,
)
from lookalike.matcher import DEFAULT_PRESET, PRESETS

TARGETS = (0.999, 0.9999)
HEAVY_FAMILIES = ("crop_heavy",)  # left out of the "excluding heavy crops" column

# lookalike's own single hashes measured (fast mode); the preset matchers add what they need.
LOOKALIKE_SPECS = ("ahash", "dhash", "phash", "phash:16", "whash", "colorhash", "pdq")
LOOKALIKE_TRIM_SPECS = ("phash", "phash:16")


def peer_scorers() -> list[Scorer]:
    """The peers: every hash as its library computes it, and the seed article's combination."""
    names = [
        "imagehash:ahash",
        "imagehash:dhash",
        "imagehash:phash",
        "imagehash:whash",
        "imagehash:colorhash",
        "pdqhash:pdq",
        "perception:phash",
        "perception:phash16",
        "perception:dhash",
        "perception:ahash",
        "perception:whash",
        "perception:marrhildreth",
        "perception:blockmean",
        "perception:colormoment",
    ]
    scorers = [Scorer.single(name) for name in names]
    scorers.append(Scorer.single("seed:ahash+colorhash", "imagehash:ahash+imagehash:colorhash"))
    return scorers


# The default preset's ingredients one at a time (with dihedral variants), to show what each adds.
ABLATION_SOURCES = (
    "lookalike:phash:16@d4",
    "lookalike:pdq@d4",
    "lookalike-trim:phash:16@d4",
    "lookalike:phash_eq@d4",
    "lookalike:phash_eq_trimmed@d4",
    "lookalike:phash_eq_trimmed_smooth@d4",
    "lookalike:phash_eq_crops@d4",
)


def lookalike_scorers() -> list[Scorer]:
    singles = [Scorer.single(f"lookalike:{spec}") for spec in LOOKALIKE_SPECS]
    ablation = [Scorer.single(source.replace("@d4", " +variants"), source) for source in ABLATION_SOURCES]
    presets = [preset_scorer(name) for name in PRESETS]
    return singles + ablation + presets


@dataclass
class Result:
    """One scorer's figures: thresholds from the tuning half, recall and precision on the test half."""

    name: str
    peer: bool
    thresholds: dict[str, float] = field(default_factory=dict)  # per target precision, "0.999"
    recall: dict[str, float] = field(default_factory=dict)
    precision: dict[str, float] = field(default_factory=dict)
    false_matches: dict[str, int] = field(default_factory=dict)
    recall_light: dict[str, float] = field(default_factory=dict)  # excluding heavy crops
    family_recall: dict[str, dict[str, float]] = field(default_factory=dict)  # target -> family -> recall
    transform_recall: dict[str, dict[str, float]] = field(default_factory=dict)
    as_shipped: dict[str, float] = field(default_factory=dict)  # presets at their own limits, test half


def evaluate(
    scorer: Scorer, tune: PairScores, test: PairScores, family_of: dict[str, str], peer: bool
) -> Result:
    result = Result(scorer.name, peer)
    families = np.array([family_of[t] for t in test.positive_transforms])
    light = ~np.isin(families, HEAVY_FAMILIES)
    if scorer.is_rule:  # a preset: its own limits are the threshold 1.0 of its scaled score
        shipped = operating_point(test.positives, test.lowest_negatives, 1.0)
        result.as_shipped = {
            "recall": shipped.recall,
            "recall_light": float((test.positives[light] <= 1.0).mean()),
            "precision": shipped.precision,
            "false_matches": shipped.false_matches,
        }
    for target in TARGETS:
        key = f"{target:g}"
        threshold = choose_threshold(tune.positives, tune.lowest_negatives, target)
        point = operating_point(test.positives, test.lowest_negatives, threshold)
        matched = test.positives <= threshold
        result.thresholds[key] = threshold
        result.recall[key] = point.recall
        result.precision[key] = point.precision
        result.false_matches[key] = point.false_matches
        result.recall_light[key] = float(matched[light].mean())
        result.family_recall[key] = {f: float(matched[families == f].mean()) for f in dict.fromkeys(families)}
        result.transform_recall[key] = {
            t: float(matched[test.positive_transforms == t].mean())
            for t in dict.fromkeys(test.positive_transforms)
        }
    return result


@dataclass
class Run:
    """Everything one benchmark run measured."""

    photos: int
    images: int
    tune_photos: int
    test_photos: int
    negatives_test: int
    positives_test: int
    results: list[Result]
    failures: list[str]
    settings: dict[str, object]
    seconds: float
    roc: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)


def run_benchmark(
    photos_dir: Path,
    cache_dir: Path,
    *,
    max_side: int = 512,
    copy_format: str = "jpeg",
    workers: int = 2,
    peers: bool = True,
    limit: int | None = None,
    transform_names: Sequence[str] | None = None,
    log: Callable[[str], None] = print,
) -> Run:
    started = time.perf_counter()
    photos = find_photos(photos_dir)
    if limit:
        photos = photos[:limit]
    chosen = transform_registry.select(transform_names)
    layout = CorpusLayout(cache_dir, max_side, copy_format)
    log(f"{len(photos)} photos x {len(chosen) + 1} images each, cache {layout.folder}")
    skipped: list[str] = []

    def skip(reason: str) -> None:
        skipped.append(reason)
        log(reason)

    images = build_corpus(photos, layout, chosen, workers, on_skip=skip)
    paths = [str(image.path) for image in images]
    specs, trim_specs = _needed_specs()
    tables, failures = hash_all(
        paths,
        layout.folder / "hashes",
        specs,
        trim_specs,
        peers,
        workers,
        progress=lambda what, done: log(f"  hashed {done} images ({what})") if done % 5000 == 0 else None,
    )
    photo_of = [image.photo for image in images]
    transform_of = [image.transform for image in images]
    tune_photos, test_photos = split_photos(photos)
    halves = {
        name: make_pair_set(photo_of, transform_of, members)
        for name, members in (("tune", tune_photos), ("test", test_photos))
    }
    scorers = [(s, False) for s in lookalike_scorers()] + (
        [(s, True) for s in peer_scorers()] if peers else []
    )
    scorers = [(s, peer) for s, peer in scorers if _available(s, tables)]
    family_of = {t.name: t.family for t in chosen}
    scores = {half: _score_all(scorers, tables, pairs, log) for half, pairs in halves.items()}
    results = [
        evaluate(s, scores["tune"][s.name], scores["test"][s.name], family_of, peer) for s, peer in scorers
    ]
    roc = {}
    for s, _ in scorers:
        test = scores["test"][s.name]
        fpr, recall = roc_points(test.positives, test.lowest_negatives, test.negative_count)
        roc[s.name] = (fpr.tolist(), recall.tolist())
    test_pairs = halves["test"]
    used = {image.photo for image in images}
    return Run(
        photos=len(used),
        images=len(images),
        tune_photos=len(used.intersection(tune_photos)),
        test_photos=len(used.intersection(test_photos)),
        negatives_test=test_pairs.negative_count,
        positives_test=len(test_pairs.positive_transforms()),
        results=results,
        failures=skipped + failures,
        settings={"max_side": max_side, "copy_format": copy_format, "transforms": [t.name for t in chosen]},
        seconds=time.perf_counter() - started,
        roc=roc,
    )


def _needed_specs() -> tuple[list[str], list[str]]:
    specs = dict.fromkeys(LOOKALIKE_SPECS)
    for name in PRESETS:
        for table in preset_scorer(name).tables:
            specs[table.partition(":")[2]] = None
    return list(specs), list(LOOKALIKE_TRIM_SPECS)


def _available(scorer: Scorer, tables: dict[str, HashTable]) -> bool:
    return scorer.tables <= set(tables)


def _score_all(
    scorers: Sequence[tuple[Scorer, bool]],
    tables: dict[str, HashTable],
    pairs: PairSet,
    log: Callable[[str], None],
) -> dict[str, PairScores]:
    cache = SourceCache(tables, pairs)
    out = {}
    for scorer, _ in scorers:
        out[scorer.name] = pair_scores(scorer.matrix(cache), pairs)
    log(f"  scored {len(scorers)} hashes and matchers on {len(pairs.rows)} images")
    return out


# ----- reporting --------------------------------------------------------------------------------


def _percent(value: float) -> str:
    return "-" if value != value else f"{100 * value:.1f}"


def markdown_tables(run: Run, target: str = "0.999") -> str:
    """The results as Markdown: the overview, then recall per family, best first."""
    families = transform_registry.families()
    ordered = sorted(run.results, key=lambda r: (-r.recall[target], r.name))
    lines = [
        f"Recall (%) on the test half at the threshold that gives {100 * float(target):g}% precision "
        "on the tuning half.",
        "",
        "| hash / matcher | recall @99.9% | recall @99.99% | excl. heavy crops @99.9% "
        "| precision reached | threshold |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in ordered:
        name = r.name if r.peer else f"**{r.name}**"
        lines.append(
            f"| {name} | {_percent(r.recall['0.999'])} | {_percent(r.recall['0.9999'])} | "
            f"{_percent(r.recall_light['0.999'])} | {_percent(r.precision['0.999'])} | "
            f"{r.thresholds['0.999']:g} |"
        )
    presets = [r for r in run.results if r.as_shipped]
    if presets:
        lines += [
            "",
            "Presets at their own limits, on the test half:",
            "",
            "| preset | recall | excl. heavy crops | precision | false pairs |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for r in presets:
            shipped = r.as_shipped
            lines.append(
                f"| {r.name} | {_percent(shipped['recall'])} | {_percent(shipped['recall_light'])} | "
                f"{100 * shipped['precision']:.3f} | "
                f"{int(shipped['false_matches'])} of {run.negatives_test:,} |"
            )
    lines += ["", "Recall (%) per transform family at 99.9% precision:", ""]
    present = [f for f in families if any(f in r.family_recall[target] for r in run.results)]
    lines.append("| hash / matcher | " + " | ".join(present) + " |")
    lines.append("| --- |" + " ---: |" * len(present))
    for r in ordered:
        name = r.name if r.peer else f"**{r.name}**"
        cells = [_percent(r.family_recall[target].get(f, float("nan"))) for f in present]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


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
        ranked = sorted(run.results, key=lambda r: -r.recall["0.999"])
        ours = [f"lookalike {DEFAULT_PRESET}", *(s.replace("@d4", " +variants") for s in ABLATION_SOURCES)]
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


__all__ = ["DEFAULT_PRESET", "Run", "markdown_tables", "plot_roc", "run_benchmark", "save_run"]
