"""Acting on duplicate groups (dry runs, never the best copy, a log) and the HTML review page."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

import lookalike
from conftest import COMMITTED_PHOTOS
from lookalike.dedupe import actions
from lookalike.dedupe.grouping import Group
from lookalike.dedupe.report import render_report
from lookalike.index.base import FROM_API, FROM_FILE, Entry


def _entry(path: Path, width: int, height: int, origin: str | None = FROM_FILE) -> Entry:
    """An entry as `index add` makes it (origin FROM_FILE, the file's size and sha256)."""
    return Entry(
        id=0, key=str(path), hashes={}, sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        byte_size=path.stat().st_size, width=width, height=height, mtime=path.stat().st_mtime,
        added_at=0.0, origin=origin,
    )  # fmt: skip


@pytest.fixture
def group(tmp_path: Path) -> Group:
    files = []
    for index in range(3):
        target = tmp_path / "photos" / f"copy{index}.jpg"
        target.parent.mkdir(exist_ok=True)
        shutil.copy(COMMITTED_PHOTOS[1], target)
        files.append(target)
    members = (_entry(files[0], 800, 600), _entry(files[1], 400, 300), _entry(files[2], 200, 150))
    return Group(members, {(str(files[0]), str(files[1])): 2, (str(files[0]), str(files[2])): 5})


def test_plan_never_includes_the_best_copy(group: Group) -> None:
    for action in actions.ACTIONS:
        steps = actions.plan([group], action, destination="/tmp/dest")
        assert [s.path for s in steps] == [m.key for m in group.members[1:]]
        assert all(s.keep == group.best.key for s in steps)


def test_delete_removes_duplicates_keeps_best_and_logs(group: Group, tmp_path: Path) -> None:
    log = tmp_path / "actions.log"
    results = list(actions.execute(actions.plan([group], "delete"), log))
    assert all(r.ok for r in results)
    assert os.path.exists(group.best.key)
    assert not any(os.path.exists(m.key) for m in group.members[1:])
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["path"] for r in records] == [m.key for m in group.members[1:]]


def test_hardlink_replaces_duplicates_with_links_to_best(group: Group, tmp_path: Path) -> None:
    list(actions.execute(actions.plan([group], "hardlink"), tmp_path / "log"))
    best = os.stat(group.best.key)
    for member in group.members[1:]:
        assert os.stat(member.key).st_ino == best.st_ino


