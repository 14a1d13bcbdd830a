"""`lookalike dupes` as a photographer needs it: exact copies are found and reported first, every
member says what it is to the kept copy, and only copies that lose nothing are selected."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import COMMITTED_PHOTOS
from lookalike.benchmarks.derived_copies import DERIVATIONS, make_family
from lookalike.cli.app import app
from lookalike.dedupe import actions
from lookalike.dedupe.describe import describe_groups
from lookalike.dedupe.fidelity import estimate_jpeg_quality, load_facts
from lookalike.dedupe.relations import relate
from lookalike.index import open_index
from lookalike.index.files import _same_bytes

runner = CliRunner()


def dupes_json(*args: str) -> list[dict[str, object]]:
    result = runner.invoke(app, ["dupes", *args, "--json", "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.stdout
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Four photos, each with one kind of duplicate: an exact copy, the same pixels in PNG, a
    small copy, and a mirrored plus a recoloured copy."""
    root = tmp_path / "photos"
    root.mkdir()
    exact, pixels, small, edited = (
        COMMITTED_PHOTOS[1],
        COMMITTED_PHOTOS[4],
        COMMITTED_PHOTOS[6],
        COMMITTED_PHOTOS[9],
    )
    shutil.copy(exact, root / "exact.jpg")
    shutil.copy(exact, root / "exact-copy.jpg")
    shutil.copy(pixels, root / "pixels.jpg")
    Image.open(pixels).save(root / "pixels-as.png")  # same decoded pixels, another container
    shutil.copy(small, root / "small-original.jpg")
    picture = Image.open(small).convert("RGB")
    picture.resize((picture.width // 2, picture.height // 2), Image.Resampling.LANCZOS).save(
        root / "small-copy.jpg", quality=85
    )
    shutil.copy(edited, root / "edited-original.jpg")
    picture = Image.open(edited).convert("RGB")
    picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(root / "edited-mirrored.jpg", quality=92)
    Image.eval(picture, lambda v: min(255, int(v * 1.3))).save(root / "edited-brighter.jpg", quality=92)
    return root


def test_identical_files_keep_one_entry_each_and_are_decoded_once(tmp_path: Path) -> None:
    for name in ("a.jpg", "b.jpg"):
        shutil.copy(COMMITTED_PHOTOS[1], tmp_path / name)
    paths = [str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")]
    unique, copies = _same_bytes(paths, {path: Path(path).stat() for path in paths})
    assert unique == paths[:1] and copies[paths[0]] == paths[1:]
    with open_index(str(tmp_path / "i.db")) as index:
        report = index.add_files(paths)
        assert (report.added, report.same_bytes) == (2, ())
        first, second = index.get(paths[0]), index.get(paths[1])
        assert first is not None and second is not None
        assert first.sha256 == second.sha256 and first.hashes == second.hashes


def test_dupes_reports_each_tier_in_order_with_every_members_relation(folder: Path) -> None:
    groups = dupes_json(str(folder))
    tiers = [group["tier"] for group in groups]
    assert tiers == ["identical-files", "identical-pixels", "copies", "edited-copies"]
    relations = {
        Path(str(member["path"])).name: (member["relation"] or {}).get("kind")  # type: ignore[union-attr]
        for group in groups
        for member in group["members"]  # type: ignore[attr-defined]
    }
    assert relations == {
        "exact.jpg": None,
        "exact-copy.jpg": "identical-file",
        "pixels.jpg": None,
        "pixels-as.png": "identical-pixels",
        "small-original.jpg": None,
        "small-copy.jpg": "resized",
        "edited-original.jpg": None,
        "edited-mirrored.jpg": "flipped",
        "edited-brighter.jpg": "edited",
    }
    selected = {Path(str(m["path"])).name for g in groups for m in g["members"] if m["selected"]}  # type: ignore[attr-defined]
    assert selected == {"exact-copy.jpg", "pixels-as.png", "small-copy.jpg"}


def test_text_output_heads_each_tier_and_names_relations(folder: Path) -> None:
    result = runner.invoke(app, ["dupes", str(folder), "--no-progress"], catch_exceptions=False)
    text = result.stdout
    assert (
        text.index("identical files (same bytes):") < text.index("identical pixels") < text.index("copies (")
    )
    assert "flipped (mirror)" in text and "edited (tone/colour)" in text
    assert "keep  " in text and "identical-file" in text


def test_actions_leave_edited_copies_alone_unless_asked(folder: Path) -> None:
    with open_index(str(folder.parent / "i.db")) as index:
        index.add_files(sorted(str(p) for p in folder.iterdir()))
        groups = describe_groups(index.duplicates(matcher="near-duplicate"))
    safe = {Path(step.path).name for step in actions.plan(groups, "delete")}
    assert safe == {"exact-copy.jpg", "pixels-as.png", "small-copy.jpg"}
    every = {Path(step.path).name for step in actions.plan(groups, "delete", include_edited=True)}
    assert every == safe | {"edited-mirrored.jpg", "edited-brighter.jpg"}


def test_keep_rules_choose_the_copy_asked_for(folder: Path) -> None:
    newest = dupes_json(str(folder), "--keep", "newest")
    small = next(g for g in newest if any("small-copy" in str(m["path"]) for m in g["members"]))  # type: ignore[attr-defined]
    assert Path(str(small["members"][0]["path"])).name == "small-copy.jpg"  # type: ignore[index]
    by_path = dupes_json(str(folder), "--keep", f"path:{folder / 'edited-b'}")
    edited = next(g for g in by_path if g["tier"] == "edited-copies")
    assert Path(str(edited["members"][0]["path"])).name == "edited-brighter.jpg"  # type: ignore[index]
    auto = dupes_json(str(folder))
    kept = {Path(str(g["members"][0]["path"])).name for g in auto}  # type: ignore[index]
    assert {"small-original.jpg", "edited-original.jpg"} <= kept
    bad = runner.invoke(app, ["dupes", str(folder), "--keep", "biggest"])
    assert bad.exit_code == 2 and "keep rule" in bad.output


def test_partial_uses_the_partial_copy_preset(folder: Path) -> None:
    bad = runner.invoke(app, ["dupes", str(folder), "--partial", "--preset", "similar"])
    assert bad.exit_code == 2 and "--partial" in bad.output
    assert dupes_json(str(folder), "--partial")  # runs with the partial-copy preset


def test_relations_of_known_edits_are_named(tmp_path: Path) -> None:
    """Every derivation of six committed photos, judged against its original."""
    right, wrong = 0, []
    for number, photo in enumerate(COMMITTED_PHOTOS[:6]):
        family = make_family(photo, tmp_path / str(number), number, count=len(DERIVATIONS))
        original = load_facts(str(family.original))
        for path, name in family.copies.items():
            named = relate(original, load_facts(str(path))).kind
            expected = next(d.relation for d in DERIVATIONS if d.name == name)
            if named == expected:
                right += 1
            else:
                wrong.append((photo.name, name, named))
    assert right / (right + len(wrong)) >= 0.95, wrong


def test_a_crop_says_which_region_of_the_kept_copy_it_shows(tmp_path: Path) -> None:
    picture = Image.open(COMMITTED_PHOTOS[3]).convert("RGB")
    picture.save(tmp_path / "whole.png")
    width, height = picture.size
    picture.crop((width // 4, height // 5, width * 3 // 4, height * 4 // 5)).save(
        tmp_path / "crop.jpg", quality=92
    )
    relation = relate(load_facts(str(tmp_path / "whole.png")), load_facts(str(tmp_path / "crop.jpg")))
    assert relation.kind == "cropped" and relation.region is not None
    assert relation.region == pytest.approx((0.25, 0.2, 0.75, 0.8), abs=0.02)


def test_jpeg_quality_is_estimated_from_the_quantisation_tables(tmp_path: Path) -> None:
    picture = Image.open(COMMITTED_PHOTOS[2]).convert("RGB")
    for quality in (30, 75, 95):
        picture.save(tmp_path / f"q{quality}.jpg", quality=quality)
        with Image.open(tmp_path / f"q{quality}.jpg") as saved:
            assert estimate_jpeg_quality(saved) == quality


@pytest.mark.parametrize("read_files", [True, False])
def test_the_service_gives_tiers_and_relations(folder: Path, tmp_path: Path, read_files: bool) -> None:
    """/v1/duplicates answers as `dupes --json` does when it may read the indexed files
    (--thumbnails-from-paths); without, the index alone says which files are identical."""
    from fastapi.testclient import TestClient

    from lookalike.server import ServerConfig, create_app

    url = f"sqlite:///{tmp_path / 'served.db'}"
    with open_index(url) as index:
        index.add_files(sorted(str(p) for p in folder.iterdir()))
    config = ServerConfig(index_url=url, api_keys=("k" * 24,), thumbnails_from_paths=read_files)
    with TestClient(base_url="http://localhost", app=create_app(config)) as client:
        body = client.get("/v1/duplicates").json()
    tiers = [group["tier"] for group in body["groups"]]
    kinds = {
        Path(member["id"]).name: (member["relation"] or {}).get("kind")
        for group in body["groups"]
        for member in group["members"]
    }
    assert kinds["exact-copy.jpg"] == "identical-file"
    if read_files:
        assert tiers == ["identical-files", "identical-pixels", "copies", "edited-copies"]
        assert kinds["edited-mirrored.jpg"] == "flipped" and kinds["small-copy.jpg"] == "resized"
    else:
        assert tiers[0] == "identical-files" and set(tiers[1:]) == {"unverified"}
        assert kinds["small-copy.jpg"] == "unverified"
