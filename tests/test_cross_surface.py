"""One corpus, every surface: the command line, the Python API, HTTP and the web page give the same
duplicate groups, the same search verdicts and the same bank verdicts for the same index and preset.

The corpus is committed photos plus a mirrored copy, a resized copy and a crop of three of them,
added once (by `lookalike index add` from disk, or uploaded through `/v1/images`), on SQLite and
on chDB. Then it is asked through `lookalike dupes --index` and `lookalike search`, through
`Index.duplicates` and `Index.match_many`, through `/v1/duplicates`, `/v1/search` and `/v1/check`
(with a bank of the originals' PDQ hashes, beside the same list imported as an index and searched
with the bank's rule), and through the page in headless Chromium. Every answer is compared by file
name; the duplicate groups must also be the true ones (each copy with its original).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

import lookalike
from conftest import COMMITTED_PHOTOS
from lookalike.index import open_index
from lookalike.matcher import default_index_hashes
from lookalike.server import ServerConfig, create_app
from test_server_browser import CHROMIUM_ARGS, chromium_path
from tests_support import serving

PRESET = "near-duplicate"
BANK = "originals"
BANK_RULE = "pdq <= 31 with quality >= 50"  # a new bank's rule (PDQ defaults), stated for the other surfaces
KEY = "cross-surface-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}

Groups = set[frozenset[str]]
Verdicts = dict[str, frozenset[str]]  # query file name -> names of what it matched


@dataclass(frozen=True)
class Corpus:
    folder: Path
    originals: list[Path]
    copies: dict[str, str]  # copy's name -> its original's name

    def copy(self, edit: str) -> str:
        return next(name for name in self.copies if name.endswith(f"-{edit}.jpg"))

    @property
    def files(self) -> list[Path]:
        return sorted(self.folder.iterdir())

    @property
    def true_groups(self) -> Groups:
        return {frozenset((copy, original)) for copy, original in self.copies.items()}


def make_corpus(folder: Path) -> Corpus:
    folder.mkdir()
    originals = [folder / photo.name for photo in COMMITTED_PHOTOS[:8]]  # JPEG, PNG and WebP
    for photo, path in zip(COMMITTED_PHOTOS[:8], originals, strict=True):
        path.write_bytes(photo.read_bytes())

    def rgb(path: Path) -> Image.Image:
        with Image.open(path) as image:
            return image.convert("RGB")

    mirrored, resized, cropped = (folder / f"{originals[i].stem}-{edit}.jpg" for i, edit in
                                  ((1, "mirrored"), (2, "resized"), (3, "cropped")))  # fmt: skip
    rgb(originals[1]).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirrored, quality=90)
    image = rgb(originals[2])
    image.resize((image.width * 3 // 5, image.height * 3 // 5)).save(resized, quality=85)
    image = rgb(originals[3])
    width, height = image.size
    image.crop((width // 10, height // 10, width - width // 10, height - height // 10)).save(
        cropped, quality=90
    )
    copies = {
        mirrored.name: originals[1].name,
        resized.name: originals[2].name,
        cropped.name: originals[3].name,
    }
    return Corpus(folder, originals, copies)


def name(key: str) -> str:
    """Keys are absolute paths (`index add`) or the file names given as ids (uploads)."""
    return Path(key).name


# ----- the surfaces --------------------------------------------------------------------------------
def lookalike_cli(*arguments: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "lookalike", *arguments], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"lookalike {' '.join(arguments)}:\n{done.stderr}"
    return done.stdout


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def cli_groups(url: str) -> Groups:
    found = json_lines(lookalike_cli("dupes", "--index", url, "--preset", PRESET, "--json"))
    return {frozenset(name(member["key"]) for member in group["members"]) for group in found}


def cli_verdicts(url: str, files: list[Path], preset: str) -> Verdicts:
    found = json_lines(
        lookalike_cli("search", *map(str, files), "--index", url, "--preset", preset, "--json")
    )
    return {name(row["query"]): frozenset(name(match["key"]) for match in row["matches"]) for row in found}


def api_groups(url: str) -> Groups:
    with open_index(url) as index:
        return {
            frozenset(name(entry.key) for entry in group.members)
            for group in index.duplicates(matcher=PRESET)
        }


def api_verdicts(url: str, files: list[Path], preset: str, hashes: list[str]) -> Verdicts:
    """What README's Python section shows: hash the upload with its variants, then `match`."""
    queries = [lookalike.hash_file(path, hashes, dihedral=True, local=True) for path in files]
    with open_index(url) as index:
        answers = index.match_many(queries, preset)
    return {
        path.name: frozenset(name(v.key) for v in answer) for path, answer in zip(files, answers, strict=True)
    }


