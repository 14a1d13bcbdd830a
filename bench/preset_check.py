"""A matcher preset at its own limits on a folder of photos it was not tuned on.

    python bench/preset_check.py --photos DIR [--preset near-duplicate]

(docs/accuracy.md runs it on scikit-image's bundled pictures: `--photos .venv/lib/python3.11/
site-packages/skimage/data`.)

Every photo gets the accuracy benchmark's edits (composites take other photos of the folder); the
preset (no threshold chosen here) is scored on every original/copy pair (recall, overall and per
family) and on every pair of images of two different photos that show no photo in common (the
false pairs, named, so a reader can look at them).
"""

from __future__ import annotations

import argparse
import collections
import tempfile
from pathlib import Path

import numpy as np

from lookalike.benchmarks.accuracy import HEAVY_FAMILIES
from lookalike.benchmarks.corpus import CorpusLayout, build_corpus, find_photos
from lookalike.benchmarks.hashing import hash_all
from lookalike.benchmarks.scoring import SourceCache, make_pair_set, preset_scorer
from lookalike.benchmarks.transforms import TRANSFORMS
from lookalike.matcher import DEFAULT_PRESET


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--preset", default=DEFAULT_PRESET)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "lookalike-preset-check")
    parser.add_argument("--max-side", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    photos = find_photos(args.photos)
    layout = CorpusLayout(args.cache, args.max_side)
    images = build_corpus(photos, layout, TRANSFORMS, args.workers)
    paths = [str(image.path) for image in images]
    scorer = preset_scorer(args.preset)
    specs = [table.partition(":")[2] for table in sorted(scorer.tables)]
    tables, failures = hash_all(paths, layout.folder / "hashes", specs, [], False, args.workers)
    pairs = make_pair_set(
        [i.photo for i in images],
        [i.transform for i in images],
        range(len(photos)),
        [i.donors for i in images],
    )
    score = scorer.matrix(SourceCache(tables, pairs))

    family_of = {t.name: t.family for t in TRANSFORMS}
    blocks = zip(pairs.starts[:-1], pairs.starts[1:], strict=True)
    found = np.concatenate([score[s, s + 1 : e] for s, e in blocks]) <= 1.0
    families = np.array([family_of[t] for t in pairs.positive_transforms()])
    light = ~np.isin(families, HEAVY_FAMILIES)
    photo_of_row = np.array([images[row].photo for row in pairs.rows])
    different = photo_of_row[:, None] < photo_of_row[None, :]
    different[pairs.excluded[:, 0], pairs.excluded[:, 1]] = False  # composites showing a photo in common
    false_rows, false_cols = np.nonzero(different & (score <= 1.0))
    named = collections.Counter(
        (photos[photo_of_row[a]].path.stem, photos[photo_of_row[b]].path.stem)
        for a, b in zip(false_rows, false_cols, strict=True)
    )

    photo_count = len(set(photo_of_row.tolist()))
    print(f"{photo_count} photos, {len(found)} copies, preset {args.preset!r}; failures: {len(failures)}")
    print(f"recall {100 * found.mean():.1f}% ({100 * found[light].mean():.1f}% without 20% crops)")
    print(
        "per family: "
        + ", ".join(f"{f} {100 * found[families == f].mean():.0f}%" for f in dict.fromkeys(families))
    )
    print(f"pairs of images of different photos: {int(different.sum()):,}, matched {len(false_rows):,}")
    for (a, b), count in named.most_common():
        print(f"  {a} ~ {b}: {count}")


if __name__ == "__main__":
    main()
