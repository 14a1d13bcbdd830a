"""What a member of a duplicate group is to the kept copy, found by verifying the pair.

The two pictures are aligned first: a whole-frame copy by the rotation or flip (of the 8) that
makes it look most like the kept copy, a cropped or partial one by local features and a fitted
transform (`lookalike.local.verify`), which also gives the region of the kept copy it shows.
Aligned, both are compared at a common size, the smaller one's: how far their tones and colours
drifted (means of 8x8 blocks), how much detail the copy lost or gained (energy above a blur, as
a ratio), and the error left (PSNR). A copy within all three bounds holds the kept copy's
picture, re-encoded or resized; one outside them was edited (tone/colour, a filter, an overlay,
a frame). Kinds, most alike first:

identical-file     the same bytes
identical-pixels   the same decoded pixels in another file (container, metadata, EXIF stripped)
re-encoded         the same size, lossy differences only
resized            another size, lossy differences only
rotated, flipped   turned or mirrored, otherwise a copy
cropped            a part of the kept copy (`region`: x0, y0, x1, y1 as shares of its frame)
edited             changed on purpose: a tone or colour change, a filter, an overlay, a frame
                   (bars, padding: uniform borders the kept copy lacks), or shown inside
                   something else (a screenshot, a collage, another picture: `shown_at` is
                   where, x0, y0, x1, y1 as shares of the copy's frame)
unverified         the files could not be read, so only the hashes vouch for the match
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from lookalike.dedupe.fidelity import ImageFacts

Kind = str  # one of KINDS
KINDS = (
    "identical-file",
    "identical-pixels",
    "re-encoded",
    "resized",
    "rotated",
    "flipped",
    "cropped",
    "edited",
    "unverified",
)
SAFE_KINDS = frozenset({"identical-file", "identical-pixels", "re-encoded", "resized"})
SHOWN_INSIDE = "shown inside"  # the edit of a screenshot, a collage or a picture showing the kept one

# Bounds of a copy that holds the same picture (measured on the derived-copy families of
# `lookalike.benchmarks.derived_copies`: see docs/dupes.md).
MAX_TONE_SHIFT = 6.0  # mean absolute difference of 8x8 block means, 0-255 levels
MIN_PSNR = 23.5  # dB, at the common size (JPEG quality 30 gives 24.7-37)
DETAIL_RANGE = (0.45, 1.3)  # the copy's fine detail over the kept copy's
GRAIN_EVENNESS = 3.3  # worst 8x8 block's squared error over the mean: noise spreads evenly (< 3.1)
MAX_LOCAL_ERROR = 2500.0  # the worst 8x8 block's mean squared error (re-encodes stay under 2000)
OVERLAY_EVENNESS = 30.0  # ... or half that, standing out this much from the mean (a watermark)
FRAME_SHARE = 0.03  # a copy whose picture fills this much less of its frame has bars or a frame
WHOLE_FRAME_ASPECT = 0.04  # aspect ratios this close (log ratio) may be the same frame
WHOLE_FRAME_MATCH = 0.9  # thumbnails this alike may show the same whole frame (a 90% crop: 0.8)
CERTAIN_CORRELATION = 0.97  # of 32x32 thumbnails: the whole frames surely show the same picture
TEMPLATE_SCORE = 0.9  # normalised cross-correlation of an upright crop at its place
CROP_COVERAGE = 0.92  # a copy covering less of the kept frame than this is a crop

# The 8 rotations and flips, as (name, function on an H x W x C array), identity first.
Transform = tuple[str, "type[object] | None"]
_DIHEDRAL: tuple[tuple[str, int, bool], ...] = (
    ("none", 0, False),
    ("rotate-90", 1, False),
    ("rotate-180", 2, False),
    ("rotate-270", 3, False),
    ("mirror", 0, True),
    ("mirror-rotate-90", 1, True),
    ("mirror-rotate-180", 2, True),
    ("mirror-rotate-270", 3, True),
)

RGBArray = npt.NDArray[np.uint8]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Relation:
    """A member's relation to the kept copy (`kind`, see the module docstring), with the evidence."""

    kind: Kind
    transform: str = "none"  # the rotation/flip that aligns the copy on the kept copy
    region: tuple[float, float, float, float] | None = None  # of the kept frame the copy shows
    edit: str | None = None  # for edited copies: "tone/colour", "filter", "overlay", "frame", SHOWN_INSIDE
    psnr: float | None = None  # dB at the common size
    tone_shift: float | None = None
    detail: float | None = None
    measures: dict[str, float] = field(default_factory=dict, compare=False)
    shown_at: tuple[float, float, float, float] | None = None  # where the copy shows the kept picture

    @property
    def safe(self) -> bool:
        """Whether removing this copy loses nothing: identical, or the same picture re-encoded or resized."""
        return self.kind in SAFE_KINDS

    def as_json(self) -> dict[str, object]:
        data: dict[str, object] = {"kind": self.kind, "safe": self.safe}
        if self.transform != "none":
            data["transform"] = self.transform
        if self.region is not None:
            data["region"] = [round(v, 4) for v in self.region]
        if self.edit is not None:
            data["edit"] = self.edit
        if self.psnr is not None and math.isfinite(self.psnr):
            data["psnr"] = round(self.psnr, 1)
        if self.shown_at is not None:
            data["shown_at"] = [round(v, 4) for v in self.shown_at]
        return data

    def describe(self) -> str:
        """A few words for the text output: 'resized', 'cropped (x 0.10-0.80, y 0.05-0.75)', ..."""
        if self.kind == "cropped" and self.region is not None:
            x0, y0, x1, y1 = self.region
            return f"cropped (x {x0:.2f}-{x1:.2f}, y {y0:.2f}-{y1:.2f})"
        if self.kind == "edited" and self.edit == SHOWN_INSIDE and self.shown_at is not None:
            x0, y0, x1, y1 = self.shown_at
            return f"edited ({SHOWN_INSIDE}, at x {x0:.2f}-{x1:.2f}, y {y0:.2f}-{y1:.2f})"
        if self.kind == "edited" and self.edit:
            return f"edited ({self.edit})"
        if self.kind in ("rotated", "flipped"):
            return f"{self.kind} ({self.transform})"
        return self.kind


