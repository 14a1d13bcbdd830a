"""The command line against hostile file names and ids (issue 16, findings 2, 8 and 11).

Commands run as a user runs them, in a process of their own with a UTF-8 stdout (where a name that
is not UTF-8 used to end the run with a UnicodeEncodeError traceback).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from conftest import COMMITTED_PHOTOS
from lookalike.server import ServerConfig, create_app

KEY = "cli-security-key-0123456789"
BAD_NAME = os.fsdecode(b"bad\xff\xfe.jpg")  # not UTF-8: Latin-1 bytes from another system
ESCAPE_NAME = "esc\x1b]0;pwned\x07\x1b[2J.jpg"  # sets the terminal title, clears the screen


def lookalike(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": ""}
    quiet = ["--no-progress"] if args[0] in ("hash", "dupes") or args[:2] == ("index", "add") else []
    command = [sys.executable, "-m", "lookalike", *args, *quiet]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, timeout=300)


def copies_of(photo: Path, folder: Path, names: list[str]) -> list[Path]:
    """`names` in `folder`, each a smaller re-compressed copy of `photo` (distinct bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    with Image.open(photo) as opened:
        image = opened.convert("RGB")
    made = []
    for number, name in enumerate(names):
        target = folder / name
        scale = 0.9 - 0.1 * number
        image.resize((int(image.width * scale), int(image.height * scale))).save(target, "JPEG", quality=80)
        made.append(target)
    return made


@pytest.fixture
def nasty(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    names = ["plain.jpg", BAD_NAME, ESCAPE_NAME, "carriage\rreturn.jpg", "new\nline.jpg", "q'uo\"te $(x).jpg"]
    copies_of(COMMITTED_PHOTOS[1], folder, names)
    return folder


# ----- finding 8: a name that is not UTF-8 stopped hash, index add and dupes ------------------------
def test_a_name_that_is_not_utf8_is_hashed_indexed_and_reported(nasty: Path, tmp_path: Path) -> None:
    hashed = lookalike("hash", str(nasty), "--json", "--hashes", "phash", cwd=tmp_path)
    assert hashed.returncode == 0 and b"Traceback" not in hashed.stderr, hashed.stderr
    paths = {os.fsencode(json.loads(line)["path"]) for line in hashed.stdout.splitlines()}
    assert os.fsencode(nasty / BAD_NAME) in paths and len(paths) == 6

    url = f"sqlite:///{tmp_path / 'index.db'}"
    added = lookalike("index", "add", str(nasty), "--index", url, "--json", cwd=tmp_path)
    assert added.returncode == 0 and json.loads(added.stdout)["added"] == 6, added.stderr

    found = lookalike("dupes", "--index", url, "--json", cwd=tmp_path)
    assert found.returncode == 0 and b"Traceback" not in found.stderr, found.stderr
    members = [member for line in found.stdout.splitlines() for member in json.loads(line)["members"]]
    assert os.fsencode(nasty / BAD_NAME) in {os.fsencode(member["path"]) for member in members}
    text = lookalike("dupes", "--index", url, cwd=tmp_path)
    assert b"bad\\xff\\xfe.jpg" in text.stdout and text.returncode == 0


# ----- finding 11: escape sequences in names reached the terminal raw --------------------------------
def test_escape_sequences_in_names_never_reach_the_terminal(nasty: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'index.db'}"
    for args in (
        ["hash", str(nasty)],
        ["index", "add", str(nasty), "--index", url],
        ["index", "list", "--index", url],
        ["dupes", "--index", url, "--action", "delete"],  # a dry run, printed
        ["dupes", str(nasty), "--json"],
    ):
        done = lookalike(*args, cwd=tmp_path)
        assert done.returncode == 0, (args, done.stderr)
        for stream in (done.stdout, done.stderr):
            assert b"\x1b" not in stream and b"\x07" not in stream and b"\r" not in stream, (args, stream)
    listed = lookalike("index", "list", "--index", url, cwd=tmp_path).stdout
    assert b"esc\\x1b]0;pwned\\x07\\x1b[2J.jpg" in listed and b"carriage\\rreturn.jpg" in listed


# ----- finding 2: ids sent over HTTP became file paths for `dupes --action` ------------------------
@pytest.fixture
def poisoned(tmp_path: Path) -> tuple[str, Path, list[Path]]:
    """An index with a folder `index add` made, and entries a key holder added over HTTP whose ids
    are paths of files outside it: near-copies of each other, and a larger copy of a folder photo."""
    url = f"sqlite:///{tmp_path / 'index.db'}"
    folder = tmp_path / "photos"
    files = copies_of(COMMITTED_PHOTOS[4], folder, ["mine.jpg", "mine-smaller.jpg"])
    assert lookalike("index", "add", str(folder), "--index", url, cwd=tmp_path).returncode == 0
    victims = tmp_path / "victims"
    decoy, victim = copies_of(COMMITTED_PHOTOS[2], victims, ["decoy.jpg", "victim.jpg"])
    bigger = victims / "bigger.jpg"
    with Image.open(COMMITTED_PHOTOS[4]) as photo:
        photo.convert("RGB").save(bigger, "JPEG", quality=95)
    config = ServerConfig(index_url=url, api_keys=(KEY,), banks_dir=str(tmp_path / "server"))
    with TestClient(create_app(config), base_url="http://localhost") as client:
        for path in (decoy, victim, bigger):
            response = client.post(
                "/v1/images",
                files={"file": path.read_bytes()},
                data={"id": str(path), "metadata": json.dumps({"path": str(victim)})},
                headers={"Authorization": f"Bearer {KEY}"},
            )
            assert response.status_code == 201, response.text
    return url, victims, files


@pytest.mark.parametrize("action", ["delete", "move", "hardlink"])
def test_actions_never_touch_files_named_by_http_ids(
    poisoned: tuple[str, Path, list[Path]], tmp_path: Path, action: str
) -> None:
    url, victims, files = poisoned
    before = {path: path.read_bytes() for path in [*victims.iterdir(), *files]}
    # --keep largest makes the larger upload the group's best copy, and --include-edited selects
    # the uploads (unverified: their files are not read) as well: every such step is refused.
    args = ["dupes", "--index", url, "--preset", "similar", "--action", action, "--yes", "--log", "a.log",
            "--keep", "largest", "--include-edited"]  # fmt: skip
    done = lookalike(*args, "--dest", str(tmp_path / "moved"), cwd=tmp_path)
    assert b"left alone" in done.stderr or b"not indexed from disk" in done.stderr, done.stderr
    for path, data in before.items():  # the victims, and the folder's photo whose best copy is an id
        assert path.exists() and path.read_bytes() == data and os.stat(path).st_nlink == 1, path
    assert not (tmp_path / "moved").exists() or not any((tmp_path / "moved").rglob("*.jpg"))


def test_actions_refuse_a_file_changed_since_it_was_indexed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'index.db'}"
    best, copy = copies_of(COMMITTED_PHOTOS[3], tmp_path / "photos", ["best.jpg", "copy.jpg"])
    assert lookalike("index", "add", str(tmp_path / "photos"), "--index", url, cwd=tmp_path).returncode == 0
    data = bytearray(copy.read_bytes())
    data[-3] ^= 0xFF  # same size, other bytes: another file now, whatever the index says
    copy.write_bytes(bytes(data))
    done = lookalike("dupes", "--index", url, "--action", "delete", "--yes", "--log", "a.log", cwd=tmp_path)
    assert done.returncode == 1 and b"changed since it was indexed" in done.stderr
    assert copy.exists() and best.exists()
