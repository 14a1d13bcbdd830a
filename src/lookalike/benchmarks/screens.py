"""Screenshots the benchmark makes of a photo: a phone showing it full width, a chat with the
photo in a message bubble, and a desktop browser with the photo inside a web page.

Pure PIL functions `(image, seed) -> image`; the layout (the photo's size and place, the text
around it) is drawn from the seed, so a photo gets the same screenshot in every run. Text uses
Pillow's bundled default font: no font files are needed.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw, ImageFont

RGB = tuple[int, int, int]
Span = tuple[float, float]  # a range a value is drawn from, uniformly
PHONE_WIDTH = 540
PHONE_ASPECT = 19.5 / 9
DESKTOP_SIZE = (1280, 800)
SMALL_PHOTO_SHARE = (0.3, 0.6)  # the photo's width in a chat or a web page, as a share of the screen's


def default_font(size: float) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at `size` pixels (8 at least)."""
    return _loaded_font(max(8, round(size)))


@functools.lru_cache(maxsize=64)
def _loaded_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)  # loading it is slow: once per size


def fit_within(image: Image.Image, width: float, height: float) -> Image.Image:
    """The image scaled (bicubic) to the largest size that fits `width` x `height`, aspect kept."""
    scale = min(width / image.width, height / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC)


# ----- a phone ----------------------------------------------------------------------------------


def _phone_bars(screen_width: int) -> tuple[int, int, int, int]:
    """(screen height, status bar, app bar, navigation bar) of a 19.5:9 portrait phone."""
    screen_height = round(screen_width * PHONE_ASPECT)
    return (
        screen_height,
        round(screen_height * 0.035),
        round(screen_height * 0.07),
        round(screen_height * 0.06),
    )