IDENTICAL_FILE = Relation("identical-file", psnr=math.inf)
UNVERIFIED = Relation("unverified")


@dataclass(frozen=True)
class Placement:
    """How a copy lies on the kept picture: its rotation/flip and, for a crop, the region shown."""

    transform: str
    region: tuple[float, float, float, float] | None  # None: the whole frame
    kept: Floats  # the kept picture's pixels there, at the common size (H x W x 3)
    copy: Floats  # the copy's pixels, aligned, at the same size
    correlation: float


def relate(kept: ImageFacts, copy: ImageFacts, same_bytes: bool = False) -> Relation:
    """The relation of `copy` to `kept` (see the module docstring)."""
    if same_bytes:
        return IDENTICAL_FILE
    if kept.pixel_digest == copy.pixel_digest:
        return Relation("identical-pixels", psnr=math.inf)
    # Bars, padding or a frame the kept copy lacks: compare the picture inside them.
    framed = copy.content is not None and copy.content_share < kept.content_share - FRAME_SHARE
    pixels = copy.pixels
    if framed and copy.content is not None:
        left, top, right, bottom = copy.content
        pixels = np.ascontiguousarray(pixels[top:bottom, left:right])
    placement = place(pixels, kept.pixels)
    measures = compare(placement.kept, placement.copy)
    tone, psnr, detail = measures["tone_shift"], measures["psnr"], measures["detail"]
    edit = _edit_kind(measures, placement) or ("frame" if framed else None)
    same_size = (kept.width, kept.height) == (copy.width, copy.height) and kept.grid and copy.grid
    if edit is None and placement.region is None and placement.transform == "none" and same_size:
        # The same frame at the same size: a filter too fine for the analysis size shows at full
        # resolution (the grid windows sit at the same places in both).
        native = compare(np.concatenate(kept.grid, axis=1).astype(np.float64),
                         np.concatenate(copy.grid, axis=1).astype(np.float64))  # fmt: skip
        edit = _edit_kind(native, placement)
        measures = {**measures, **{f"native_{name}": value for name, value in native.items()}}
    common = {"transform": placement.transform, "region": placement.region, "psnr": psnr}
    extra = {"tone_shift": tone, "detail": detail, "measures": measures}
    if edit is not None:
        return Relation("edited", edit=edit, **common, **extra)  # type: ignore[arg-type]
    if placement.region is not None:
        return Relation("cropped", **common, **extra)  # type: ignore[arg-type]
    if placement.transform != "none":
        kind = "flipped" if placement.transform.startswith("mirror") else "rotated"
        return Relation(kind, **common, **extra)  # type: ignore[arg-type]
    kind = "re-encoded" if (kept.width, kept.height) == (copy.width, copy.height) else "resized"
    return Relation(kind, **common, **extra)  # type: ignore[arg-type]


