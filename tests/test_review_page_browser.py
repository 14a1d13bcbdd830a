"""The duplicate review page in headless Chromium, on real photos and copies made from them with
known relations: tiers at a glance, each copy's relation and the hash that matched it, only safe
copies chosen at first, large groups collapsed with counts, the viewer (enlarge, side by side,
flicker, difference, aligned), and the keyboard. Screenshots go to test-output/dupes/ (the ones
under docs/dupes/ were taken by this test).
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

import lookalike
from conftest import COMMITTED_PHOTOS, skimage_images
from lookalike.dedupe.grouping import Group
from lookalike.dedupe.report import SHOWN_MEMBERS, write_report
from lookalike.hash import Hash
from lookalike.index.base import FROM_FILE, Entry
from lookalike.matcher import Matcher
from test_server_browser import CHROMIUM_ARGS, OUTPUT, chromium_path

RULE = Matcher.parse("near-duplicate")
SCREENSHOTS = OUTPUT / "dupes"
LONG_FOLDER = "Holiday photos 2019 - backup copied from the old laptop before it was given away"


@dataclass(frozen=True)
class Known:
    """A relation we know because we made the copy (the shape verified relations have)."""

    kind: str
    safe: bool
    region: tuple[float, float, float, float] | None = None
    transform: str = "none"
    shown_at: tuple[float, float, float, float] | None = None

    def describe(self) -> str:
        return self.kind.replace("-", " ")


@dataclass(frozen=True)
class DescribedGroup(Group):
    """A group carrying its tier and members' relations, as verified groups do."""

    relations: Mapping[str, Any] = field(default_factory=dict)
    tier: str | None = None


def _entry(path: Path, number: int) -> Entry:
    data = path.read_bytes()
    with Image.open(path) as image:
        width, height = image.size
    result = lookalike.hash_file(path, list(RULE.algorithms))
    hashes = {name: value for name, value in result.items() if isinstance(value, Hash)}
    return Entry(
        id=number, key=str(path), hashes=hashes, sha256=hashlib.sha256(data).hexdigest(),
        byte_size=len(data), width=width, height=height, mtime=None, added_at=0.0, origin=FROM_FILE,
    )  # fmt: skip


def _group(members: list[tuple[Path, Known | None]], tier: str) -> DescribedGroup:
    """Entries for the files (the first kept), with the distance the rule gives each copy (its
    closest clause, with the copy's rotations, flips and crops, as a duplicate search runs)."""
    entries = [_entry(path, number) for number, (path, _) in enumerate(members)]
    kept = entries[0]
    distances = {}
    for (path, _), entry in zip(members[1:], entries[1:], strict=True):
        query = lookalike.hash_file(path, list(RULE.algorithms), dihedral=True)
        verdict = RULE.verdict(
            kept.key, {k: v for k, v in query.items() if isinstance(v, Hash)}, kept.hashes, True
        )
        if verdict is not None:
            first, second = sorted((kept.key, entry.key))
            distances[(first, second)] = RULE.closest(verdict)
    relations = {entry.key: known for (_, known), entry in zip(members, entries, strict=True) if known}
    return DescribedGroup(tuple(entries), distances, relations=relations, tier=tier)


def _rgb(photo: Path) -> Image.Image:
    with Image.open(photo) as image:
        return image.convert("RGB")


