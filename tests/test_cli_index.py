"""The collection commands as a user runs them: index, search, dupes (with --json everywhere)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

import lookalike
from conftest import COMMITTED_PHOTOS
from lookalike.cli.app import app

runner = CliRunner()


def invoke(*args: str) -> tuple[int, list[dict[str, object]], str]:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, lines, result.stdout


@pytest.fixture
def gallery(tmp_path: Path) -> Path:
    """Eight distinct photos plus planted copies of two of them (resized, re-compressed, flipped)."""
    folder = tmp_path / "gallery"
    (folder / "copies").mkdir(parents=True)
    for photo in COMMITTED_PHOTOS[:8]:
        shutil.copy(photo, folder / photo.name)
    original = Image.open(COMMITTED_PHOTOS[1]).convert("RGB")
    original.resize((original.width // 2, original.height // 2)).save(
        folder / "copies" / "small.jpg", quality=60
    )
    original.save(folder / "copies" / "recompressed.jpg", quality=35)
    other = Image.open(COMMITTED_PHOTOS[4]).convert("RGB")
    other.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "copies" / "mirrored.jpg", quality=90)
    return folder


def test_index_add_reports_and_second_run_reads_nothing(gallery: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    code, lines, _ = invoke("index", "add", str(gallery), "-r", "--index", url, "--json", "--workers", "1")
    assert code == 0
    assert lines[0]["added"] == 11 and lines[0]["failed"] == []
    code, lines, _ = invoke("index", "add", str(gallery), "-r", "--index", url, "--json", "--workers", "1")
    assert code == 0 and lines[0]["unchanged"] == 11 and lines[0]["added"] == 0
    code, lines, _ = invoke("index", "stats", "--index", url, "--json")
    assert lines[0]["entries"] == 11
    assert set(lines[0]["algorithms"]) >= {"phash", "colorhash"}  # type: ignore[arg-type]
    code, lines, _ = invoke("index", "list", "--index", url, "--json")
    assert len(lines) == 11 and all("phash" in line["hashes"] for line in lines)  # type: ignore[operator]


def test_index_add_reports_bad_files_and_exits_1(gallery: Path, tmp_path: Path) -> None:
    (gallery / "broken.jpg").write_bytes(b"not a jpeg")
    code, lines, _ = invoke("index", "add", str(gallery), "--index", str(tmp_path / "g.db"), "--json")
    assert code == 1
    assert [f["path"] for f in lines[0]["failed"]] == [str(gallery / "broken.jpg")]  # type: ignore[union-attr]
    assert lines[0]["added"] == 8


def test_search_finds_planted_copies_first(gallery: Path, tmp_path: Path) -> None:
    url = str(tmp_path / "g.db")
    invoke("index", "add", str(gallery), "--index", url, "--workers", "1")  # the originals only
    queries = [str(gallery / "copies" / "small.jpg"), str(gallery / "copies" / "recompressed.jpg")]
    code, lines, _ = invoke("search", *queries, "--index", url, "--json", "--k", "3")
    assert code == 0
    for line in lines:
        matches = line["matches"]
        assert matches[0]["key"] == str(gallery / COMMITTED_PHOTOS[1].name)  # type: ignore[index]
        assert matches[0]["distances"]["phash"] <= 4  # type: ignore[index]
        assert len(matches) == 3  # type: ignore[arg-type]


def test_search_dihedral_finds_the_mirrored_copy(gallery: Path, tmp_path: Path) -> None:
    url = str(tmp_path / "g.db")
    invoke("index", "add", str(gallery), "--index", url, "--workers", "1")
    mirrored = str(gallery / "copies" / "mirrored.jpg")
    _, plain, _ = invoke("search", mirrored, "--index", url, "--json", "--max-distance", "8")
    _, turned, _ = invoke("search", mirrored, "--index", url, "--json", "--max-distance", "8", "--dihedral")
    target = str(gallery / COMMITTED_PHOTOS[4].name)
    assert target not in [m["key"] for m in plain[0]["matches"]]  # type: ignore[attr-defined]
    assert turned[0]["matches"][0]["key"] == target  # type: ignore[index]


def test_search_by_hex_preset_and_fail_on_match(gallery: Path, tmp_path: Path) -> None:
    url = str(tmp_path / "g.db")
    invoke("index", "add", str(gallery), "-r", "--index", url, "--workers", "1")
    original = gallery / COMMITTED_PHOTOS[1].name
    phash = lookalike.hash_file(original, ["phash"])["phash"]
    code, lines, _ = invoke("search", f"phash={phash}", "--index", url, "--json", "--max-distance", "6")
    keys = {m["key"] for m in lines[0]["matches"]}  # type: ignore[attr-defined]
    assert str(original) in keys and str(gallery / "copies" / "small.jpg") in keys
    code, lines, _ = invoke("search", str(original), "--index", url, "--json", "--preset", "near-duplicate")
    assert {m["key"] for m in lines[0]["matches"]} >= {str(original), str(gallery / "copies" / "small.jpg")}  # type: ignore[attr-defined]
    code, _, _ = invoke(
        "search", str(original), "--index", url, "--preset", "near-duplicate", "--fail-on-match"
    )
    assert code == 1
    code, _, _ = invoke("search", "phash=zz", "--index", url)
    assert code == 1  # not hex and not a file: reported per query


def test_dupes_on_a_folder_finds_the_planted_groups(gallery: Path, tmp_path: Path) -> None:
    report = tmp_path / "review.html"
    code, lines, _ = invoke("dupes", str(gallery), "--json", "--html", str(report), "--workers", "1")
    assert code == 0
    groups = [{Path(str(m["path"])).name for m in line["members"]} for line in lines]  # type: ignore[attr-defined]
    assert {COMMITTED_PHOTOS[1].name, "small.jpg", "recompressed.jpg"} in groups
    assert {COMMITTED_PHOTOS[4].name, "mirrored.jpg"} in groups  # found through the mirrored variants
    assert len(groups) == 2
    best = [m for line in lines for m in line["members"] if m["best"]]  # type: ignore[attr-defined]
    assert Path(str(best[0]["path"])).name == COMMITTED_PHOTOS[1].name  # largest copy is the best
    page = report.read_text()
    assert page.count('<section class="group ') == len(lines) and "small.jpg" in page


def test_dupes_actions_are_dry_runs_without_yes(gallery: Path, tmp_path: Path) -> None:
    log = tmp_path / "actions.log"
    before = sorted(p.name for p in gallery.rglob("*.jpg"))
    code, _, _ = invoke("dupes", str(gallery), "--action", "delete", "--log", str(log), "--workers", "1")
    assert code == 0 and sorted(p.name for p in gallery.rglob("*.jpg")) == before and not log.exists()
    code, _, _ = invoke(
        "dupes", str(gallery), "--action", "delete", "--yes", "--log", str(log), "--workers", "1"
    )
    assert code == 0
    assert (gallery / COMMITTED_PHOTOS[1].name).exists()
    assert (
        not (gallery / "copies" / "small.jpg").exists()
        and not (gallery / "copies" / "recompressed.jpg").exists()
    )
    # a mirrored copy is derived work, not a redundant copy: safe by default, it stays
    assert (gallery / "copies" / "mirrored.jpg").exists() and (gallery / COMMITTED_PHOTOS[4].name).exists()
    assert len(log.read_text().splitlines()) == 2
    code, _, _ = invoke(
        "dupes", str(gallery), "--action", "delete", "--yes", "--include-edited", "--log", str(log),
        "--workers", "1",
    )  # fmt: skip
    # with --include-edited one of the pair goes (which is the original, pixels alone cannot say)
    kept = [(gallery / "copies" / "mirrored.jpg").exists(), (gallery / COMMITTED_PHOTOS[4].name).exists()]
    assert code == 0 and sorted(kept) == [False, True]


def test_export_import_round_trip_and_hash_lists(gallery: Path, tmp_path: Path) -> None:
    url = str(tmp_path / "g.db")
    invoke("index", "add", str(gallery), "-r", "--index", url, "--hashes", "phash,pdq", "--workers", "1")
    for name in ("dump.jsonl", "dump.csv"):
        invoke("index", "export", str(tmp_path / name), "--index", url)
        copy = str(tmp_path / f"copy-{name}.db")
        code, lines, _ = invoke("index", "import", str(tmp_path / name), "--index", copy, "--json")
        assert code == 0 and lines[0]["added"] == 11
        with lookalike.open_index(url) as a, lookalike.open_index(copy) as b:
            assert {e.key: dict(e.hashes) for e in a.entries()} == {
                e.key: dict(e.hashes) for e in b.entries()
            }
    hashes = tmp_path / "pdq.txt"
    invoke("index", "export", str(hashes), "--index", url, "--format", "hashes", "--algorithm", "pdq")
    assert len(hashes.read_text().split()) == 11 and all(len(h) == 64 for h in hashes.read_text().split())
    code, lines, _ = invoke("index", "import", str(hashes), "--index", str(tmp_path / "bank.db"), "--json")
    assert code == 0 and lines[0]["added"] == 11


def test_index_compact_drops_what_a_removal_left_in_a_chdb_index(gallery: Path, tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'ch'}"
    invoke("index", "add", str(gallery), "--index", url, "--hashes", "phash", "--workers", "1")
    removed = str(gallery / COMMITTED_PHOTOS[0].name)
    assert invoke("index", "remove", removed, "--index", url, "--json")[1] == [{"removed": 1}]
    assert invoke("index", "compact", "--index", url, "--json")[1] == [{"dropped": 1}]
    assert invoke("index", "compact", "--index", url, "--json")[1] == [{"dropped": 0}]
    code, lines, _ = invoke("index", "list", "--index", url, "--json")
    assert code == 0 and len(lines) == 7 and removed not in {line["key"] for line in lines}


@pytest.mark.parametrize(
    "command",
    [
        ["hash"],
        ["compare"],
        ["index", "add"],
        ["index", "stats"],
        ["index", "compact"],
        ["search"],
        ["dupes"],
        ["index", "import"],
    ],
)
def test_every_command_has_an_example_in_its_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Example" in result.stdout


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert (
        runner.invoke(app, ["search", "x.jpg", "--max-distance", "3", "--preset", "similar"]).exit_code == 2
    )
    assert runner.invoke(app, ["dupes", str(tmp_path), "--action", "move"]).exit_code == 2
    assert runner.invoke(app, ["dupes", str(tmp_path), "--action", "explode"]).exit_code == 2


def test_index_add_stores_local_features_so_search_partial_finds_a_heavy_crop(
    gallery: Path, tmp_path: Path
) -> None:
    """`index add` with the default hashes stores each image's keypoints: a crop keeping 40% of
    the area, off centre, is found by `search --partial` with where it lies in the stored image
    (the global hashes alone miss it: keypoints stored or not decide)."""
    pytest.importorskip("cv2")
    url = f"sqlite:///{tmp_path / 'g.db'}"
    assert invoke("index", "add", str(gallery), "--index", url, "--workers", "1")[0] == 0
    photo = Image.open(COMMITTED_PHOTOS[3]).convert("RGB")
    w, h = photo.size
    box = (int(w * 0.08), int(h * 0.3), int(w * 0.68), int(h * 0.97))
    crop = tmp_path / "crop.png"
    photo.crop(box).save(crop)
    code, lines, _ = invoke("search", str(crop), "--index", url, "--json", "--partial")
    assert code == 0
    matches = lines[0]["matches"]
    assert [Path(str(m["path"])).name for m in matches] == [COMMITTED_PHOTOS[3].name]  # type: ignore[index]
    where = matches[0]["where"]  # type: ignore[index]
    xs = [x for x, _ in where["stored_region"]]
    ys = [y for _, y in where["stored_region"]]
    assert abs(min(xs) - box[0]) < 0.05 * w and abs(max(xs) - box[2]) < 0.05 * w
    assert abs(min(ys) - box[1]) < 0.05 * h and abs(max(ys) - box[3]) < 0.05 * h
