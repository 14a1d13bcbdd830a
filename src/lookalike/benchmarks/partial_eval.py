"""A fast run of the index path on the partial-copy families: a sample of the test half's photos.

The full accuracy benchmark (`lookalike bench accuracy --index-eval`) indexes 15,048 images and
runs every preset's duplicate search, about two hours here. Working on picture in picture,
collages and screenshots needs an answer in minutes: this takes a fixed sample of the test half's
photos (the same donors, so the copies come from the benchmark's cache), their originals and the
copies of a few families, indexes them as the benchmark does (SQLite, stored variants, local
features), and scores each rule's duplicate search on them, with the hard negatives. Rules are
compared in one run, on one index.

    python -m lookalike.benchmarks.partial_eval --photos ../shared/photos --sample 150 \\
        --rule partial-copy --rule "<another rule>"
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from lookalike.benchmarks import corpus
from lookalike.benchmarks import transforms as transform_registry
from lookalike.benchmarks.accuracy import _hard_negative_originals, other_half
from lookalike.benchmarks.index_eval import evaluate_half, matched_pairs
from lookalike.benchmarks.scoring import make_pair_set
from lookalike.matcher import PRESETS, Matcher

DEFAULT_TRANSFORMS = (
    "crop_left_20",
    "crop_centre_20",
    "crop_uneven_heavy",
    "pip",
    "collage",
    "screenshot_chat",
    "screenshot_desktop",
    "screenshot",
)


def _sample(
    photos_dir: Path, cache_dir: Path, sample: int, transform_names: Sequence[str], workers: int, seed: int
) -> tuple[list[corpus.Photo], list[corpus.BenchImage], corpus.CorpusLayout, list[int]]:
    """The photos, every benchmark image (the full run's donors, so its cached copies), the cache
    layout and the sampled test-half photos."""
    photos = corpus.find_photos(photos_dir)
    tune, test = corpus.split_photos(photos)
    chosen = transform_registry.select(transform_names)
    layout = corpus.CorpusLayout(cache_dir, 512, "jpeg")
    images = corpus.build_corpus(photos, layout, chosen, workers, donor_pool=other_half(tune, test))
    picked = sorted(random.Random(seed).sample(sorted(test), min(sample, len(test))))
    return photos, images, layout, picked


def run(
    photos_dir: Path,
    cache_dir: Path,
    sample: int,
    rules: dict[str, Matcher],
    transform_names: Sequence[str] = DEFAULT_TRANSFORMS,
    workers: int = 2,
    seed: int = 1,
) -> None:
    photos, images, layout, picked = _sample(photos_dir, cache_dir, sample, transform_names, workers, seed)
    chosen = transform_registry.select(transform_names)
    pairs = make_pair_set(
        [i.photo for i in images], [i.transform for i in images], picked, [i.donors for i in images]
    )
    paths = [str(images[row].path) for row in pairs.rows]
    family_of = {t.name: t.family for t in chosen}
    print(f"{len(picked)} test photos, {len(paths)} images, transforms: {', '.join(transform_names)}")
    with tempfile.TemporaryDirectory(prefix="lookalike-partial-eval-") as folder:
        started = time.perf_counter()
        result = evaluate_half(
            "test",
            paths,
            pairs,
            family_of,
            rules,
            Path(folder),
            workers=workers,
            cache=layout.folder / "index-hashes.sqlite",
            files=True,
        )
        hard_rows, hard = _hard_negative_originals(photos, images)
        found = matched_pairs([str(images[row].path) for row in hard_rows], hard, rules, Path(folder))
    print(f"indexed in {result.index_seconds:.0f} s; total {time.perf_counter() - started:.0f} s")
    families = list(dict.fromkeys(family_of.values()))
    print("| rule | " + " | ".join(families) + " | recall | false pairs | hard negatives | search (s) |")
    print("| --- |" + " ---: |" * (len(families) + 4))
    for outcome in result.results:
        scores = outcome.scores
        cells = [f"{100 * scores.family_recall.get(f, float('nan')):.1f}" for f in families]
        print(
            f"| {outcome.name} | {' | '.join(cells)} | {100 * scores.recall:.1f} | {scores.false_pairs} "
            f"| {len(found[outcome.name]) if outcome.name in found else '-'} | {outcome.seconds:.0f} |"
        )
    for outcome in result.results:
        if outcome.scores.false_kinds:
            print(f"{outcome.name}: false pairs by kind {outcome.scores.false_kinds}")
            for first, second in outcome.scores.false_examples[:4]:
                print(f"    {first}  ~  {second}")


def search(
    photos_dir: Path,
    cache_dir: Path,
    sample: int,
    rules: dict[str, Matcher],
    transform_names: Sequence[str] = DEFAULT_TRANSFORMS,
    workers: int = 2,
    seed: int = 1,
    reverse: bool = False,
) -> None:
    """Query-to-index: the sample's originals in an index (with local features), each copy a
    query with its 1,000 query keypoints and variants (`Index.match_many`, what `lookalike search`
    runs); the share of copies whose original each rule finds, per family, and the wrong photos.
    With `reverse`, the copies are the index and each original the query (where is my photo
    used?): the share of copies their original finds, and the images found that show another
    photo."""
    from lookalike.discover import file_key
    from lookalike.hash_cache import HashCache
    from lookalike.index import open_index
    from lookalike.matcher import default_index_hashes
    from lookalike.pipeline import hash_files

    _, images, layout, picked = _sample(photos_dir, cache_dir, sample, transform_names, workers, seed)
    chosen = transform_registry.select(transform_names)
    originals = {str(i.path): i.photo for i in images if i.photo in picked and i.transform is None}
    copies = [i for i in images if i.photo in picked and i.transform is not None]
    photo_of_key = {file_key(path): photo for path, photo in originals.items()}
    family_of = {t.name: t.family for t in chosen}
    hashes = list(
        dict.fromkeys([*default_index_hashes(), *(a for r in rules.values() for a in r.algorithms)])
    )
    cache = HashCache(layout.folder / "index-hashes.sqlite")
    try:
        with (
            tempfile.TemporaryDirectory(prefix="lookalike-partial-search-") as folder,
            open_index(str(Path(folder) / "index.db")) as index,
        ):
            stored_paths = [str(i.path) for i in copies] if reverse else list(originals)
            query_paths = list(originals) if reverse else [str(i.path) for i in copies]
            index.add_files(stored_paths, hashes, local=True, dihedral=True, workers=workers, cache=cache)
            # queries hashed afresh, as `lookalike search` hashes them: a search's 1,000 keypoints
            # and the finer set, where a cached result would carry the 96 an index stores
            results = dict(hash_files(query_paths, hashes, dihedral=True, local="query", workers=workers))
            queries = [results[path] for path in query_paths]
            print(f"{len(stored_paths)} images indexed, {len(queries)} queries")
            copy_of_key = {file_key(str(i.path)): i for i in copies}
            for name, rule in rules.items():
                started = time.perf_counter()
                verdicts = index.match_many(queries, rule, dihedral=True)  # type: ignore[arg-type]
                seconds = time.perf_counter() - started
                hits: dict[str, list[bool]] = {}
                wrong = 0
                if reverse:
                    found_by: dict[str, set[str]] = {}
                    for path, found in zip(query_paths, verdicts, strict=True):
                        photo = originals[path]
                        for verdict in found:
                            copy = copy_of_key.get(verdict.key)
                            if copy is None or photo not in (copy.photo, *copy.donors):
                                wrong += 1
                            elif copy.photo == photo:
                                found_by.setdefault(verdict.key, set()).add(path)
                    for image in copies:
                        hit = bool(found_by.get(file_key(str(image.path))))
                        hits.setdefault(family_of[str(image.transform)], []).append(hit)
                else:
                    for image, found in zip(copies, verdicts, strict=True):
                        shown = {photo_of_key.get(v.key, -1) for v in found}
                        hits.setdefault(family_of[str(image.transform)], []).append(image.photo in shown)
                        wrong += len(shown - {image.photo, *image.donors})
                cells = ", ".join(f"{f} {100 * sum(h) / len(h):.1f}" for f, h in hits.items())
                print(f"{name}: {cells}; wrong photos {wrong}; {seconds:.0f} s")
    finally:
        cache.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache/lookalike/accuracy")
    parser.add_argument("--sample", type=int, default=150, help="test-half photos (fixed seed)")
    parser.add_argument("--transforms", default=",".join(DEFAULT_TRANSFORMS))
    parser.add_argument("--rule", action="append", default=[], help="preset name or rule (repeatable)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--search", action="store_true", help="query-to-index: copies searched against originals"
    )
    parser.add_argument(
        "--reverse",
        action="store_true",
        help="query-to-index the other way: each original searched against an index of the copies",
    )
    args = parser.parse_args(argv)
    names = args.rule or ["partial-copy"]
    rules = {name: Matcher.parse(PRESETS.get(name, name)) for name in names}
    chosen = args.transforms.split(",")
    if args.search or args.reverse:
        search(args.photos, args.cache, args.sample, rules, chosen, args.workers, args.seed, args.reverse)
    else:
        run(args.photos, args.cache, args.sample, rules, chosen, args.workers, args.seed)


if __name__ == "__main__":
    main()
