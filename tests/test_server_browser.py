"""The web page in a real headless browser: add photos, search a planted copy, read the answer.

The test set-up installs Debian's `chromium` with apt when it is missing (skipped, with the
reason, only where apt is unavailable) and drives it with Python Playwright on loopback. The
screenshot is saved under test-output/.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PIL import Image

from conftest import COMMITTED_PHOTOS
from lookalike.server import ServerConfig, create_app
from tests_support import serving

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

KEY = "browser-test-key-0123456789"
OUTPUT = Path(__file__).resolve().parent.parent / "test-output"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip


def chromium_path() -> str:
    """Debian's chromium, installed with apt if needed."""
    found = shutil.which("chromium")
    if found:
        return found
    if shutil.which("apt-get") is None:
        pytest.skip("chromium is not installed and apt-get is unavailable to install it")
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        if done.returncode != 0 and command[1] == "install":
            pytest.skip(f"apt-get could not install chromium: {done.stderr.strip()[-300:]}")
    found = shutil.which("chromium")
    if not found:
        pytest.skip("chromium was installed but is not on PATH")
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("browser")
    app = create_app(ServerConfig(index_url=f"sqlite:///{folder / 'index.db'}", api_keys=(KEY,)))
    with serving(app) as (url, _):
        yield url


@pytest.mark.slow
def test_page_adds_photos_by_name_and_separates_matches_from_the_nearest(server: str, tmp_path: Path) -> None:
    """Photos added from the page keep their file names (their ids stay sha256s); a planted copy
    searched with the default rule shows its original as the one match, with the hashes that
    agreed, and the nearest others under a collapsed "nearest, not matching"."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    gallery = [p for p in COMMITTED_PHOTOS if p.suffix == ".jpg"][:6]
    target = gallery[3]
    image = Image.open(target).convert("RGB")
    copy = tmp_path / "planted-copy.jpg"
    image.resize((image.width * 3 // 4, image.height * 3 // 4)).save(copy, quality=60)

    OUTPUT.mkdir(exist_ok=True)
    screenshot = OUTPUT / "web-search.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(server + "/")
            page.fill("#api-key", KEY)
            page.dispatch_event("#api-key", "change")
            page.click("nav button[data-tab=add]")
            page.set_input_files("#add-files", [str(path) for path in gallery])
            page.click("#add-form button[type=submit]")
            page.wait_for_function(
                "() => document.querySelector('#add-status').textContent.startsWith('6/6')", timeout=60_000
            )
            assert page.locator("#add-status").inner_text() == f"6/6: {gallery[-1].name} added"

            page.click("nav button[data-tab=search]")
            assert page.locator("#search-preset").input_value() == "near-duplicate"
            page.set_input_files("#search-file", str(copy))
            page.wait_for_selector("#search-nearest:not([hidden])", timeout=30_000)
            matches = page.locator(".card.match")
            assert matches.count() == 1
            assert matches.first.locator(".id").inner_text() == f"1. {target.name}"
            assert re.fullmatch(
                r"id: [0-9a-f]{64}", matches.first.locator(".id").get_attribute("title") or ""
            )
            agreement = matches.first.locator(".agreement").inner_text()
            assert agreement.startswith("agreed: ") and "phash_eq" in agreement
            assert "phash_eq" in " ".join(matches.first.locator(".badge.agreed").all_inner_texts())
            assert "near-duplicate" in page.locator("#search-status").inner_text()

            nearest = page.locator("#search-nearest")
            assert nearest.get_attribute("open") is None  # collapsed
            assert not page.locator(".card.nearest").first.is_visible()
            assert page.locator("#search-nearest-summary").inner_text() == "5 nearest, not matching"
            names = {name.split(". ", 1)[1] for name in page.locator(".card.nearest .id").all_text_contents()}
            assert names == {path.name for path in gallery} - {target.name}
            page.click("#search-nearest-summary")
            assert page.locator(".card.nearest").first.is_visible()
            loaded = "[...document.querySelectorAll('.card img')].every(i => i.complete && i.naturalWidth)"
            page.wait_for_function(f"() => {loaded}", timeout=15_000)
            page.screenshot(path=str(screenshot), full_page=True)

            page.select_option("#search-preset", "similar")  # the same file, searched again
            page.wait_for_function(
                "() => document.querySelector('#search-status').textContent.includes('similar')",
                timeout=30_000,
            )
            assert page.locator(".card.match .id").first.inner_text() == f"1. {target.name}"
        finally:
            browser.close()
    assert screenshot.stat().st_size > 10_000
    assert Image.open(io.BytesIO(screenshot.read_bytes())).size[0] == 1200


def _add_then_search_partial(page: Page, server: str, stored: Path, query: Path) -> None:
    """On the page: add `stored`, then search `query` with the partial-copy rule and wait for it."""
    page.goto(server + "/")
    page.fill("#api-key", KEY)
    page.dispatch_event("#api-key", "change")
    page.click("nav button[data-tab=add]")
    page.set_input_files("#add-files", [str(stored)])
    page.click("#add-form button[type=submit]")
    page.wait_for_function(
        "() => document.querySelector('#add-status').textContent.startsWith('1/1')", timeout=60_000
    )
    page.click("nav button[data-tab=search]")
    page.select_option("#search-preset", "partial-copy")
    page.set_input_files("#search-file", str(query))
    page.wait_for_function(
        "() => document.querySelector('#search-status').textContent.includes('partial-copy')",
        timeout=30_000,
    )


def _screenshot_card(page: Page, card: Locator, name: str) -> None:
    """Save the card under test-output/ once its pictures have loaded."""
    loaded = "[...document.querySelectorAll('.card.match img')].every(i => i.complete && i.naturalWidth)"
    page.wait_for_function(f"() => {loaded}", timeout=15_000)
    OUTPUT.mkdir(exist_ok=True)
    card.screenshot(path=str(OUTPUT / name))


def _corners(points: str) -> tuple[list[float], list[float]]:
    """The x and the y of an SVG polygon's points ("x,y x,y ...")."""
    corners = [tuple(float(v) for v in pair.split(",")) for pair in points.split()]
    return [x for x, _ in corners], [y for _, y in corners]