def http_groups(http: httpx.Client) -> Groups:
    body = http.get("/v1/duplicates", params={"preset": PRESET}).json()
    return {frozenset(name(member["id"]) for member in group["members"]) for group in body["groups"]}


def http_verdicts(http: httpx.Client, files: list[Path]) -> Verdicts:
    found = {}
    for path in files:
        response = http.post(
            "/v1/search", files={"file": (path.name, path.read_bytes())}, data={"preset": PRESET}
        )
        assert response.status_code == 200, response.text
        found[path.name] = frozenset(name(match["id"]) for match in response.json()["matches"])
    return found


def http_checks(http: httpx.Client, files: list[Path]) -> Verdicts:
    found = {}
    for path in files:
        response = http.post("/v1/check", files={"file": (path.name, path.read_bytes())})
        assert response.status_code == 200, response.text
        (bank,) = response.json()["banks"]
        found[path.name] = frozenset(match["id"] for match in bank["matches"])
    return found


@dataclass
class Answers:
    """What one surface answered: duplicate groups, search verdicts, bank verdicts."""

    groups: Groups
    verdicts: Verdicts
    checks: Verdicts


def page_answers(url: str, searched: list[Path], checked: list[Path]) -> Answers:
    """The same questions asked by clicking through the web page in headless Chromium."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(url + "/")
            ids = "nodes => nodes.map(n => n.title.slice(4))"  # each card's title is "id: <id>"

            page.click("nav button[data-tab=duplicates]")
            assert page.locator("#dupes-preset").input_value() == PRESET
            with page.expect_response(lambda response: "/v1/duplicates" in response.url):
                page.click("#dupes-form button[type=submit]")
            page.wait_for_function(
                "() => / groups$/.test(document.querySelector('#dupes-status').textContent)"
            )
            groups = {
                frozenset(name(key) for key in group.locator(".id").evaluate_all(ids))
                for group in page.locator("#dupes-results .group").all()
            }

            page.click("nav button[data-tab=search]")
            assert page.locator("#search-preset").input_value() == PRESET
            verdicts = {}
            for path in searched:
                with page.expect_response(lambda response: response.url.endswith("/v1/search")):
                    page.set_input_files("#search-file", str(path))
                page.wait_for_function(
                    "() => !document.querySelector('#search-status').textContent.startsWith('search')"
                )
                verdicts[path.name] = frozenset(
                    name(key) for key in page.locator(".card.match .id").evaluate_all(ids)
                )

            page.click("nav button[data-tab=banks]")
            checks = {}
            for path in checked:
                page.evaluate("document.querySelector('#check-results').replaceChildren()")
                page.set_input_files("#check-file", str(path))
                with page.expect_response(lambda response: response.url.endswith("/v1/check")):
                    page.click("#check-form button[type=submit]")
                page.wait_for_function("() => document.querySelectorAll('#check-results .card').length > 0")
                checks[path.name] = frozenset(
                    page.locator("#check-results .card .match-id").all_text_contents()
                )
        finally:
            browser.close()
    return Answers(groups, verdicts, checks)


# ----- the test ------------------------------------------------------------------------------------
@contextlib.contextmanager
def service(url: str, folder: Path) -> Iterator[tuple[str, httpx.Client]]:
    """The service over `url` on loopback (closed afterwards: chDB allows one user of a path)."""
    app = create_app(ServerConfig(index_url=url, api_keys=(KEY,), banks_dir=str(folder)))
    with serving(app) as (base, _), httpx.Client(base_url=base, headers=AUTH, timeout=120) as http:
        yield base, http


@pytest.mark.slow
@pytest.mark.parametrize("added_by", ["index add", "uploads"])
@pytest.mark.parametrize("backend", ["sqlite", "chdb"])
def test_every_surface_gives_the_same_groups_and_verdicts(
    backend: str, added_by: str, tmp_path: Path
) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    url = f"sqlite:///{tmp_path / 'index.db'}" if backend == "sqlite" else f"chdb://{tmp_path / 'chdb'}"
    outsider = tmp_path / COMMITTED_PHOTOS[12].name  # in neither the index nor the bank
    outsider.write_bytes(COMMITTED_PHOTOS[12].read_bytes())
    queries = [*corpus.files, outsider]
    mirrored, resized, cropped = (corpus.copy(edit) for edit in ("mirrored", "resized", "cropped"))
    on_page = [corpus.folder / copy for copy in (mirrored, resized, cropped)] + [corpus.originals[5]]
    bank_list = tmp_path / "originals.pdq.txt"
    bank_list.write_text(
        "".join(f"{lookalike.hash_file(p, ['pdq'])['pdq']} {p.name}\n" for p in corpus.originals)
    )

    if added_by == "index add":
        lookalike_cli("index", "add", str(corpus.folder), "--index", url)
    with service(url, tmp_path / "server") as (base, http):
        if added_by == "uploads":
            for path in corpus.files:
                added = http.post(
                    "/v1/images", files={"file": (path.name, path.read_bytes())}, data={"id": path.name}
                )
                assert added.status_code == 201, added.text
        assert http.post("/v1/banks", json={"name": BANK}).status_code == 201
        text = {"Content-Type": "text/plain"}
        imported = http.post(f"/v1/banks/{BANK}/hashes", content=bank_list.read_text(), headers=text)
        assert imported.json()["added"] == len(corpus.originals)
        http_answers = Answers(http_groups(http), http_verdicts(http, queries), http_checks(http, queries))
        page = page_answers(base, on_page, on_page)
    list_url = f"sqlite:///{tmp_path / 'originals.db'}"  # the bank's list as an index of its own
    lookalike_cli("index", "import", str(bank_list), "--index", list_url, "--algorithm", "pdq")
    cli = Answers(
        cli_groups(url), cli_verdicts(url, queries, PRESET), cli_verdicts(list_url, queries, BANK_RULE)
    )
    api = Answers(
        api_groups(url),
        api_verdicts(url, queries, PRESET, list(default_index_hashes())),
        api_verdicts(list_url, queries, BANK_RULE, ["pdq"]),
    )

    # Duplicate groups: the true ones, everywhere (the mirrored copy with its original included).
    assert cli.groups == corpus.true_groups
    assert api.groups == http_answers.groups == page.groups == cli.groups
    # Search verdicts, query by query.
    assert api.verdicts == http_answers.verdicts == cli.verdicts
    assert corpus.copies[mirrored] in cli.verdicts[mirrored] and cli.verdicts[outsider.name] == frozenset()
    assert page.verdicts == {path.name: cli.verdicts[path.name] for path in on_page}
    # Bank verdicts: /v1/check beside the same list searched with the bank's rule.
    assert api.checks == http_answers.checks == cli.checks
    assert cli.checks[mirrored] == {corpus.copies[mirrored]} and cli.checks[outsider.name] == frozenset()
    assert page.checks == {path.name: cli.checks[path.name] for path in on_page}