def _edit_kind(measures: dict[str, float], placement: Placement) -> str | None:
    """Why the copy counts as edited, or None if it holds the kept picture unchanged."""
    tone, detail, psnr = measures["tone_shift"], measures["detail"], measures["psnr"]
    evenness = measures["local_error"] / measures["mean_error"] if measures["mean_error"] > 0 else math.inf
    if placement.correlation < 0.5:
        return "overlay"
    if tone > MAX_TONE_SHIFT:
        return "tone/colour"
    low, high = DETAIL_RANGE
    if not low <= detail <= high:
        return "filter"
    if evenness < GRAIN_EVENNESS and psnr < 35 and detail > 1.1:  # even error, more detail: grain
        return "filter"
    # One part changed a lot (paint, text, a logo, a tint): the worst 8x8 block stands out.
    if measures["local_error"] > MAX_LOCAL_ERROR or (
        measures["local_error"] > MAX_LOCAL_ERROR / 2 and evenness > OVERLAY_EVENNESS
    ):
        return "tone/colour" if tone > 2 else "overlay"
    if psnr < MIN_PSNR:
        return "filter"
    return None


def place(copy: RGBArray, kept: RGBArray) -> Placement:
    """Align `copy` on `kept`: whole frame (by rotation/flip) when it fits, else by local features."""
    whole = _whole_frame(copy, kept)
    if whole is not None and whole.correlation >= CERTAIN_CORRELATION:
        return whole
    # A crop keeping the aspect ratio also fits the whole frame, roughly: the crop's own
    # placement decides. Template matching over scales finds an upright crop exactly; local
    # features find a turned one.
    partial = _by_template(copy, kept)
    if partial is None or partial.correlation < TEMPLATE_SCORE:
        partial = _by_features(copy, kept) or partial
    if partial is not None and (whole is None or partial.correlation > whole.correlation):
        return partial
    if whole is not None:
        return whole
    # Neither fits: compare the frames squashed to one shape (the result will say edited).
    return _squashed(copy, kept)


def _whole_frame(copy: RGBArray, kept: RGBArray) -> Placement | None:
    kept_ratio = math.log(kept.shape[1] / kept.shape[0])
    best: Placement | None = None
    for name, turns, mirror in _DIHEDRAL:
        turned = _turn(copy, turns, mirror)
        if abs(math.log(turned.shape[1] / turned.shape[0]) - kept_ratio) > WHOLE_FRAME_ASPECT:
            continue
        correlation = _correlation(_thumbnail(turned), _thumbnail(kept))
        if best is None or correlation > best.correlation:
            a, b = _common(kept, turned)
            best = Placement(name, None, a, b, correlation)
    return best


def canvas(copy: RGBArray, reference: RGBArray, side: int = 256) -> tuple[str, Floats] | None:
    """`copy` turned onto the reference's frame and scaled to a canvas `side` pixels on its long
    side, for comparing many members at once, with the turn it took; None if it is not a copy
    of the whole frame."""
    whole = _whole_frame(copy, reference)
    if whole is None or whole.correlation < WHOLE_FRAME_MATCH:
        return None
    _, turns, mirror = next(t for t in _DIHEDRAL if t[0] == whole.transform)
    height, width = reference.shape[:2]
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return whole.transform, _resize(_turn(copy, turns, mirror), size).astype(np.float32)


def _by_features(copy: RGBArray, kept: RGBArray) -> Placement | None:
    from lookalike.local.features import _opencv, extract, local_features_available, mirrored

    if not local_features_available():
        return None
    from lookalike.local.verify import verify

    cv2 = _opencv()
    copy_gray, kept_gray = _gray8(copy), _gray8(kept)
    query, stored = extract(copy_gray), extract(kept_gray)
    alignment = verify(query, stored, extract(mirrored(copy_gray)))
    if alignment is None:
        return None
    # The transform maps the copy's working-size pixels (mirrored first if so) to the kept's.
    to_query = np.diag([query.size[0] / copy.shape[1], query.size[1] / copy.shape[0], 1.0])
    from_stored = np.diag([kept.shape[1] / stored.size[0], kept.shape[0] / stored.size[1], 1.0])
    affine = from_stored @ np.vstack([alignment.transform, [0, 0, 1]]) @ to_query
    source = copy[:, ::-1] if alignment.mirrored else copy
    height, width = kept.shape[:2]
    warped = cv2.warpAffine(np.ascontiguousarray(source), affine[:2], (width, height), flags=cv2.INTER_AREA)
    mask = cv2.warpAffine(
        np.full(source.shape[:2], 255, np.uint8), affine[:2], (width, height), flags=cv2.INTER_NEAREST
    )
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    region = (x0 / width, y0 / height, x1 / width, y1 / height)
    covered = (x1 - x0) * (y1 - y0) / (width * height)
    # Copy pixels per kept pixel: compare at the coarser of the two resolutions.
    scale = math.sqrt(abs(np.linalg.det(affine[:2, :2])))
    kept_part = kept[y0:y1, x0:x1]
    copy_part = warped[y0:y1, x0:x1]
    if scale > 1:  # the copy is at a lower resolution here: bring both down to it
        size = (max(1, round((x1 - x0) / scale)), max(1, round((y1 - y0) / scale)))
        kept_part = _resize(kept_part, size)
        copy_part = _resize(copy_part, size)
    rotation = alignment.rotation % 360
    turns = round(rotation / 90) % 4 if min(rotation % 90, 90 - rotation % 90) < 10 else 0
    name = _DIHEDRAL[turns + (4 if alignment.mirrored else 0)][0]
    correlation = _correlation(_thumbnail(copy_part), _thumbnail(kept_part))
    return Placement(
        name,
        None if covered >= CROP_COVERAGE else region,
        kept_part.astype(np.float64),
        copy_part.astype(np.float64),
        correlation,
    )


