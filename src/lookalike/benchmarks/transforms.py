"""The edits the accuracy benchmark applies to photos: pure functions, PIL image in, PIL image out.

Each `Transform` has a name ("crop_left_10"), a family ("crop") for per-family reporting and a
function `(image, seed) -> image` that is deterministic for a given seed (noise, the logo and
every partial copy draw from it: `lookalike.benchmarks.partial`). A composite (picture in picture,
collage) also takes `donors` other photos: `(image, seed, donors) -> image`; the corpus builder
chooses them. Sizes are relative to the image, so an edit means the same on a thumbnail and on a
wallpaper. Text is drawn with Pillow's bundled default font: no font files are needed.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import cast

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

from lookalike.benchmarks import partial as partial_copies
from lookalike.benchmarks.screens import chat_screenshot, default_font, desktop_screenshot, screenshot

TransformFn = Callable[[Image.Image, int], Image.Image]
CompositeFn = Callable[[Image.Image, int, Sequence[Image.Image]], Image.Image]
RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Transform:
    """A named edit of a photo, in a family of similar edits; a composite (`donors` > 0) puts
    the photo together with that many other photos."""

    name: str
    family: str
    function: TransformFn | CompositeFn
    description: str
    donors: int = 0

    def __call__(self, image: Image.Image, seed: int = 0, donors: Sequence[Image.Image] = ()) -> Image.Image:
        """Apply the edit to an RGB (or L) copy of `image`; the inputs are never modified."""
        if len(donors) != self.donors:
            raise ValueError(f"{self.name} takes {self.donors} other photos, got {len(donors)}")
        if self.donors:
            composite = cast(CompositeFn, self.function)
            return composite(as_rgb(image), seed, [as_rgb(donor) for donor in donors])
        return cast(TransformFn, self.function)(as_rgb(image), seed)


def as_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB, the mode every edit works in (alpha is dropped, as hashing ignores it)."""
    return image if image.mode == "RGB" else image.convert("RGB")


# ----- re-encoding and scaling ------------------------------------------------------------------


