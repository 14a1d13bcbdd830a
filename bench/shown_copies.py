"""How often the duplicate groups' file check (`lookalike.dedupe.shown_copies`) keeps a true
pair and cuts a false one, on pairs made here from real photos.

True pairs: a photo and each of its edits (whole-picture edits the hashes find, and partial
copies: screenshots, a picture in a picture, a collage). False pairs: screenshots of two
different photos in one app (a chat, a desktop viewer, a phone's viewer), which hash alike. Each
pair is checked as `lookalike dupes` checks it, both pictures at the analysis size.

    python bench/shown_copies.py --photos ../shared/photos --limit 60 --seed 23
"""

from __future__ import annotations

import argparse
import itertools
import random
import tempfile
from collections import Counter
from pathlib import Path

from PIL import Image

from lookalike.benchmarks import transforms
from lookalike.dedupe.fidelity import load_facts
from lookalike.dedupe.shown_copies import Looks, shown_copy

EDITS = (
    "jpeg_20,resize_25,blur,noise,gamma_0.6,text,watermark,logo,frame,pad_white_25,squash,"
    "crop_uneven_heavy,rotate_crop,perspective,screenshot_chat,screenshot_desktop,screenshot,pip,collage"
)
APPS = ("screenshot_chat", "screenshot_desktop", "screenshot")
SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def _picture(path: Path) -> Image.Image:
    with Image.open(path) as image:
        picture = image.convert("RGB")
    picture.thumbnail((512, 512))
    return picture


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=60, help="photos (true pairs: each with every edit)")
    parser.add_argument("--apps", type=int, default=40, help="photos whose app screenshots are paired")
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--edits", default=EDITS)
    args = parser.parse_args()
    photos = sorted(p for p in args.photos.rglob("*") if p.suffix.lower() in SUFFIXES)
    random.Random(args.seed).shuffle(photos)
    count = max(args.limit, args.apps)
    pictures = [_picture(path) for path in photos[: count + 3]]
    held: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    screens: dict[str, list[Looks]] = {app: [] for app in APPS}
    with tempfile.TemporaryDirectory(prefix="lookalike-shown-") as folder:

        def looks(picture: Image.Image, name: str) -> Looks:
            path = Path(folder) / f"{name}.jpg"
            picture.save(path, quality=92)
            return Looks(load_facts(str(path)))

        for number in range(count):
            photo = looks(pictures[number], "photo")
            for name in args.edits.split(",") if number < args.limit else ():
                edit = transforms.get_transform(name)
                donors = pictures[number + 1 : number + 1 + edit.donors]
                copy = looks(edit(pictures[number], seed=args.seed, donors=donors), f"{name}-{number}")
                seen[name] += 1
                held[name] += shown_copy(photo, copy)
            for app in APPS if number < args.apps else ():
                screens[app].append(
                    looks(transforms.get_transform(app)(pictures[number], seed=args.seed), f"{app}-{number}")
                )
        print("| pair | pairs | held |")
        print("| --- | ---: | ---: |")
        for name in seen:
            print(f"| photo ~ {name} | {seen[name]} | {held[name]} ({100 * held[name] / seen[name]:.1f}%) |")
        for app, shots in screens.items():
            pairs = list(itertools.combinations(shots, 2))
            false = sum(shown_copy(one, other) for one, other in pairs)
            share = 100 * false / max(1, len(pairs))
            print(f"| two photos' {app} (false) | {len(pairs)} | {false} ({share:.1f}%) |")


if __name__ == "__main__":
    main()
