"""The review page's exported script, end to end: the page opened in headless Chromium, the
chosen files exported with its button, the downloaded script run. File names that broke the old
shell script (a carriage return, a newline, quotes, `$(...)`, bytes that are not UTF-8) are
trashed exactly; a file changed since it was indexed is left alone; `--delete` deletes for good.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from conftest import COMMITTED_PHOTOS
from lookalike.dedupe.grouping import Group
from lookalike.dedupe.report import write_report
from lookalike.index.base import FROM_FILE, Entry
from test_server_browser import CHROMIUM_ARGS, chromium_path

NAMES = [
    "carriage\rreturn.jpg",
    "new\nline.jpg",
    "q'uo\"te $(touch pwned).jpg",
    os.fsdecode(b"bad\xff\xfe.jpg"),
]


def indexed_group(folder: Path) -> tuple[Path, list[Path]]:
    """A best copy and its smaller copies under hostile names, as entries `index add` makes."""
    folder.mkdir()
    with Image.open(COMMITTED_PHOTOS[2]) as opened:
        image = opened.convert("RGB")
    best = folder / "best.jpg"
    image.save(best, quality=95)
    copies = []
    for number, name in enumerate(NAMES, start=1):
        copies.append(folder / name)
        image.resize((image.width - 20 * number, image.height - 20 * number)).save(copies[-1], "JPEG")
    return best, copies


def entry(path: Path) -> Entry:
    with Image.open(path) as image:
        width, height = image.size
    data = path.read_bytes()
    return Entry(
        id=0, key=str(path), hashes={}, sha256=hashlib.sha256(data).hexdigest(), byte_size=len(data),
        width=width, height=height, mtime=None, added_at=0.0, origin=FROM_FILE,
    )  # fmt: skip


def exported_script(report: Path, target: Path) -> Path:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(report.as_uri())
            with page.expect_download() as download:
                page.click("text=export script")
            download.value.save_as(target)
        finally:
            browser.close()
    return target


def run(script: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "LC_ALL": "C.UTF-8"}
    return subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, env=env, cwd=home, timeout=60
    )


@pytest.mark.slow
def test_the_exported_script_trashes_exactly_the_chosen_files_whatever_their_names(tmp_path: Path) -> None:
    best, copies = indexed_group(tmp_path / "photos")
    report = tmp_path / "review.html"
    write_report([Group((entry(best), *(entry(copy) for copy in copies)))], report)
    changed = copies[0]
    changed.write_bytes(changed.read_bytes()[:-10])  # not the file that was indexed any more
    home = tmp_path / "home"
    home.mkdir()
    done = run(exported_script(report, tmp_path / "trash.py"), home)
    assert (
        done.returncode == 1 and "left alone" in done.stderr and "changed since it was indexed" in done.stderr
    )
    assert best.exists() and changed.exists() and not (home / "pwned").exists()
    assert not any(path.exists() for path in copies[1:])
    trashed = {os.fsencode(p.name) for p in (home / "data" / "Trash" / "files").iterdir()}
    assert trashed == {os.fsencode(path.name) for path in copies[1:]}


@pytest.mark.slow
def test_the_exported_script_deletes_for_good_only_with_delete(tmp_path: Path) -> None:
    best, copies = indexed_group(tmp_path / "photos")
    report = tmp_path / "review.html"
    write_report([Group((entry(best), *(entry(copy) for copy in copies)))], report)
    home = tmp_path / "home"
    home.mkdir()
    done = run(exported_script(report, tmp_path / "trash.py"), home, "--delete")
    assert done.returncode == 0, done.stderr
    assert best.exists() and not any(path.exists() for path in copies)
    assert not (home / "data" / "Trash").exists()