def _by_template(copy: RGBArray, kept: RGBArray) -> Placement | None:
    """An upright (or mirrored) crop found by normalised cross-correlation, searched over scales
    coarsely on small copies of both pictures, then finely at the analysis size."""
    from lookalike.local.features import _opencv, local_features_available

    if not local_features_available():  # OpenCV comes with the [local] extra
        return None
    cv2 = _opencv()
    kept_gray = _gray8(kept).astype(np.float32)
    best: tuple[float, float, bool, tuple[int, int]] | None = None  # score, scale, mirror, place
    coarse = min(1.0, 160 / max(kept_gray.shape))
    small_kept = cv2.resize(kept_gray, None, fx=coarse, fy=coarse, interpolation=cv2.INTER_AREA)
    for mirror in (False, True):
        source = _gray8(copy[:, ::-1] if mirror else copy).astype(np.float32)
        for scale in np.geomspace(0.2, 1.0, 24):  # kept pixels per copy pixel, relative to fit
            found = _match_at(cv2, source, small_kept, scale * _fit(source, kept_gray) * coarse)
            if found is not None and (best is None or found[0] > best[0]):
                best = (found[0], scale, mirror, found[1])
    if best is None:
        return None
    _, coarse_scale, mirror, _ = best
    source = _gray8(copy[:, ::-1] if mirror else copy).astype(np.float32)
    fine: tuple[float, float, tuple[int, int]] | None = None
    fit = _fit(source, kept_gray)
    factors = [*(np.linspace(0.94, 1.06, 25) * coarse_scale * fit), 1.0]  # 1.0: a crop at full size
    for step in (None, 0.001):  # then a finer search around the best
        if step is not None and fine is not None:
            factors = list(fine[1] + step * np.arange(-6, 7))
        for factor in factors:
            found = _match_at(cv2, source, kept_gray, float(factor))
            if found is not None and (fine is None or found[0] > fine[0]):
                fine = (found[0], float(factor), found[1])
    if fine is None:
        return None
    score, factor, (x0, y0) = fine
    height, width = kept.shape[:2]
    w = max(1, round(copy.shape[1] * factor))
    h = max(1, round(copy.shape[0] * factor))
    kept_part = kept[y0 : y0 + h, x0 : x0 + w]
    copy_pixels = np.ascontiguousarray(copy[:, ::-1] if mirror else copy)
    if factor >= 1:  # the copy is at a lower resolution: bring the kept part down to it
        kept_part, copy_part = _resize(kept_part, (copy.shape[1], copy.shape[0])), copy_pixels
    else:
        copy_part = _resize(copy_pixels, (w, h))
    covered = w * h / (width * height)
    region = (x0 / width, y0 / height, (x0 + w) / width, (y0 + h) / height)
    return Placement(
        "mirror" if mirror else "none",
        None if covered >= CROP_COVERAGE else region,
        kept_part.astype(np.float64),
        copy_part.astype(np.float64),
        score,
    )


def _fit(source: npt.NDArray[np.float32], target: npt.NDArray[np.float32]) -> float:
    """The factor that makes `source` just fit inside `target`."""
    return float(min(target.shape[0] / source.shape[0], target.shape[1] / source.shape[1]))


