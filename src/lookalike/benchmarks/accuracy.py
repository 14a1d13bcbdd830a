"""The accuracy benchmark: recall at a fixed precision, per transform family, lookalike vs its peers.

1. Every photo is scaled to a working size and copied through every transform (cached on disk);
   composites (picture in picture, collages) take their other photos from the other half.
2. Every image is hashed by lookalike and by the peers (ImageHash, pdqhash, perception; cached).
3. Photos are split in two halves (stratified by subset, deterministic). On the tuning half, each
   hash or matcher gets the threshold at which precision first drops below the target, over
   positives (each original with each of its copies) and negatives (every pair of images of two
   different photos, copies included). On the test half that threshold gives the recall reported,
   overall and per family, and the precision reached.
4. With `index_eval`, the rules are also run as an index runs them (`index_eval`: the test half's
   images in a SQLite index with local features, `Index.duplicates(matcher=...)`), which is the
   only way a rule with a local clause can be measured; beside each, the best peer at the
   precision that rule reached.
5. Hard negatives (`hard_negatives`: two photos of one place) are reported apart, per matcher.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lookalike.benchmarks import transforms as transform_registry
from lookalike.benchmarks.corpus import (
    BenchImage,
    CorpusLayout,
    Photo,
    build_corpus,
    find_photos,
    split_photos,
)
from lookalike.benchmarks.hard_negatives import HardNegative, present_pairs
from lookalike.benchmarks.hashers import HashTable
from lookalike.benchmarks.hashing import hash_all
from lookalike.benchmarks.index_eval import IndexRun, evaluate_half, evaluated_rules, matched_pairs
from lookalike.benchmarks.metrics import OperatingPoint, choose_threshold, operating_point, roc_points
from lookalike.benchmarks.scoring import (
    PairScores,
    PairSet,
    Scorer,
    SourceCache,
    make_pair_set,
    pair_kinds,
    pair_scores,
    preset_scorer,
)
from lookalike.matcher import PRESETS

TARGETS = (0.999, 0.9999)
HEAVY_FAMILIES = ("crop_heavy",)  # left out of the "excluding heavy crops" column
PARTIAL_FAMILIES = transform_registry.PARTIAL_FAMILIES  # issue 18's partial copies, reported apart
OWN_LIMITS = "own limits"  # a preset's figures at its own limits, beside those at each target

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
    """One scorer's figures: thresholds from the tuning half, recall and precision on the test half.
    Recall is given over every edit, over the whole-image edits (`recall_whole`: every family
    but the partial copies, as the benchmark had before them), over those without 20% crops
    (`recall_light`) and over the partial copies alone (`recall_partial`)."""

    name: str
    peer: bool
    thresholds: dict[str, float] = field(default_factory=dict)  # per target precision, "0.999"
    recall: dict[str, float] = field(default_factory=dict)
    precision: dict[str, float] = field(default_factory=dict)
    false_matches: dict[str, int] = field(default_factory=dict)
    recall_whole: dict[str, float] = field(default_factory=dict)
    recall_light: dict[str, float] = field(default_factory=dict)
    recall_partial: dict[str, float] = field(default_factory=dict)
    # target (or OWN_LIMITS for a preset) -> family -> recall
    family_recall: dict[str, dict[str, float]] = field(default_factory=dict)
    transform_recall: dict[str, dict[str, float]] = field(default_factory=dict)
    as_shipped: dict[str, float] = field(default_factory=dict)  # presets at their own limits, test half
    false_kinds: dict[str, int] = field(default_factory=dict)  # a preset's false pairs by kind (own limits)
    # hard negative pairs (their subjects) matched: at each target's threshold, and "own limits"
    hard_negatives: dict[str, list[str]] = field(default_factory=dict)


def _shares(matched: npt.NDArray[np.bool_], families: npt.NDArray[np.str_]) -> dict[str, float]:
    """Recall over every edit and over the subsets the overview reports."""
    partial = np.isin(families, PARTIAL_FAMILIES)
    light = ~partial & ~np.isin(families, HEAVY_FAMILIES)

    def share(mask: npt.NDArray[np.bool_]) -> float:
        return float(matched[mask].mean()) if mask.any() else float("nan")

    return {
        "recall": share(np.ones_like(matched)),
        "recall_whole": share(~partial),
        "recall_light": share(light),
        "recall_partial": share(partial),
    }


def _per_family(matched: npt.NDArray[np.bool_], families: npt.NDArray[np.str_]) -> dict[str, float]:
    return {str(f): float(matched[families == f].mean()) for f in dict.fromkeys(families.tolist())}


def at_precision(
    tune: PairScores, test: PairScores, target: float
) -> tuple[OperatingPoint, npt.NDArray[np.bool_]]:
    """The threshold that gives `target` precision on the tuning half, applied to the test
    half: its operating point and which test positives it matches."""
    threshold = choose_threshold(tune.positives, tune.lowest_negatives, target)
    return operating_point(test.positives, test.lowest_negatives, threshold), test.positives <= threshold


def evaluate(
    scorer: Scorer, tune: PairScores, test: PairScores, family_of: dict[str, str], peer: bool
) -> Result:
    result = Result(scorer.name, peer)
    families = np.array([family_of[t] for t in test.positive_transforms])
    if scorer.is_rule:  # a preset: its own limits are the threshold 1.0 of its scaled score
        shipped = operating_point(test.positives, test.lowest_negatives, 1.0)
        result.as_shipped = {
            **_shares(test.positives <= 1.0, families),
            "precision": shipped.precision,
            "false_matches": shipped.false_matches,
        }
        result.family_recall[OWN_LIMITS] = _per_family(test.positives <= 1.0, families)
        result.false_kinds = pair_kinds(test.matched_negatives or [], family_of)
    for target in TARGETS:
        key = f"{target:g}"
        point, matched = at_precision(tune, test, target)
        result.thresholds[key] = point.threshold
        result.recall[key] = point.recall
        result.precision[key] = point.precision
        result.false_matches[key] = point.false_matches
        for name, value in _shares(matched, families).items():
            if name != "recall":
                getattr(result, name)[key] = value
        result.family_recall[key] = _per_family(matched, families)
        result.transform_recall[key] = {
            t: float(matched[test.positive_transforms == t].mean())
            for t in dict.fromkeys(test.positive_transforms)
        }
    return result


@dataclass
class PeerAtPrecision:
    """The peer with the best recall at the precision a rule reached on the index path: its
    threshold chosen for that precision on the tuning half, scored on the test half."""

    rule: str
    target: float
    peer: str
    threshold: float
    recall: float
    precision: float
    family_recall: dict[str, float]


def best_peer_at(
    rule: str,
    target: float,
    peers: Sequence[str],
    scores: Mapping[str, Mapping[str, PairScores]],
    family_of: Mapping[str, str],
) -> PeerAtPrecision | None:
    """The best of `peers` at `target` precision (None if no peer, or the target is unknown)."""
    best: PeerAtPrecision | None = None
    for name in peers:
        tune, test = scores["tune"][name], scores["test"][name]
        point, matched = at_precision(tune, test, target)
        if best is None or point.recall > best.recall:
            families = np.array([family_of[t] for t in test.positive_transforms])
            per_family = {f: float(matched[families == f].mean()) for f in dict.fromkeys(families)}
            best = PeerAtPrecision(
                rule, target, name, point.threshold, point.recall, point.precision, per_family
            )
    return best if target == target else None


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
    hard_negatives: list[dict[str, str]] = field(default_factory=list)  # subject, first, second
    index: IndexRun | None = None  # the index path on the test half
    index_peers: list[PeerAtPrecision] = field(default_factory=list)
    index_hard_negatives: dict[str, list[str]] = field(default_factory=dict)  # rule -> subjects matched


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
    index_eval: bool = False,
    index_rules: Sequence[str] = (),
    log: Callable[[str], None] = print,
) -> Run:
    """Measure every scorer (and with `index_eval`, every preset and `index_rules` through an
    index) on the photos under `photos_dir`; copies and hashes are cached under `cache_dir`."""
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

    tune_photos, test_photos = split_photos(photos)
    images: list[BenchImage] = build_corpus(
        photos, layout, chosen, workers, on_skip=skip, donor_pool=other_half(tune_photos, test_photos)
    )
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
    donors_of = [image.donors for image in images]
    halves = {
        name: make_pair_set(photo_of, transform_of, members, donors_of)
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
    hard_rows, hard = _hard_negative_originals(photos, images)
    _hard_negative_matches([s for s, _ in scorers], results, tables, hard_rows, hard)
    test_pairs = halves["test"]
    used = {image.photo for image in images}
    run = Run(
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
        hard_negatives=[
            {"subject": pair.subject, "first": pair.first, "second": pair.second} for _, _, pair in hard
        ],
    )
    if index_eval:
        with tempfile.TemporaryDirectory(prefix="lookalike-index-eval-") as folder:
            rules = evaluated_rules(index_rules)
            test_paths = [paths[row] for row in test_pairs.rows]
            cache = layout.folder / "index-hashes.sqlite"
            run.index = evaluate_half(
                "test",
                test_paths,
                test_pairs,
                family_of,
                rules,
                Path(folder),
                workers=workers,
                cache=cache,
                log=log,
            )
            found = matched_pairs([paths[row] for row in hard_rows], hard, rules, Path(folder))
        run.index_hard_negatives = {rule: [pair.subject for pair in pairs] for rule, pairs in found.items()}
        peer_names = [s.name for s, peer in scorers if peer]
        for result in run.index.results:
            best = best_peer_at(result.name, result.scores.precision, peer_names, scores, family_of)
            if best is not None:
                run.index_peers.append(best)
    run.seconds = time.perf_counter() - started
    return run


def _hard_negative_originals(
    photos: Sequence[Photo], images: Sequence[BenchImage]
) -> tuple[list[int], list[tuple[int, int, HardNegative]]]:
    """The original images (rows of `images`) of the hard-negative photos present, and each pair
    as two positions in that list."""
    originals = {image.photo: row for row, image in enumerate(images) if image.transform is None}
    present = [(a, b, pair) for a, b, pair in present_pairs(photos) if a in originals and b in originals]
    rows = sorted({originals[photo] for a, b, _ in present for photo in (a, b)})
    position = {row: number for number, row in enumerate(rows)}
    return rows, [(position[originals[a]], position[originals[b]], pair) for a, b, pair in present]


def _hard_negative_matches(
    scorers: Sequence[Scorer],
    results: Sequence[Result],
    tables: dict[str, HashTable],
    rows: Sequence[int],
    wanted: Sequence[tuple[int, int, HardNegative]],
) -> None:
    """Fill each result's `hard_negatives`: the subjects of the pairs of original photos in
    `wanted` (positions in `rows`) its score matches at each target's threshold (and a preset at
    its own limits)."""
    if not wanted:
        return
    originals = PairSet(np.asarray(rows, dtype=np.intp), np.arange(len(rows) + 1), np.array([""] * len(rows)))
    cache = SourceCache(tables, originals)
    for scorer, result in zip(scorers, results, strict=True):
        score = scorer.matrix(cache)
        limits = {key: result.thresholds[key] for key in result.thresholds}
        if scorer.is_rule:
            limits[OWN_LIMITS] = 1.0
        result.hard_negatives = {
            key: [pair.subject for a, b, pair in wanted if score[a, b] <= limit]
            for key, limit in limits.items()
        }


def other_half(tune: Sequence[int], test: Sequence[int]) -> Callable[[int], Sequence[int]]:
    """The donor pool of a photo's composites: the photos of the other half, so that a donor is
    never among the photos a composite is scored against."""
    in_tune = set(tune)
    return lambda photo: test if photo in in_tune else tune


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
        out[scorer.name] = pair_scores(
            scorer.matrix(cache), pairs, matched_within=1.0 if scorer.is_rule else None
        )
    log(f"  scored {len(scorers)} hashes and matchers on {len(pairs.rows)} images")
    return out