def test_move_never_overwrites(group: Group, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    steps = actions.plan([group], "move", destination=dest)
    (dest / "group-00001").mkdir(parents=True)
    (dest / "group-00001" / "copy1.jpg").write_text("already here")
    results = list(actions.execute(steps, tmp_path / "log"))
    assert all(r.ok for r in results)
    assert (dest / "group-00001" / "copy1.jpg").read_text() == "already here"
    assert (dest / "group-00001" / "copy1-1.jpg").exists()


def test_missing_best_copy_leaves_duplicates_alone(group: Group, tmp_path: Path) -> None:
    os.remove(group.best.key)
    results = list(actions.execute(actions.plan([group], "delete"), tmp_path / "log"))
    assert not any(r.ok for r in results)
    assert all(os.path.exists(m.key) for m in group.members[1:])


def test_report_is_self_contained_and_lists_members(group: Group) -> None:
    page = render_report([group])
    assert page.count("<figure") == 3
    assert "data:image/jpeg;base64," in page
    assert "http://" not in page and "https://" not in page
    assert "kept copy" in page and "800×600" in page and "matched: same bytes" in page
    assert page.count("class=pick") == 3 and page.count(" checked>") == 2  # the kept copy is not chosen
    assert "exportScript" in page and "exportJson" in page


def test_report_escapes_hostile_file_names(tmp_path: Path) -> None:
    nasty = tmp_path / "<script>alert(1)<'x'>.jpg"
    shutil.copy(COMMITTED_PHOTOS[0], nasty)
    page = render_report([Group((_entry(nasty, 10, 10), _entry(nasty, 10, 10)))])
    assert "<script>alert(1)" not in page


def test_only_files_indexed_from_disk_are_acted_on(tmp_path: Path) -> None:
    """An id from a client (FROM_API, or no origin) is no file: never a step's copy, never its best copy."""
    files = []
    for index in range(3):
        files.append(tmp_path / f"copy{index}.jpg")
        shutil.copy(COMMITTED_PHOTOS[1], files[-1])
    api_best = Group((_entry(files[0], 800, 600, FROM_API), _entry(files[1], 400, 300)))
    api_copy = Group((_entry(files[1], 800, 600), _entry(files[2], 400, 300, origin=None)))
    results = list(actions.execute(actions.plan([api_best, api_copy], "delete"), tmp_path / "log"))
    assert [r.ok for r in results] == [False, False]
    assert "best copy" in results[0].message and "not indexed from disk" in results[1].message
    assert all(path.exists() for path in files)


def test_a_file_whose_bytes_changed_since_indexing_is_left_alone(group: Group, tmp_path: Path) -> None:
    copy = Path(group.members[1].key)
    data = bytearray(copy.read_bytes())
    data[100] ^= 1  # same size
    copy.write_bytes(bytes(data))
    results = list(actions.execute(actions.plan([group], "delete"), tmp_path / "log"))
    assert [r.ok for r in results] == [False, True]
    assert "changed since it was indexed" in results[0].message and copy.exists()


def test_report_trusts_no_metadata_path_and_offers_only_indexed_files(tmp_path: Path) -> None:
    victim = tmp_path / "victim.jpg"
    shutil.copy(COMMITTED_PHOTOS[0], victim)
    mine = tmp_path / "mine.jpg"
    shutil.copy(COMMITTED_PHOTOS[1], mine)
    forged = Entry(
        id=1, key=str(victim), hashes={}, sha256="ab" * 32, byte_size=10, width=10, height=10,
        mtime=None, added_at=0.0, metadata={"path": str(victim)}, origin=FROM_API,
    )  # fmt: skip
    page = render_report([Group((_entry(mine, 800, 600), forged))])
    assert page.count("class=pick") == 1 and os.fsencode(str(victim)).hex() not in page
    assert page.count("data:image/jpeg") == 1  # the id's "file" is never opened for a preview


def test_report_names_the_hash_that_matched_and_its_distance(tmp_path: Path) -> None:
    """Not "distance 5": the clause of the rule that matched, on the pair's stored hashes."""
    kept, small = tmp_path / "kept.jpg", tmp_path / "small.jpg"
    with Image.open(COMMITTED_PHOTOS[3]) as image:
        picture = image.convert("RGB")
    picture.save(kept, quality=95)
    picture.resize((picture.width // 2, picture.height // 2)).save(small, quality=70)
    mirrored = tmp_path / "mirrored.jpg"
    picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirrored, quality=90)
    entries = []
    for path in (kept, small, mirrored):
        hashes = lookalike.hash_file(path, ["phash", "colorhash"])
        entries.append(replace(_entry(path, 10, 10), hashes=dict(hashes)))  # type: ignore[arg-type]
    distance = entries[0].hashes["phash"] - entries[1].hashes["phash"]
    pairs = {tuple(sorted((str(kept), str(small)))): distance, tuple(sorted((str(kept), str(mirrored)))): 1}
    page = render_report([Group(tuple(entries), pairs)], rule="phash <= 10 and colorhash <= 8")  # type: ignore[arg-type]
    colour = entries[0].hashes["colorhash"] - entries[1].hashes["colorhash"]
    assert f"matched: phash {distance} and colorhash {colour}" in page
    assert f"phash: {distance} of 64 bits differ (limit 10)" in page
    assert "matched: a variant or keypoints (phash " in page  # the mirror matched through its variant
