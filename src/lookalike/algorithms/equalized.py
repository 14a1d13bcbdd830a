"""Equalised pHash: pHash of a histogram-equalised thumbnail, whole, border-trimmed, or with crops.

Equalising the 64x64 grayscale thumbnail before the DCT makes the hash invariant to any monotonic
change of tone (gamma, brightness, contrast) and spreads dark or washed-out pictures over the
whole range, so their structure, not a logo or a bright corner, decides the bits. On the accuracy
benchmark (docs/accuracy.md) this alone lifts pHash 16x16's recall at 99.9% precision from 48% to
55%, with a looser threshold that holds on held-out photos.

Four algorithms share it, so an index stores them side by side and a matcher rule reads any:

    phash_eq            the whole image; dihedral variants
    phash_eq_trimmed    the image without its uniform borders (lookalike.trim); dihedral variants
    phash_eq_trimmed_smooth   the image without its uniform or textureless borders (blurred bars
                        of a "blur fill" letterbox, and smooth skies alike); dihedral variants
    phash_eq_crops      the whole image's hash, carrying as query variants the hashes of 21 crops
                        of it (off one side, two opposite sides or all round, 7-25%; the 10
                        lightest mirrored too) and of 4 small rotations (+-4 and +-8 degrees), so
                        a query finds the stored copies cut from it, mirrored and cut, or tilted
    phash_eq_regions    the whole image's hash, carrying as query variants the hashes of the
                        pictures inside it (lookalike.regions: a collage's cells, the photo in a
                        screenshot or pasted into another photo), so a composite finds the photos
                        it shows; stored, they are searched with the query's own hash too
                        (lookalike.candidates.stored_variants), so a photo finds the composites
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from PIL import Image

from lookalike.algorithms.dihedral import DIHEDRAL_NAMES
from lookalike.algorithms.perceptual import (
    HIGHFREQ_FACTOR,
    dihedral_hashes_from_dct,
    perceptual_bits_from_dct,
    perceptual_dct,
)
from lookalike.algorithms.registry import Algorithm, register
from lookalike.candidates.keys import dct_layout
from lookalike.hash import Hash
from lookalike.regions import REGION_BOXES, REGIONS_REVISION, propose_regions
from lookalike.trim import TRIM_BOX, TRIM_REVISION, Box, trim_box

if TYPE_CHECKING:
    from lookalike.prepare import ImageView

# A coarse grid, deliberately not the accuracy benchmark's own crop sizes (5, 10, 20%): a crop
# between two grid steps is at most half a step from one of them, which the hash tolerates.
CROP_FRACTIONS: tuple[float, ...] = (0.07, 0.14, 0.25)
CROP_PLACES: tuple[str, ...] = ("left", "right", "top", "bottom", "left+right", "top+bottom", "around")
# Small rotations (degrees, black corners, as a tilted scan or photo of a print has): the hash
# tolerates about 2.5 degrees, so steps of 4 cover tilts up to about 10 degrees either way.
TILT_ANGLES: tuple[float, ...] = (4.0, -4.0, 8.0, -8.0)
MIRROR = DIHEDRAL_NAMES.index("flip_left_right")
# The crops whose mirror image the query carries too: the light ones (each variant is one more
# chance for a different picture to match, so not all 21).
MIRRORED_CUTS = frozenset(
    (place, fraction)
    for place in ("left", "right", "top", "bottom", "around")
    for fraction in CROP_FRACTIONS[:2]
)


def equalize(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Histogram equalisation of 8-bit grayscale pixels, bit for bit Pillow's `ImageOps.equalize`
    (the same rounding of its lookup table), in NumPy at half its cost."""
    histogram = np.bincount(pixels.ravel(), minlength=256)
    used = histogram[histogram > 0]
    step = (int(used.sum()) - int(used[-1])) // 255 if used.size > 1 else 0
    if step == 0:
        return pixels
    before = np.cumsum(histogram) - histogram  # pixels darker than each level
    table = np.minimum((step // 2 + before) // step, 255).astype(np.uint8)
    equalized: npt.NDArray[np.uint8] = table[pixels]
    return equalized


def equalized_dct(gray: Image.Image, hash_size: int) -> npt.NDArray[np.float64]:
    """DCT of the (4N x 4N) LANCZOS thumbnail of a grayscale image after histogram equalisation."""
    side = hash_size * HIGHFREQ_FACTOR
    thumbnail = gray.resize((side, side), Image.Resampling.LANCZOS)
    return perceptual_dct(equalize(np.asarray(thumbnail)))


def crop_box(size: tuple[int, int], place: str, fraction: float) -> tuple[int, int, int, int]:
    """The box left after cutting `fraction` of the image off one side, or `fraction / 2` off each
    of two opposite sides (bars, padding) or of all four ("around")."""
    width, height = size
    dx, dy = round(width * fraction), round(height * fraction)
    hx, hy = dx // 2, dy // 2
    boxes = {
        "left": (dx, 0, width, height),
        "right": (0, 0, width - dx, height),
        "top": (0, dy, width, height),
        "bottom": (0, 0, width, height - dy),
        "left+right": (hx, 0, width - hx, height),
        "top+bottom": (0, hy, width, height - hy),
        "around": (hx, hy, width - hx, height - hy),
    }
    return boxes[place]


def _box_dct(view: ImageView, box: Box, hash_size: int) -> npt.NDArray[np.float64]:
    """The equalised DCT of a region of the grayscale image, computed once per view and box (an
    image without borders has one box for the whole, trimmed and smooth-trimmed hashes)."""

    def compute() -> npt.NDArray[np.float64]:
        gray = view.gray_image()
        return equalized_dct(gray if box == (0, 0, *gray.size) else gray.crop(box), hash_size)

    return view.memo(("phash-eq", box, hash_size), compute)


def _whole_dct(view: ImageView, hash_size: int) -> npt.NDArray[np.float64]:
    return _box_dct(view, (0, 0, *view.gray_image().size), hash_size)


def _trimmed_dct(view: ImageView, hash_size: int) -> npt.NDArray[np.float64]:
    return _box_dct(view, view.memo(TRIM_BOX, lambda: trim_box(view.gray_image())), hash_size)


def _smooth_trimmed_dct(view: ImageView, hash_size: int) -> npt.NDArray[np.float64]:
    box = view.memo("smooth-trim-box", lambda: trim_box(view.gray_image(), smooth=True))
    return _box_dct(view, box, hash_size)


def _hash(dct_of: Callable[[ImageView, int], npt.NDArray[np.float64]]) -> Callable[[ImageView, int], Hash]:
    def compute(view: ImageView, hash_size: int) -> Hash:
        return Hash.from_bits(perceptual_bits_from_dct(dct_of(view, hash_size), hash_size))

    return compute


def _dihedral(
    dct_of: Callable[[ImageView, int], npt.NDArray[np.float64]],
) -> Callable[[ImageView, int], list[Hash]]:
    def variants(view: ImageView, hash_size: int) -> list[Hash]:
        return dihedral_hashes_from_dct(dct_of(view, hash_size), hash_size)

    return variants


def _crop_base(gray: Image.Image, hash_size: int) -> Image.Image:
    """The grayscale image the crops and tilts are cut from: box-filtered down until its shorter
    side is twice the thumbnail side, which keeps every crop's thumbnail sharp and makes its 25
    LANCZOS resizes cheap (their cost grows with the pixels they read)."""
    side = 2 * hash_size * HIGHFREQ_FACTOR
    width, height = gray.size
    shorter = min(width, height)
    if shorter <= side:
        return gray
    size = (max(1, round(width * side / shorter)), max(1, round(height * side / shorter)))
    return gray.resize(size, Image.Resampling.BOX)


def _with_crops(view: ImageView, hash_size: int) -> Hash:
    gray = _crop_base(view.gray_image(), hash_size)
    whole = Hash.from_bits(perceptual_bits_from_dct(_whole_dct(view, hash_size), hash_size))
    cuts = [(place, fraction) for fraction in CROP_FRACTIONS for place in CROP_PLACES]
    regions = [gray.crop(crop_box(gray.size, place, fraction)) for place, fraction in cuts]
    regions += [gray.rotate(angle, Image.Resampling.BILINEAR, fillcolor=0) for angle in TILT_ANGLES]
    variants = [whole]
    mirrored = []  # a mirrored copy cut down a little ("flip and crop", to dodge hash lists)
    for index, region in enumerate(regions):
        dct = equalized_dct(region, hash_size)
        variants.append(Hash.from_bits(perceptual_bits_from_dct(dct, hash_size)))
        if index < len(cuts) and cuts[index] in MIRRORED_CUTS:
            mirrored += dihedral_hashes_from_dct(dct, hash_size, [MIRROR])
    return whole.with_variants(variants + mirrored)


def region_boxes(view: ImageView) -> list[Box]:
    """The pictures inside the image (`lookalike.regions.propose_regions`, found on its colours), in
    the pixels of the view's image, memoised per view."""
    return view.memo(REGION_BOXES, lambda: propose_regions(np.asarray(view.rgb_image())))


def _with_regions(view: ImageView, hash_size: int) -> Hash:
    whole = Hash.from_bits(perceptual_bits_from_dct(_whole_dct(view, hash_size), hash_size))
    boxes = region_boxes(view)
    if not boxes:
        return whole
    return whole.with_variants(
        [
            whole,
            *(
                Hash.from_bits(perceptual_bits_from_dct(_box_dct(view, box, hash_size), hash_size))
                for box in boxes
            ),
        ]
    )


def _register(
    name: str,
    summary: str,
    compute: Callable[[ImageView, int], Hash],
    dct_of: Callable[[ImageView, int], npt.NDArray[np.float64]] | None,
    revision: int = 1,
    stored_variants_searched: bool = False,
) -> Algorithm:
    """Register one member of the family; `dct_of` gives it dihedral variants."""
    return register(
        Algorithm(
            name=name,
            summary=summary,
            param_name="hash_size",
            default_param=16,
            valid_params=lambda n: 4 <= n <= 32,
            nbits=lambda n: n * n,
            compute=compute,
            working_side=lambda n: max(128, 16 * n),
            max_distance=lambda n: max(1, round(n * n * 56 / 256)),
            dihedral=None if dct_of is None else _dihedral(dct_of),
            revision=revision,
            candidate_layout=dct_layout,
            candidate_family="phash_eq",  # one geometry: trimmed, cropped and whole hashes meet
            stored_variants_searched=stored_variants_searched,
        )
    )


PHASH_EQ = _register(
    "phash_eq", "pHash (16x16 by default) of the histogram-equalised thumbnail", _hash(_whole_dct), _whole_dct
)
PHASH_EQ_TRIMMED = _register(
    "phash_eq_trimmed",
    "equalised pHash of the image without its uniform borders (bars, padding, frames)",
    _hash(_trimmed_dct),
    _trimmed_dct,
    revision=TRIM_REVISION,  # its output follows the trimming rule
)
PHASH_EQ_TRIMMED_SMOOTH = _register(
    "phash_eq_trimmed_smooth",
    "equalised pHash of the image without its uniform or textureless borders (blurred bars too)",
    _hash(_smooth_trimmed_dct),
    _smooth_trimmed_dct,
    revision=TRIM_REVISION,
)
PHASH_EQ_CROPS = _register(
    "phash_eq_crops",
    "equalised pHash of the whole image, carrying the hashes of 21 crops (10 also mirrored) and 4 "
    "small rotations of it as query variants",
    _with_crops,
    None,
    revision=5,  # 2: tilts joined the crops; 3: cut from a base of 2x the thumbnail; 5: light crops mirrored
)
PHASH_EQ_REGIONS = _register(
    "phash_eq_regions",
    "equalised pHash of the whole image, carrying the hashes of the pictures inside it (collage "
    "cells, a screenshot's photo, a picture in a picture) as query variants",
    _with_regions,
    None,
    revision=REGIONS_REVISION,
    stored_variants_searched=True,  # an original finds the stored composites that show it
)