@pytest.mark.slow
def test_page_draws_where_a_partial_copy_was_found(server: str, tmp_path: Path) -> None:
    """An uneven crop of a stored photo, searched with the partial-copy rule, is found by its local
    features; its card draws the crop's place on the stored photo's thumbnail."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    original = [p for p in COMMITTED_PHOTOS if p.suffix == ".jpg"][7]
    image = Image.open(original).convert("RGB")
    width, height = image.size
    box = (int(width * 0.22), int(height * 0.06), int(width * 0.95), int(height * 0.78))
    crop = tmp_path / "crop.jpg"
    image.crop(box).save(crop, quality=90)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 700})
            _add_then_search_partial(page, server, original, crop)
            card = page.locator(".card.match", has_text=original.name)
            assert card.count() == 1
            assert "local features" in card.locator(".agreement").inner_text()
            points = card.locator("svg.region polygon").get_attribute("points") or ""
            xs, ys = _corners(points)
            assert abs(min(xs) - 0.22) < 0.02 and abs(max(xs) - 0.95) < 0.02
            assert abs(min(ys) - 0.06) < 0.02 and abs(max(ys) - 0.78) < 0.02
            _screenshot_card(page, card, "web-partial-copy.png")
        finally:
            browser.close()


@contextmanager
def _page() -> Iterator[Page]:
    """A page of headless Chromium (installed if needed), closed afterwards."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1200, "height": 700})
        finally:
            browser.close()