def jpeg(image: Image.Image, seed: int, quality: int) -> Image.Image:
    """Save as JPEG at `quality` (Pillow's default 4:2:0 chroma subsampling) and decode again."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        result: Image.Image = decoded.convert("RGB")
    return result


def resize(image: Image.Image, seed: int, scale: float) -> Image.Image:
    """Scale both sides by `scale` (antialiased)."""
    width, height = image.size
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def squash(image: Image.Image, seed: int, width_scale: float) -> Image.Image:
    """Change the aspect ratio: the width scaled by `width_scale`, the height kept."""
    width, height = image.size
    return image.resize((max(1, round(width * width_scale)), height), Image.Resampling.LANCZOS)


# ----- geometry ---------------------------------------------------------------------------------

CROP_SIDES = ("left", "right", "top", "bottom", "centre")


def crop(image: Image.Image, seed: int, side: str, fraction: float) -> Image.Image:
    """Remove `fraction` of the image from one side, or `fraction / 2` from every side ("centre")."""
    width, height = image.size
    dx, dy = round(width * fraction), round(height * fraction)
    boxes = {
        "left": (dx, 0, width, height),
        "right": (0, 0, width - dx, height),
        "top": (0, dy, width, height),
        "bottom": (0, 0, width, height - dy),
        "centre": (dx // 2, dy // 2, width - (dx - dx // 2), height - (dy - dy // 2)),
    }
    return image.crop(boxes[side])


def rotate(image: Image.Image, seed: int, degrees: int) -> Image.Image:
    """Rotate counter-clockwise by a multiple of 90 degrees (lossless)."""
    steps = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}
    return image.transpose(steps[degrees])


def tilt(image: Image.Image, seed: int, degrees: float) -> Image.Image:
    """Rotate by a small angle, keeping the size; the uncovered corners become black."""
    return image.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=(0, 0, 0))


def flip(image: Image.Image, seed: int, horizontal: bool) -> Image.Image:
    """Mirror left-right (`horizontal`) or top-bottom."""
    return ImageOps.mirror(image) if horizontal else ImageOps.flip(image)


# ----- padding and frames -----------------------------------------------------------------------


def letterbox(image: Image.Image, seed: int, fraction: float, fill: str) -> Image.Image:
    """Add bars of `fraction` of the image's height above and below (landscape) or of its width
    left and right (portrait), filled black, white, or with a blurred enlargement of the image."""
    width, height = image.size
    if width >= height:
        bar = max(1, round(height * fraction))
        canvas_size, offset = (width, height + 2 * bar), (0, bar)
    else:
        bar = max(1, round(width * fraction))
        canvas_size, offset = (width + 2 * bar, height), (bar, 0)
    if fill == "blur":
        canvas = ImageOps.fit(image, canvas_size, Image.Resampling.BILINEAR)
        canvas = canvas.filter(ImageFilter.GaussianBlur(max(2.0, 0.05 * min(canvas_size))))
    else:
        canvas = Image.new("RGB", canvas_size, (0, 0, 0) if fill == "black" else (255, 255, 255))
    canvas.paste(image, offset)
    return canvas


def frame(image: Image.Image, seed: int, band: float = 0.06, line: float = 0.01) -> Image.Image:
    """A picture frame around the photo: a coloured band and a thin light line inside it."""
    width, height = image.size
    band_px = max(2, round(min(width, height) * band))
    line_px = max(1, round(min(width, height) * line))
    outer = band_px + line_px
    canvas = Image.new("RGB", (width + 2 * outer, height + 2 * outer), (96, 32, 40))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle(
        (band_px, band_px, width + outer + line_px - 1, height + outer + line_px - 1), (222, 200, 150)
    )
    canvas.paste(image, (outer, outer))
    return canvas


# ----- colour -----------------------------------------------------------------------------------


def _lut(image: Image.Image, curve: Callable[[np.ndarray], np.ndarray]) -> Image.Image:
    levels = np.clip(np.rint(curve(np.arange(256, dtype=np.float64))), 0, 255).astype(int)
    return image.point(levels.tolist() * len(image.getbands()))


def gamma(image: Image.Image, seed: int, exponent: float) -> Image.Image:
    """out = 255 * (in / 255) ** exponent; exponent < 1 lifts the shadows."""
    return _lut(image, lambda v: 255.0 * (v / 255.0) ** exponent)


def brightness(image: Image.Image, seed: int, factor: float) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(factor)


def contrast(image: Image.Image, seed: int, factor: float) -> Image.Image:
    return ImageEnhance.Contrast(image).enhance(factor)


def saturation(image: Image.Image, seed: int, factor: float) -> Image.Image:
    return ImageEnhance.Color(image).enhance(factor)


def grayscale(image: Image.Image, seed: int) -> Image.Image:
    """Mode L (ITU-R 601-2 luma)."""
    return image.convert("L")


_SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])


def sepia(image: Image.Image, seed: int) -> Image.Image:
    """The classic sepia tone matrix."""
    pixels = np.asarray(image, dtype=np.float64) @ _SEPIA.T
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")


# ----- filters ----------------------------------------------------------------------------------


def blur(image: Image.Image, seed: int, relative_radius: float) -> Image.Image:
    """Gaussian blur with a radius relative to the longer side (0.004: 4 pixels at 1000)."""
    return image.filter(ImageFilter.GaussianBlur(max(1.0, relative_radius * max(image.size))))


def sharpen(image: Image.Image, seed: int) -> Image.Image:
    return image.filter(ImageFilter.UnsharpMask(radius=2, percent=200, threshold=0))


def noise(image: Image.Image, seed: int, sigma: float) -> Image.Image:
    """Add Gaussian noise of standard deviation `sigma` (in 0-255 levels) to every channel."""
    rng = np.random.default_rng(seed)
    pixels = np.asarray(image, dtype=np.float64)
    noisy = pixels + rng.normal(0.0, sigma, pixels.shape)
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8), "RGB")


# ----- overlays ---------------------------------------------------------------------------------


def text_overlay(image: Image.Image, seed: int) -> Image.Image:
    """Meme-style captions: white text with a black outline across the top and the bottom."""
    result = image.copy()
    draw = ImageDraw.Draw(result)
    width, height = result.size
    font = default_font(height * 0.09)
    stroke = max(1, round(height * 0.006))
    for text, y in (("WHEN YOU SEE IT", 0.03), ("look closer", 0.85)):
        box = draw.textbbox((0, 0), text, font=font, stroke_width=stroke)
        x = (width - (box[2] - box[0])) // 2
        draw.text(
            (x, round(height * y)),
            text,
            fill=(255, 255, 255),
            font=font,
            stroke_width=stroke,
            stroke_fill=(0, 0, 0),
        )
    return result


def watermark(image: Image.Image, seed: int, opacity: float = 0.35) -> Image.Image:
    """A large diagonal semi-transparent white text across the middle."""
    width, height = image.size
    layer = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(layer)
    text = "(c) lookalike stock"
    font = default_font(min(width, height) * 0.12)
    box = [math.ceil(v) for v in draw.textbbox((0, 0), text, font=font)]
    text_image = Image.new("L", (box[2] - box[0] + 4, box[3] - box[1] + 4), 0)
    ImageDraw.Draw(text_image).text((2 - box[0], 2 - box[1]), text, fill=255, font=font)
    text_image = text_image.rotate(30, expand=True, resample=Image.Resampling.BICUBIC)
    scale = min(0.9 * width / text_image.width, 0.9 * height / text_image.height, 1.0)
    if scale < 1.0:
        size = (max(1, round(text_image.width * scale)), max(1, round(text_image.height * scale)))
        text_image = text_image.resize(size, Image.Resampling.BICUBIC)
    layer.paste(text_image, ((width - text_image.width) // 2, (height - text_image.height) // 2))
    alpha = layer.point([round(v * opacity) for v in range(256)])
    white = Image.new("RGB", (width, height), (255, 255, 255))
    return Image.composite(white, image, alpha)


_LOGO_COLOURS: tuple[RGB, ...] = ((220, 40, 60), (30, 110, 220), (250, 180, 20), (40, 170, 90))


def logo(image: Image.Image, seed: int) -> Image.Image:
    """An opaque badge (coloured rounded box with a name) in the bottom-right corner, 22% wide."""
    result = image.copy()
    width, height = result.size
    badge_w, badge_h = max(4, round(width * 0.22)), max(3, round(min(width, height) * 0.09))
    margin = round(min(width, height) * 0.03)
    x1, y1 = width - margin, height - margin
    x0, y0 = x1 - badge_w, y1 - badge_h
    draw = ImageDraw.Draw(result)
    colour = _LOGO_COLOURS[seed % len(_LOGO_COLOURS)]
    draw.rounded_rectangle((x0, y0, x1, y1), radius=badge_h // 4, fill=colour, outline=(255, 255, 255))
    font = default_font(badge_h * 0.55)
    draw.text(((x0 + x1) // 2, (y0 + y1) // 2), "PHOTOCO", fill=(255, 255, 255), font=font, anchor="mm")
    return result


# ----- the registry -----------------------------------------------------------------------------


def _registry() -> tuple[Transform, ...]:
    items: list[Transform] = []

    def add(
        name: str, family: str, function: TransformFn | CompositeFn, description: str, donors: int = 0
    ) -> None:
        items.append(Transform(name, family, function, description, donors))

    for quality in (90, 50, 20):
        add(f"jpeg_{quality}", "jpeg", partial(jpeg, quality=quality), f"JPEG quality {quality}")
    for percent in (50, 25):
        add(f"resize_{percent}", "resize", partial(resize, scale=percent / 100), f"resized to {percent}%")
    for percent in (5, 10, 20):
        family = "crop" if percent < 20 else "crop_heavy"
        for side in CROP_SIDES:
            where = f"{percent / 2:g}% off every side" if side == "centre" else f"off the {side}"
            add(
                f"crop_{side}_{percent}",
                family,
                partial(crop, side=side, fraction=percent / 100),
                f"{percent}% cropped {where}",
            )
    for fill in ("black", "white", "blur"):
        for percent in (10, 25):
            add(
                f"pad_{fill}_{percent}",
                "pad",
                partial(letterbox, fraction=percent / 100, fill=fill),
                f"letterboxed with {fill} bars of {percent}% each",
            )
    for degrees in (90, 180):
        add(f"rotate_{degrees}", "rotate", partial(rotate, degrees=degrees), f"rotated {degrees} degrees")
    add("tilt_3", "tilt", partial(tilt, degrees=3.0), "rotated 3 degrees, black corners")
    add("flip_horizontal", "flip", partial(flip, horizontal=True), "mirrored left-right")
    add("flip_vertical", "flip", partial(flip, horizontal=False), "mirrored top-bottom")
    add("gamma_0.6", "colour", partial(gamma, exponent=0.6), "gamma 0.6 (shadows lifted)")
    add("brightness_1.3", "colour", partial(brightness, factor=1.3), "30% brighter")
    add("contrast_1.5", "colour", partial(contrast, factor=1.5), "50% more contrast")
    add("saturation_1.8", "colour", partial(saturation, factor=1.8), "80% more saturated")
    add("grayscale", "colour", grayscale, "grayscale")
    add("sepia", "colour", sepia, "sepia toned")
    add("blur", "filter", partial(blur, relative_radius=0.004), "Gaussian blur, radius 0.4% of the long side")
    add("sharpen", "filter", sharpen, "unsharp mask, radius 2, 200%")
    add("noise", "filter", partial(noise, sigma=12.0), "Gaussian noise, sigma 12 levels")
    add("text", "overlay", text_overlay, "meme captions at top and bottom")
    add("watermark", "overlay", watermark, "diagonal semi-transparent watermark")
    add("logo", "overlay", logo, "opaque logo badge in a corner")
    add("frame", "frame", frame, "picture frame around the photo")
    add("squash", "squash", partial(squash, width_scale=0.75), "width squashed to 75%")
    add("screenshot", "screenshot", screenshot, "phone screenshot: rescaled, UI bars, black around")
    # Partial copies (issue 18): every box, angle and place drawn at random per photo.
    uneven = partial_copies.crop_uneven
    add(
        "crop_uneven_light",
        "crop_uneven",
        uneven,
        "each side cut by its own random share, >= 80% of each side kept",
    )
    add(
        "crop_uneven_light_flip",
        "crop_uneven_mirror",
        partial(uneven, flip="horizontal"),
        "the same kind of light uneven crop, mirrored left-right",
    )
    add(
        "crop_uneven_heavy",
        "crop_uneven_heavy",
        partial(uneven, heavy=True),
        "30-60% of the area kept, a random box off centre",
    )
    add(
        "crop_flip_vertical",
        "crop_vflip",
        partial(uneven, flip="vertical"),
        "a light uneven crop turned upside down",
    )
    add(
        "rotate_crop",
        "rotate_crop",
        partial_copies.rotate_crop,
        "rotated 10-45 degrees either way, cropped to the largest upright rectangle",
    )
    add(
        "perspective",
        "perspective",
        partial_copies.perspective,
        "mild keystone: one side 8-18% shorter, cropped to the covered part",
    )
    add(
        "pip",
        "pip",
        partial_copies.picture_in_picture,
        "the photo at 30-70% scale inside another photo",
        donors=1,
    )
    add(
        "collage",
        "collage",
        partial_copies.collage,
        "one cell of a 2x2 collage with three other photos",
        donors=3,
    )
    add(
        "screenshot_chat",
        "screenshot_small",
        chat_screenshot,
        "phone chat: the photo 30-60% of the screen wide in a message bubble, text around",
    )
    add(
        "screenshot_desktop",
        "screenshot_small",
        desktop_screenshot,
        "desktop browser: the photo 30-60% of the screen wide in a web page, text around",
    )
    return tuple(items)


TRANSFORMS: tuple[Transform, ...] = _registry()
# The families issue 18 is about: a part of the photo, or the photo as a part of a picture.
PARTIAL_FAMILIES = (
    "crop_uneven",
    "crop_uneven_mirror",
    "crop_uneven_heavy",
    "crop_vflip",
    "rotate_crop",
    "perspective",
    "pip",
    "collage",
    "screenshot_small",
)
_BY_NAME = {t.name: t for t in TRANSFORMS}


def transform_names() -> list[str]:
    return [t.name for t in TRANSFORMS]


def families() -> list[str]:
    """Family names in registry order."""
    return list(dict.fromkeys(t.family for t in TRANSFORMS))


def get_transform(name: str) -> Transform:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown transform {name!r}; known: {', '.join(_BY_NAME)}") from None


def select(names: Iterable[str] | None = None) -> tuple[Transform, ...]:
    """The named transforms (all when `names` is None), in registry order."""
    if names is None:
        return TRANSFORMS
    wanted = set(names)
    unknown = wanted - set(_BY_NAME)
    if unknown:
        raise KeyError(f"unknown transforms: {', '.join(sorted(unknown))}")
    return tuple(t for t in TRANSFORMS if t.name in wanted)


def stable_seed(*parts: str) -> int:
    """A seed from text that is the same in every process and every run (unlike `hash()`)."""
    value = 0
    for part in parts:
        for byte in part.encode():
            value = (value * 1_000_003 + byte) % (1 << 61)
    return value
