"""Command-line slips a new user hit (issue 15), each as the user typed it: the answer must be the
one they meant, or a clear error, never a silent "0 results"."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from conftest import COMMITTED_PHOTOS
from lookalike.cli.app import app

runner = CliRunner()


def invoke(*args: str) -> click.testing.Result:
    return runner.invoke(app, list(args), catch_exceptions=False)


def run(*args: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    """`lookalike ARGS` in a fresh interpreter (after `prelude`, e.g. to hide a module)."""
    code = "\n".join(
        ["import sys", prelude, "from lookalike.cli.app import main", "sys.argv[0] = 'lookalike'", "main()"]
    )
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of three photos and a half-size copy of the first."""
    folder = tmp_path_factory.mktemp("slips")
    for photo in COMMITTED_PHOTOS[:3]:
        shutil.copy(photo, folder / photo.name)
    with Image.open(COMMITTED_PHOTOS[0]) as image:
        small = image.convert("RGB")
    small.resize((small.width // 2, small.height // 2)).save(folder / "small-copy.jpg", quality=85)
    database = folder / "photos.db"
    result = invoke("index", "add", str(folder), "--index", str(database), "--no-progress")
    assert result.exit_code == 0, result.output
    return database


def test_dupes_short_r_is_max_distance_as_in_search(indexed: Path) -> None:
    result = invoke("dupes", "--index", str(indexed), "-r", "4", "--json")
    assert result.exit_code == 0, result.output
    groups = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(groups) == 1
    names = sorted(Path(member["key"]).name for member in groups[0]["members"])
    assert names == sorted([COMMITTED_PHOTOS[0].name, "small-copy.jpg"])
    assert "No such file" not in result.stderr


def test_no_command_gives_one_option_two_meanings() -> None:
    def commands(group: click.Command, prefix: str) -> list[tuple[str, click.Command]]:
        found = [(prefix, group)]
        if isinstance(group, click.Group):
            for name, command in group.commands.items():
                found += commands(command, f"{prefix} {name}")
        return found

    for name, command in commands(typer.main.get_command(app), "lookalike"):
        spellings = [
            spelling
            for param in command.params
            for spelling in (*param.opts, *param.secondary_opts)
            if isinstance(param, click.Option)
        ]
        repeated = {s for s in spellings if spellings.count(s) > 1}
        assert not repeated, f"{name}: {sorted(repeated)} name two options"


@pytest.mark.parametrize(
    "command",
    [
        ["index", "stats"],
        ["index", "list"],
        ["index", "export", "out.jsonl"],
        ["index", "remove", "some-key"],
        ["search", "phash=8add336a964b306b"],
        ["dupes"],
    ],
)
def test_reading_commands_refuse_a_mistyped_index(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    mistyped = tmp_path / "photso.db"
    result = invoke(*command, "--index", str(mistyped))
    assert result.exit_code == 2
    assert "no index at" in result.output and "photso.db" in result.output
    assert not mistyped.exists()


def test_a_missing_embedded_clickhouse_folder_is_not_created(tmp_path: Path) -> None:
    folder = tmp_path / "no-such-chdb"
    result = invoke("index", "stats", "--index", f"chdb://{folder}")
    assert result.exit_code == 2 and "no index at" in result.output
    assert not folder.exists()


def test_index_add_on_an_existing_path_still_creates_the_index(tmp_path: Path) -> None:
    database = tmp_path / "new.db"
    result = invoke("index", "add", str(COMMITTED_PHOTOS[0]), "--index", str(database), "--no-progress")
    assert result.exit_code == 0 and database.exists()
    assert invoke("index", "stats", "--index", str(database)).exit_code == 0


def test_a_folder_without_images_says_why(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "readme.txt").write_text("no pictures here")
    nested = tmp_path / "nested"
    (nested / "2024").mkdir(parents=True)
    shutil.copy(COMMITTED_PHOTOS[0], nested / "2024" / COMMITTED_PHOTOS[0].name)
    database = str(tmp_path / "t.db")

    added = invoke("index", "add", str(empty), str(notes), str(nested), "--index", database)
    assert f"{empty}: no images in it (empty)" in added.stderr
    assert f"{notes}: no image files in it (1 file, none named .jpg" in added.stderr
    assert f"{nested}: no images directly in it, but its sub-folders have some: add --recursive" in (
        added.stderr
    )
    hashed = invoke("hash", str(nested))
    assert "add --recursive" in hashed.stderr
    recursive = invoke("index", "add", str(nested), "--recursive", "--index", database, "--no-progress")
    assert "no images" not in recursive.stderr and "added 1" in recursive.stderr
    dupes = invoke("dupes", str(empty), "--no-progress")  # dupes descends by itself: no --recursive hint
    assert f"{empty}: no images in it (empty)" in dupes.stderr


def test_hash_prints_in_the_order_the_files_were_named(tmp_path: Path) -> None:
    # A large noisy PNG first: with two workers the small photos after it finish first.
    noise = np.random.default_rng(0).integers(0, 256, (2400, 3200, 3), dtype=np.uint8)
    big = tmp_path / "big.png"
    Image.fromarray(noise).save(big, compress_level=1)
    files = [str(big), *(str(p) for p in COMMITTED_PHOTOS[:6])]
    done = run("hash", *files, "--json", "--workers", "2", "--no-cache", "--no-progress", "--hashes", "phash")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["path"] for line in done.stdout.splitlines()] == files


def test_compare_does_not_sum_hashes_of_different_lengths() -> None:
    source, other = str(COMMITTED_PHOTOS[0]), str(COMMITTED_PHOTOS[1])
    mixed = invoke("compare", source, other, "--hashes", "phash,pdq", "--json")
    assert mixed.exit_code == 0
    row = json.loads(mixed.stdout)
    assert set(row["distances"]) == {"phash", "pdq"} and "total" not in row
    assert "phash is 64 bits; pdq is 256 bits" in mixed.stderr
    table = invoke("compare", source, other, "--hashes", "phash,pdq")
    assert "total" not in table.stdout and "pdq" in table.stdout
    seed = json.loads(invoke("compare", source, other, "--json").stdout)  # aHash 64 + colorhash 42
    assert seed["total"] == seed["distances"]["ahash"] + seed["distances"]["colorhash"]


def test_index_stats_columns_line_up_with_long_names(indexed: Path) -> None:
    result = invoke("index", "stats", "--index", str(indexed))
    rows = [line for line in result.stdout.splitlines() if line.endswith(" flagged")]
    assert any(row.startswith("phash_eq_trimmed_smooth ") for row in rows)
    assert len({row.index(" bits") for row in rows}) == 1
    assert len({row.index(" hashes") for row in rows}) == 1


@pytest.mark.parametrize(
    "command",
    [
        ["hash", str(COMMITTED_PHOTOS[0]), "--out", "{tmp}/hashes.parquet"],
        ["index", "export", "{tmp}/x.parquet"],
    ],
)
def test_the_parquet_hint_names_the_extra(command: list[str], indexed: Path, tmp_path: Path) -> None:
    args = [part.replace("{tmp}", str(tmp_path)) for part in command]
    if args[0] == "index":
        args += ["--index", str(indexed)]
    done = run(*args, prelude="sys.modules['pyarrow'] = None\nsys.modules['pyarrow.parquet'] = None")
    assert done.returncode == 2
    assert "pip install 'lookalike[parquet]'" in done.stderr


def test_search_with_a_bad_hex_hash_says_so_not_no_such_file(indexed: Path) -> None:
    result = invoke("search", "phash=xyz", "--index", str(indexed), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"].startswith("not a hash: 'xyz' is not hexadecimal")
    assert "no such file" not in result.stderr.lower()


def test_importing_text_that_is_not_hex_says_so(indexed: Path, tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text("hello world\n")
    result = run("index", "import", str(listing), "--index", str(indexed))
    assert result.returncode == 2
    assert re.search(r"list\.txt:1: 'hello' is not a hex hash", result.stderr)
    assert "could be several algorithms" not in result.stderr