def _collage_file(path: Path, photo: Path, others: tuple[int, ...], seed: int) -> tuple[float, ...]:
    """Save a 2x2 collage of `photo` and three other committed photos at `path`; the relative box
    (left, top, right, bottom) of the cell `photo` fills."""
    from conftest import committed_rgb
    from lookalike.benchmarks.partial import collage, collage_cells, collage_place

    composite = collage(
        committed_rgb(photo, 480), seed, [committed_rgb(COMMITTED_PHOTOS[i], 480) for i in others]
    )
    composite.save(path)
    cells, _ = collage_cells(composite.size)
    left, top, right, bottom = cells[collage_place(seed)]
    width, height = composite.size
    return left / width, top / height, right / width, bottom / height


def _framed_at(card: Locator, polygon: str, box: tuple[float, ...]) -> bool:
    """Whether the card's region polygon (`polygon` picks one) frames `box`, within 3%."""
    xs, ys = _corners(card.locator(polygon).get_attribute("points") or "")
    found = (min(xs), min(ys), max(xs), max(ys))
    return all(abs(a - b) < 0.03 for a, b in zip(found, box, strict=True))


def _only_match(page: Page, server: str, stored: Path, query: Path, name: str) -> Locator:
    """Add `stored`, search `query` with partial-copy: the one match card naming `name`."""
    _add_then_search_partial(page, server, stored, query)
    card = page.locator(".card.match", has_text=name)
    assert card.count() == 1
    return card


@pytest.mark.slow
def test_page_draws_where_in_a_collage_the_stored_photo_lies(server: str, tmp_path: Path) -> None:
    """A 2x2 collage searched with the partial-copy rule finds the stored photo in one cell (the
    cell's own hash); its card shows the collage beside it, framed at that cell."""
    photo = COMMITTED_PHOTOS[1]
    query = tmp_path / "collage.png"
    cell = _collage_file(query, photo, (11, 14, 21), 3)
    with _page() as page:
        card = _only_match(page, server, photo, query, photo.name)
        assert "in your image" in card.inner_text()
        assert _framed_at(card, ".framed svg.region polygon >> nth=-1", cell)
        _screenshot_card(page, card, "web-collage-region.png")


@pytest.mark.slow
def test_page_draws_where_a_photo_lies_in_a_stored_collage(server: str, tmp_path: Path) -> None:
    """The theft check on the page: a stored 2x2 collage is found by searching one of its photos
    (partial-copy), and its card frames the cell that photo fills on the collage's thumbnail."""
    photo = COMMITTED_PHOTOS[4]
    stored = tmp_path / "stored-collage.png"
    cell = _collage_file(stored, photo, (12, 15, 20), 6)
    with _page() as page:
        card = _only_match(page, server, stored, photo, stored.name)
        assert "similar, not verified" not in card.inner_text()
        assert _framed_at(card, "svg.region polygon >> nth=0", cell)
        _screenshot_card(page, card, "web-collage-reverse.png")


@pytest.mark.slow
def test_api_docs_render_offline_under_the_security_policy(server: str) -> None:
    """/docs with every request that is not to the service itself blocked: Swagger UI still shows
    the operations, and the browser reports no violation of the Content-Security-Policy."""
    from playwright.sync_api import Route, sync_playwright

    executable = chromium_path()
    outside: list[str] = []
    problems: list[str] = []

    def only_the_service(route: Route) -> None:
        if route.request.url.startswith(server):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.route("**/*", only_the_service)
            page.on("console", lambda message: message.type == "error" and problems.append(message.text))
            page.goto(server + "/docs")
            page.wait_for_selector(".opblock", timeout=30_000)
            operations = " ".join(page.locator(".opblock-summary-path").all_inner_texts())
            page.screenshot(path=str(OUTPUT / "api-docs.png"), full_page=False)
        finally:
            browser.close()
    assert "/v1/search" in operations and "/v1/banks/{name}/hashes" in operations
    assert outside == [] and not [p for p in problems if "Content Security Policy" in p], problems