def make_gallery(root: Path) -> list[DescribedGroup]:
    """Four groups: identical files (one under a long folder name), identical pixels, a photo with
    six kinds of copies (one of them sent in a chat), and a photo with 11 re-encoded and resized
    copies."""
    larger = {p.name: p for p in skimage_images()}  # 600x400 and 640x427: the viewer has more to show
    a, b = larger["coffee.png"], larger["rocket.jpg"]
    c = next(p for p in COMMITTED_PHOTOS if p.suffix == ".jpg")
    d = next(p for p in COMMITTED_PHOTOS if p.suffix == ".png")
    (root / "library").mkdir(parents=True)
    deep = root / "backup" / LONG_FOLDER / "DCIM"
    deep.mkdir(parents=True)

    shutil.copy(c, root / "library" / "harbour.jpg")
    shutil.copy(c, deep / "IMG_0412.jpg")
    shutil.copy(c, root / "backup" / "harbour (1).jpg")
    identical_files = _group(
        [(root / "library" / "harbour.jpg", None)]
        + [
            (p, Known("identical-file", True))
            for p in (deep / "IMG_0412.jpg", root / "backup" / "harbour (1).jpg")
        ],
        "identical-files",
    )

    pixels = _rgb(d)
    pixels.save(root / "library" / "market.png")
    pixels.save(root / "backup" / "market.webp", lossless=True)
    identical_pixels = _group(
        [
            (root / "library" / "market.png", None),
            (root / "backup" / "market.webp", Known("identical-pixels", True)),
        ],
        "identical-pixels",
    )

    original = _rgb(a)
    original.save(root / "library" / "coffee.jpg", quality=95)
    original.resize((original.width // 2, original.height // 2)).save(root / "library" / "coffee-small.jpg")
    original.save(root / "library" / "coffee-email.jpg", quality=30)
    original.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(
        root / "library" / "coffee-mirrored.jpg", quality=90
    )
    w, h = original.size
    box = (int(w * 0.15), int(h * 0.15), int(w * 0.85), int(h * 0.85))
    original.crop(box).save(root / "library" / "coffee-cropped.jpg", quality=90)
    stamped = original.copy()  # an overlay someone added: a caption band across the bottom
    draw = ImageDraw.Draw(stamped)
    draw.rectangle((0, int(h * 0.8), w, h), fill=(250, 250, 250))
    draw.text((int(w * 0.05), int(h * 0.85)), "(c) someone else, all rights reserved", fill=(20, 20, 20))
    stamped.save(root / "library" / "coffee-captioned.jpg", quality=90)
    chat = Image.new("RGB", (w + 60, 2 * h), (245, 245, 245))  # the photo sent in a chat
    ImageDraw.Draw(chat).rectangle((0, 0, w + 60, h // 4), fill=(30, 60, 110))
    chat.paste(original, (30, h // 2))
    chat.save(root / "library" / "coffee-in-chat.jpg", quality=90)
    shown_at = (30 / (w + 60), 0.25, (30 + w) / (w + 60), (h // 2 + h) / (2 * h))
    region = (box[0] / w, box[1] / h, box[2] / w, box[3] / h)
    mixed = _group(
        [
            (root / "library" / "coffee.jpg", None),
            (root / "library" / "coffee-small.jpg", Known("resized", True)),
            (root / "library" / "coffee-email.jpg", Known("re-encoded", True)),
            (root / "library" / "coffee-mirrored.jpg", Known("flipped", False, transform="mirror")),
            (root / "library" / "coffee-cropped.jpg", Known("cropped", False, region=region)),
            (root / "library" / "coffee-captioned.jpg", Known("edited", False)),
            (root / "library" / "coffee-in-chat.jpg", Known("edited", False, shown_at=shown_at)),
        ],
        "copies",
    )

    big = _rgb(b)
    members: list[tuple[Path, Known | None]] = []
    big.save(root / "library" / "rocket.jpg", quality=95)
    members.append((root / "library" / "rocket.jpg", None))
    for number in range(11):
        scale = 0.9 - 0.06 * number
        copy = root / "backup" / f"rocket-{number:02d}.jpg"
        big.resize((int(big.width * scale), int(big.height * scale))).save(copy, quality=85 - 4 * number)
        members.append((copy, Known("resized", True)))
    large = _group(members, "copies")
    return [identical_files, identical_pixels, mixed, large]


@pytest.fixture(scope="module")
def review(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("review")
    groups = make_gallery(root / "photos")
    return Path(write_report(groups, root / "review.html", rule=RULE))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any, review: Path) -> Iterator[Any]:
    opened = browser.new_page(viewport={"width": 1400, "height": 1000})
    requests: list[str] = []
    errors: list[str] = []
    opened.on("request", lambda request: requests.append(request.url))
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.goto(review.as_uri())
    opened.wait_for_load_state("load")
    yield opened
    assert all(url.startswith(("file:", "data:", "blob:")) for url in requests), requests  # offline
    assert not errors
    opened.close()


@pytest.mark.slow
def test_tiers_relations_and_the_matching_hash_are_shown(page: Any) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tiers = page.locator("section.group h2 .tier").all_inner_texts()
    assert [t.lower() for t in tiers] == [
        "identical files",
        "identical pixels",
        "near-duplicates",
        "near-duplicates",
    ]
    chips = page.locator("header .chip").evaluate_all("(chips) => chips.map(c => c.textContent)")
    assert chips == ["identical files1", "identical pixels1", "near-duplicates2"]
    assert page.locator("section.group").nth(0).locator(".summary").inner_text() == (
        "keeps harbour.jpg; copies: identical file ×2"
    )
    assert (
        page.locator("section.group").nth(0).locator(".match").all_inner_texts()
        == ["matched: same bytes"] * 2
    )

    mixed = page.locator("section.group").nth(2)
    relations = mixed.locator("figure.member .rel").all_inner_texts()
    assert relations == ["resized", "re encoded", "flipped", "cropped", "edited", "edited"]
    matches = mixed.locator("figure.member .match").all_inner_texts()
    # A resized copy matches on a named hash within its limit, as the files are:
    assert re.fullmatch(r"matched: (phash_eq\w*|phash:16) \d+.*", matches[0]), matches
    assert not any("distance" in text for text in matches)
    # The mirrored copy only matches through its flipped variant, and the page says so:
    assert "variant or keypoints" in matches[2]
    # Safe copies are chosen at first, copies changed on purpose are not:
    copies = mixed.locator("figure.member:not(.best) input.pick")
    checked = copies.evaluate_all("(boxes) => boxes.map(b => b.checked)")
    assert checked == [True, True, False, False, False, False]
    assert mixed.locator(".note").count() == 4
    assert not mixed.locator("figure.best input.pick").is_checked()  # the kept copy: choosable, never chosen
    assert page.locator("#count").inner_text() == f"{2 + 1 + 2 + 11} of {3 + 2 + 7 + 12} files chosen"
    # Long folder names wrap at their slashes and stay inside the card:
    deep = page.locator("section.group").nth(0).locator("figure.member").nth(1)
    assert deep.locator(".dir").evaluate("(e) => e.scrollWidth <= e.clientWidth + 1")
    assert deep.bounding_box()["width"] <= 310
    thumb = deep.locator(".thumb img")
    assert thumb.bounding_box()["width"] >= 280 and thumb.evaluate("(i) => i.naturalWidth") > 280
    page.screenshot(path=str(SCREENSHOTS / "review-page.png"))
    mixed.evaluate("(group) => group.scrollIntoView()")
    page.screenshot(path=str(SCREENSHOTS / "review-group.png"))


@pytest.mark.slow
def test_a_large_group_shows_its_first_members_and_counts_the_rest(page: Any) -> None:
    large = page.locator("section.group").nth(3)
    figures = large.locator("figure.member")
    assert figures.count() == 12
    visible = [figures.nth(i).is_visible() for i in range(12)]
    assert visible == [True] * SHOWN_MEMBERS + [False] * (12 - SHOWN_MEMBERS)
    button = large.locator("button.expand")
    assert re.sub(r"\s+", " ", button.inner_text()) == "show 4 more (resized ×4; 4 chosen)"
    button.click()
    assert all(figures.nth(i).is_visible() for i in range(12))
    figures.nth(11).locator("input.pick").uncheck()
    assert "3 chosen" in button.inner_text() and button.inner_text().startswith("hide")


@pytest.mark.slow
def test_the_keyboard_moves_between_groups_and_members_and_toggles_the_choice(page: Any) -> None:
    current = "section.group.current"
    assert page.locator(current).get_attribute("id") == "group-1"
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert page.locator(current).get_attribute("id") == "group-3"
    focused = page.locator("figure.member.focus")
    assert focused.get_attribute("data-name") == "coffee-small.jpg"
    page.keyboard.press("ArrowRight")
    assert page.locator("figure.member.focus").get_attribute("data-name") == "coffee-email.jpg"
    box = page.locator("figure.member.focus input.pick")
    assert box.is_checked()
    page.keyboard.press("x")
    assert not box.is_checked()
    assert page.locator("#count").inner_text().startswith("15 of")
    page.keyboard.press("k")
    assert page.locator(current).get_attribute("id") == "group-2"
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("l")
    page.keyboard.press("l")
    page.keyboard.press("l")
    page.keyboard.press("l")
    page.keyboard.press("l")
    page.keyboard.press("l")
    page.keyboard.press("l")
    page.keyboard.press("l")  # past the shown members: the group opens
    assert page.locator(current).get_attribute("class").split().count("open") == 1
    assert page.locator("figure.member.focus").is_visible()
    page.keyboard.press("?")
    assert page.locator("#help").is_visible()


@pytest.mark.slow
def test_the_viewer_enlarges_compares_flickers_and_shows_the_difference_aligned(page: Any) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    mixed = page.locator("section.group").nth(2)
    small = mixed.locator("figure.member").nth(1)
    small.locator(".thumb").click()
    viewer = page.locator("#viewer")
    assert viewer.is_visible()
    enlarged = page.locator("#stage img")
    assert enlarged.bounding_box()["width"] > 600  # larger than its 288-pixel thumbnail
    page.screenshot(path=str(SCREENSHOTS / "review-enlarge.png"))

    page.keyboard.press("s")
    labels = page.locator("#stage .label").all_inner_texts()
    assert labels == ["kept copy", "copy"]
    assert page.locator("#stage img").count() == 2
    page.screenshot(path=str(SCREENSHOTS / "review-side-by-side.png"))

    page.keyboard.press("d")
    label = page.locator("#stage .label")
    label.wait_for()
    resized_mean = _mean(label.inner_text())
    assert resized_mean < 8, label.inner_text()

    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")  # the mirrored copy: aligned by flipping it back
    _wait_for_text(page, "#stage .label", "mirrored")
    assert _mean(page.locator("#stage .label").inner_text()) < 8
    page.keyboard.press("ArrowRight")  # the crop: compared with the region of the kept copy it shows
    _wait_for_text(page, "#stage .label", "region")
    assert _mean(page.locator("#stage .label").inner_text()) < 8
    page.keyboard.press("ArrowRight")  # the captioned copy: the caption stands out
    _wait_for_text(page, "#stage", "coffee-captioned")
    assert _mean(page.locator("#stage .label").inner_text()) > 3 * resized_mean
    page.screenshot(path=str(SCREENSHOTS / "review-difference.png"))
    page.keyboard.press("ArrowRight")  # the photo in a chat: compared where the chat shows it
    _wait_for_text(page, "#stage .label", "the part of the copy that shows it")
    assert _mean(page.locator("#stage .label").inner_text()) < 8
    page.screenshot(path=str(SCREENSHOTS / "review-shown-inside.png"))
    page.keyboard.press("ArrowLeft")

    page.keyboard.press("ArrowLeft")
    page.keyboard.press("f")
    page.wait_for_function("document.querySelector('#stage canvas')")
    seen = set()
    for _ in range(12):
        seen.add(page.locator("#stage .label").inner_text().split(" (")[0])
        page.wait_for_timeout(150)
    assert seen == {"kept copy", "copy"}
    page.screenshot(path=str(SCREENSHOTS / "review-flicker.png"))

    page.keyboard.press("Escape")
    assert not viewer.is_visible()


def _mean(label: str) -> float:
    found = re.search(r"mean ([0-9.]+) levels", label)
    assert found, label
    return float(found.group(1))


def _wait_for_text(page: Any, selector: str, text: str) -> None:
    page.wait_for_function(
        "([selector, text]) => (document.querySelector(selector)?.textContent || '').includes(text)",
        arg=[selector, text],
    )


@pytest.mark.slow
def test_the_page_dupes_writes_names_the_preset_clause_that_matched(browser: Any, tmp_path: Path) -> None:
    """End to end: `lookalike dupes DIR --html` on photos and planted copies; the page opens
    without a script error, names the near-duplicate clause that matched each copy, and its
    viewer draws the difference of a copy it grouped."""
    from typer.testing import CliRunner

    from lookalike.cli.app import app

    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in COMMITTED_PHOTOS[:4]:
        shutil.copy(photo, folder / photo.name)
    picture = _rgb(COMMITTED_PHOTOS[0])
    picture.resize((picture.width * 3 // 4, picture.height * 3 // 4)).save(
        folder / "copy-smaller.jpg", quality=70
    )
    report = tmp_path / "review.html"
    done = CliRunner().invoke(app, ["dupes", str(folder), "--html", str(report), "--no-progress"])
    assert done.exit_code == 0, done.output
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(report.as_uri())
        assert page.locator("section.group").count() == 1
        match = page.locator("figure.member:not(.best) .match").inner_text()
        limits: dict[str, int] = {}
        for condition in RULE.conditions:
            name = " + ".join(condition.algorithms)
            limits[name] = max(limits.get(name, 0), condition.max_distance)
        named = re.fullmatch(r"matched: (\S+) (\d+)", match)
        assert named and int(named.group(2)) <= limits[named.group(1)], match
        page.keyboard.press("d")
        _wait_for_text(page, "#stage", "mean")
        assert _mean(page.locator("#stage .label").inner_text()) < 10
    finally:
        page.close()
    assert not errors