def _phone_chrome(screen: Image.Image, title: str, app_bar_colour: RGB = (33, 33, 33)) -> None:
    """Draw a status bar (time, signal, wifi, battery), an app bar with `title` and a navigation
    bar (back, home, recent) on a phone screen."""
    screen_width, screen_height = screen.size
    _, status, app_bar, nav = _phone_bars(screen_width)
    draw = ImageDraw.Draw(screen)
    small = default_font(status * 2 // 3)
    draw.rectangle((0, 0, screen_width, status - 1), (20, 20, 24))
    draw.text((status // 2, status // 6), "12:30", fill=(240, 240, 240), font=small)
    for i in range(3):  # signal, wifi and battery glyphs
        x = screen_width - (i + 1) * status
        draw.rectangle((x, status // 4, x + status // 2, status * 3 // 4), (230, 230, 230))
    draw.rectangle((0, status, screen_width, status + app_bar - 1), app_bar_colour)
    draw.text(
        (app_bar // 2, status + app_bar // 4),
        title,
        fill=(250, 250, 250),
        font=default_font(app_bar * 2 // 5),
    )
    nav_top = screen_height - nav
    draw.rectangle((0, nav_top, screen_width, screen_height), (12, 12, 12))
    for i in range(3):  # back, home, recent
        cx = screen_width * (i + 1) // 4
        r = nav // 4
        draw.ellipse(
            (cx - r, nav_top + nav // 2 - r, cx + r, nav_top + nav // 2 + r), outline=(200, 200, 200)
        )


def screenshot(image: Image.Image, seed: int, screen_width: int = PHONE_WIDTH) -> Image.Image:
    """The photo as a phone shows it, captured: rescaled to a 540-pixel-wide portrait screen,
    black around it, with a status bar, an app bar and a navigation bar."""
    screen_height, status, app_bar, nav = _phone_bars(screen_width)
    screen = Image.new("RGB", (screen_width, screen_height), (0, 0, 0))
    area = (screen_width, screen_height - status - app_bar - nav)
    photo = fit_within(image, *area)
    top = status + app_bar + (area[1] - photo.height) // 2
    screen.paste(photo, ((screen_width - photo.width) // 2, top))
    _phone_chrome(screen, "< Photo")
    return screen


_WORDS = tuple(
    [
        "ok",
        "see",
        "you",
        "there",
        "lol",
        "this",
        "one",
        "is",
        "great",
        "look",
        "at",
        "that",
        "when",
        "are",
        "you",
        "back",
        "sounds",
        "good",
    ]
)


def _sentence(rng: np.random.Generator, words: int) -> str:
    return " ".join(str(w) for w in rng.choice(_WORDS, size=words))


def _text_bubble(
    draw: ImageDraw.ImageDraw,
    rng: np.random.Generator,
    span: tuple[int, int],
    screen_width: int,
    outgoing: bool,
) -> int | None:
    """A message bubble with one or two lines of text, drawn at the top of `span` (top, bottom)
    if it fits there; returns its bottom edge, or None if it did not fit."""
    size = screen_width * 0.032
    lines = [_sentence(rng, int(rng.integers(2, 6))) for _ in range(int(rng.integers(1, 3)))]
    width = max(draw.textlength(line, font=default_font(size)) for line in lines) + 2 * size
    height = len(lines) * size * 1.4 + size
    top = span[0]
    if top + height > span[1]:
        return None
    margin = screen_width * 0.04
    left = screen_width - margin - width if outgoing else margin
    colour = (220, 248, 198) if outgoing else (255, 255, 255)
    draw.rounded_rectangle((left, top, left + width, top + height), radius=size * 0.6, fill=colour)
    for i, line in enumerate(lines):
        y = top + size / 2 + i * size * 1.4
        draw.text((left + size, y), line, fill=(40, 40, 40), font=default_font(size))
    return round(top + height)


def _messages(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, span: tuple[int, int], screen_width: int
) -> None:
    """Text messages, sent or received at random, one under the other down `span`."""
    gap = round(screen_width * 0.02)
    top: int | None = span[0] + gap
    while top is not None:
        bottom = _text_bubble(draw, rng, (top, span[1] - gap), screen_width, bool(rng.integers(2)))
        top = None if bottom is None else bottom + gap


def chat_screenshot(
    image: Image.Image, seed: int, share: Span = SMALL_PHOTO_SHARE, screen_width: int = PHONE_WIDTH
) -> Image.Image:
    """A phone's chat with the photo sent as a message: the photo in a bubble `share` (drawn at
    random in the range) of the screen wide, left (received) or right (sent), text bubbles above
    and below, on the app's pale wallpaper. A photo too tall for the screen is made smaller."""
    rng = np.random.default_rng(seed)
    screen_height, status, app_bar, nav = _phone_bars(screen_width)
    screen = Image.new("RGB", (screen_width, screen_height), (236, 229, 221))
    draw = ImageDraw.Draw(screen)
    area_top, area_bottom = status + app_bar, screen_height - nav
    pad = max(3, round(screen_width * 0.012))
    photo = fit_within(
        image, rng.uniform(share[0], share[1]) * screen_width, 0.8 * (area_bottom - area_top) - 2 * pad
    )
    outgoing = bool(rng.integers(2))
    margin = round(screen_width * 0.04)
    left = screen_width - margin - photo.width - 2 * pad if outgoing else margin
    free = area_bottom - area_top - photo.height - 2 * pad
    top = area_top + int(rng.integers(0, max(1, free)))
    bubble = (left, top, left + photo.width + 2 * pad - 1, top + photo.height + 2 * pad - 1)
    draw.rounded_rectangle(bubble, radius=2 * pad, fill=(220, 248, 198) if outgoing else (255, 255, 255))
    screen.paste(photo, (left + pad, top + pad))
    _messages(draw, rng, (area_top, top), screen_width)  # the conversation above the photo
    _messages(draw, rng, (bubble[3] + 1, area_bottom), screen_width)  # and below it
    _phone_chrome(screen, "< Alex", app_bar_colour=(7, 94, 84))
    return screen


# ----- a desktop browser ------------------------------------------------------------------------


def _text_lines(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, box: tuple[int, int, int, int], size: float
) -> None:
    """Paragraph text filling `box` (left, top, right, bottom), line by line."""
    left, top, right, bottom = box
    y = top
    while y + size * 1.5 < bottom:
        line = _sentence(rng, int(rng.integers(4, 12)))
        while line and draw.textlength(line, font=default_font(size)) > right - left:
            line = line.rsplit(" ", 1)[0] if " " in line else ""
        draw.text((left, y), line, fill=(60, 60, 60), font=default_font(size))
        y += round(size * (1.5 if rng.random() > 0.15 else 2.6))


def desktop_screenshot(
    image: Image.Image,
    seed: int,
    share: Span = SMALL_PHOTO_SHARE,
    size: tuple[int, int] = DESKTOP_SIZE,
) -> Image.Image:
    """A desktop browser window showing a web page with the photo in it: title and tab bar,
    address bar, the site's header and menu, a headline, the photo `share` (drawn at random in
    the range) of the screen wide, and text beside and below it. A photo too tall for the page
    is made smaller."""
    rng = np.random.default_rng(seed)
    width, height = size
    screen = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(screen)
    unit = height / 100
    title_bar, address_bar, site_bar = round(4 * unit), round(5 * unit), round(7 * unit)
    draw.rectangle((0, 0, width, title_bar - 1), (222, 225, 230))
    for i, colour in enumerate(((255, 95, 87), (254, 188, 46), (40, 200, 64))):
        cx, r = round((i + 1) * 2.2 * unit), round(0.7 * unit)
        draw.ellipse((cx - r, title_bar // 2 - r, cx + r, title_bar // 2 + r), fill=colour)
    draw.rounded_rectangle(
        (round(9 * unit), round(0.6 * unit), round(45 * unit), title_bar), 6, (255, 255, 255)
    )
    draw.text(
        (round(10 * unit), round(1.1 * unit)),
        "Holiday photos - Blog",
        fill=(40, 40, 40),
        font=default_font(1.9 * unit),
    )
    top = title_bar
    draw.rectangle((0, top, width, top + address_bar - 1), (255, 255, 255))
    draw.rounded_rectangle(
        (round(8 * unit), top + round(unit), width - round(8 * unit), top + address_bar - round(unit)),
        8,
        (241, 243, 244),
    )
    draw.text(
        (round(10 * unit), top + round(1.4 * unit)),
        "https://example.org/2024/05/our-trip",
        fill=(80, 80, 80),
        font=default_font(1.9 * unit),
    )
    top += address_bar
    draw.rectangle((0, top, width, top + site_bar - 1), (38, 70, 120))
    draw.text(
        (round(3 * unit), top + round(1.8 * unit)),
        "THE TRAVEL DIARY",
        fill=(255, 255, 255),
        font=default_font(3 * unit),
    )
    for i, item in enumerate(("Home", "Stories", "Maps", "About")):
        draw.text(
            (width - round((36 - 8 * i) * unit), top + round(2.4 * unit)),
            item,
            fill=(220, 230, 245),
            font=default_font(2.2 * unit),
        )
    top += site_bar
    sidebar = round(0.18 * width)
    draw.rectangle((0, top, sidebar, height), (246, 246, 246))
    _text_lines(
        draw, rng, (round(2 * unit), top + round(3 * unit), sidebar - round(unit), height), 1.9 * unit
    )
    column_left, column_right = sidebar + round(4 * unit), width - round(4 * unit)
    draw.text(
        (column_left, top + round(2 * unit)),
        "A day by the water",
        fill=(20, 20, 20),
        font=default_font(4 * unit),
    )
    photo_top = top + round(9 * unit)
    photo = fit_within(image, rng.uniform(share[0], share[1]) * width, height - photo_top - round(2 * unit))
    slack = column_right - column_left - photo.width
    photo_left = column_left + (int(rng.integers(0, slack + 1)) if slack > 0 else 0)
    screen.paste(photo, (photo_left, photo_top))
    text_size = 2.1 * unit
    if photo_left - column_left > 12 * unit:  # text to the left of the photo
        _text_lines(
            draw,
            rng,
            (column_left, photo_top, photo_left - round(2 * unit), photo_top + photo.height),
            text_size,
        )
    if column_right - photo_left - photo.width > 12 * unit:  # and to its right
        _text_lines(
            draw,
            rng,
            (photo_left + photo.width + round(2 * unit), photo_top, column_right, photo_top + photo.height),
            text_size,
        )
    _text_lines(
        draw, rng, (column_left, photo_top + photo.height + round(2 * unit), column_right, height), text_size
    )
    return screen