def _match_at(
    cv2: Any, source: npt.NDArray[np.float32], target: npt.NDArray[np.float32], factor: float
) -> tuple[float, tuple[int, int]] | None:
    """Best normalised correlation of `source` scaled by `factor` inside `target`, and where."""
    w, h = round(source.shape[1] * factor), round(source.shape[0] * factor)
    if w < 8 or h < 8 or w > target.shape[1] or h > target.shape[0]:
        return None
    template = cv2.resize(source, (w, h), interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
    if float(template.std()) < 1e-3:
        return None
    scores = cv2.matchTemplate(target, template, cv2.TM_CCOEFF_NORMED)
    _, score, _, place = cv2.minMaxLoc(scores)
    return float(score), (int(place[0]), int(place[1]))


def _squashed(copy: RGBArray, kept: RGBArray) -> Placement:
    a, b = _common(kept, copy)
    return Placement("none", None, a, b, _correlation(_thumbnail(copy), _thumbnail(kept)))


def compare(kept: Floats, copy: Floats) -> dict[str, float]:
    """Tone shift, detail ratio and error of two aligned pictures of the same size."""
    blocks_kept, blocks_copy = _block_means(kept), _block_means(copy)
    tone_shift = float(np.abs(blocks_kept - blocks_copy).mean())
    detail_kept, detail_copy = _detail(kept), _detail(copy)
    detail = detail_copy / detail_kept if detail_kept > 0 else 1.0
    error = (kept - copy) ** 2
    mse = float(error.mean())
    psnr = 10 * math.log10(255**2 / mse) if mse > 0 else math.inf
    # An overlay (text, a logo, a sticker) puts its error in one place: the worst 8x8 block's
    # error against the mean says so.
    block_error = _block_means(error)
    return {
        "tone_shift": tone_shift,
        "detail": detail,
        "psnr": psnr,
        "mean_error": mse,
        "local_error": float(block_error.max()) if block_error.size else 0.0,
    }


def _common(kept: RGBArray, copy: RGBArray) -> tuple[Floats, Floats]:
    """Both pictures at the smaller one's size (in the kept picture's shape)."""
    height, width = kept.shape[:2]
    copy_area = copy.shape[0] * copy.shape[1]
    if copy_area < height * width:
        scale = math.sqrt(copy_area / (height * width))
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
    return _resize(kept, (width, height)).astype(np.float64), _resize(copy, (width, height)).astype(
        np.float64
    )


def _resize(pixels: RGBArray, size: tuple[int, int]) -> RGBArray:
    if (pixels.shape[1], pixels.shape[0]) == size:
        return pixels
    return np.asarray(Image.fromarray(np.ascontiguousarray(pixels)).resize(size, Image.Resampling.BOX))


def _turn(pixels: RGBArray, turns: int, mirror: bool) -> RGBArray:
    turned = pixels[:, ::-1] if mirror else pixels
    return np.ascontiguousarray(np.rot90(turned, turns))


def _thumbnail(pixels: RGBArray | Floats) -> Floats:
    gray = Image.fromarray(np.ascontiguousarray(np.clip(pixels, 0, 255).astype(np.uint8))).convert("L")
    return np.asarray(gray.resize((32, 32), Image.Resampling.BOX), dtype=np.float64)


def _correlation(a: Floats, b: Floats) -> float:
    a, b = a - a.mean(), b - b.mean()
    norm = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / norm) if norm > 0 else 0.0


def _gray8(pixels: RGBArray) -> npt.NDArray[np.uint8]:
    return np.asarray(Image.fromarray(np.ascontiguousarray(pixels)).convert("L"))


def _block_means(pixels: Floats, block: int = 8) -> Floats:
    height, width = pixels.shape[:2]
    rows, cols = height // block, width // block
    if rows == 0 or cols == 0:
        whole: Floats = pixels.reshape(1, 1, -1).mean(axis=(0, 1), keepdims=True)
        return whole
    cut = pixels[: rows * block, : cols * block]
    shaped = cut.reshape(rows, block, cols, block, *pixels.shape[2:])
    means: Floats = shaped.mean(axis=(1, 3))
    return means


def _detail(pixels: Floats) -> float:
    """Energy of what a 3x3 box blur removes: fine detail, at this size."""
    gray = pixels.mean(axis=2) if pixels.ndim == 3 else pixels
    if min(gray.shape) < 3:
        return 0.0
    padded = np.pad(gray, 1, mode="edge")
    blurred = (
        sum(padded[dy : dy + gray.shape[0], dx : dx + gray.shape[1]] for dy in range(3) for dx in range(3))
        / 9
    )
    return float(((gray - blurred) ** 2).mean())
