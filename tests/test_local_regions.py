"""Pictures inside pictures: a collage's cell and a picture pasted into another photo are found by
the partial-copy preset with the place they occupy, and a composite does not match a photo it
does not show."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import COMMITTED_PHOTOS, committed_rgb
from lookalike import hash_file, open_index
from lookalike.benchmarks.partial import collage, collage_cells, collage_place
from lookalike.matcher import default_index_hashes
from lookalike.regions import propose_regions

SIDE = 480


def _photo(index: int) -> Image.Image:
    return committed_rgb(COMMITTED_PHOTOS[index], SIDE)


def _found(tmp_path: Path, composite: Image.Image, stored: list[int]) -> tuple[list[str], list[int]]:
    """The stored photos `partial-copy` finds for `composite` (keys), and the query variant of each."""
    paths = []
    for index in stored:
        path = tmp_path / f"photo{index:02d}.png"
        _photo(index).save(path)
        paths.append(str(path))
    query_path = tmp_path / "composite.png"
    composite.save(query_path)
    with open_index(str(tmp_path / "index.db")) as index:
        index.add_files(paths, list(default_index_hashes()), dihedral=True, local=False, workers=1)
        query = hash_file(str(query_path), default_index_hashes(), dihedral=True)
        verdicts = index.match(query, "partial-copy")
    return [Path(v.key).stem for v in verdicts], [v.variant for v in verdicts]


def _near(found: tuple[int, int, int, int], expected: tuple[int, int, int, int], pixels: int = 3) -> bool:
    return max(abs(a - b) for a, b in zip(found, expected, strict=True)) <= pixels


@pytest.mark.parametrize("seed", [3, 6])
def test_a_collage_cell_is_found_with_its_place(tmp_path: Path, seed: int) -> None:
    image = collage(_photo(1), seed, [_photo(11), _photo(14), _photo(21)])
    cells, _ = collage_cells(image.size)
    cell = cells[collage_place(seed)]
    boxes = propose_regions(np.asarray(image))
    assert any(_near(box, cell) for box in boxes)
    keys, variants = _found(tmp_path, image, [1, 2, 9])
    assert keys == ["photo01"]
    # variant 0 is the whole collage; variant k its k-th region, the photo's cell
    assert _near(boxes[variants[0] - 1], cell)


def test_a_picture_in_a_picture_is_found_with_its_place(tmp_path: Path) -> None:
    canvas = _photo(16).copy()
    inset = _photo(1).resize((canvas.width * 2 // 5, canvas.height * 2 // 5), Image.Resampling.LANCZOS)
    place = (canvas.width // 2, canvas.height // 8)
    canvas.paste(inset, place)
    expected = (*place, place[0] + inset.width, place[1] + inset.height)
    boxes = propose_regions(np.asarray(canvas))
    assert any(_near(box, expected) for box in boxes)
    keys, variants = _found(tmp_path, canvas, [1, 2, 9])
    assert keys == ["photo01"]
    assert _near(boxes[variants[0] - 1], expected)


def test_a_composite_does_not_match_photos_it_does_not_show(tmp_path: Path) -> None:
    image = collage(_photo(1), 3, [_photo(11), _photo(14), _photo(21)])
    keys, _ = _found(tmp_path, image, [2, 5, 9, 12, 24, 29])
    assert keys == []


@pytest.mark.parametrize("index", [0, 1, 2, 5, 9, 14])
def test_an_ordinary_photo_has_no_regions(index: int) -> None:
    assert propose_regions(np.asarray(_photo(index))) == []


def test_pictures_pasted_into_photos_are_proposed_at_their_place() -> None:
    """A photo pasted at 30-70% of the frame into another photo, at a random place: its border
    often has the same brightness as what is around it along part of a side, rarely the same
    colour, so the proposals (found on colour) hold its box in most composites."""
    count = len(COMMITTED_PHOTOS)
    found = 0
    for seed in range(16):
        photo = _photo(seed % count)
        canvas = _photo((seed * 7 + 3) % count).resize(photo.size, Image.Resampling.BICUBIC)
        rng = np.random.default_rng(seed)
        factor = rng.uniform(0.3, 0.7)
        size = (round(photo.width * factor), round(photo.height * factor))
        inset = photo.resize(size, Image.Resampling.LANCZOS)
        left = int(rng.integers(0, photo.width - inset.width + 1))
        top = int(rng.integers(0, photo.height - inset.height + 1))
        canvas.paste(inset, (left, top))
        truth = (left, top, left + inset.width, top + inset.height)
        found += any(_iou(box, truth) >= 0.9 for box in propose_regions(np.asarray(canvas)))
    assert found >= 12


@pytest.mark.parametrize(
    ("background", "picture"), [("camera", "astronaut"), ("camera", "chelsea"), ("gravel", "astronaut")]
)
def test_a_picture_whose_border_fades_into_its_surroundings_for_a_stretch_is_proposed(
    background: str, picture: str
) -> None:
    """Along part of a side the pasted picture has the colours of what lies beside it, so that
    side steps in two runs rather than one; each side still steps along most of its length."""
    from skimage import data

    canvas = Image.fromarray(getattr(data, background)()).convert("RGB").resize((600, 400))
    canvas.paste(Image.fromarray(getattr(data, picture)()).convert("RGB").resize((240, 200)), (150, 100))
    assert any(_iou(box, (150, 100, 390, 300)) >= 0.9 for box in propose_regions(np.asarray(canvas)))


def test_a_picture_mostly_of_one_dark_level_on_a_page_of_text_is_proposed() -> None:
    """A planet on a night sky is 80% black, as flat as a panel of text by its levels; but what
    stands out of its black is one object, where a panel's text is many small marks."""
    from PIL import ImageDraw
    from skimage import data

    photo = Image.new("RGB", (300, 220), (0, 0, 0))
    photo.paste(Image.fromarray(data.retina()).resize((130, 130)), (90, 45))
    page = Image.new("RGB", (1280, 800), (255, 255, 255))
    draw = ImageDraw.Draw(page)
    for y in range(120, 760, 24):
        draw.text((60, y), "a day by the water, see you there when the sun goes down", fill=(40, 40, 40))
        draw.text((820, y), "we are here and there and that is great", fill=(40, 40, 40))
    page.paste(photo, (500, 300))
    assert propose_regions(np.asarray(page)) == [(500, 300, 800, 520)]


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    width = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - width * height
    return width * height / union


def test_a_dark_photo_in_a_chat_is_proposed_and_its_text_bubbles_are_not() -> None:
    """A night-sky photo is mostly one dark level, yet a picture; a bubble of text on one flat
    colour is a panel, not a picture."""
    from PIL import ImageDraw
    from skimage import data

    photo = Image.fromarray(data.hubble_deep_field()).convert("RGB").resize((220, 180))
    canvas = Image.new("RGB", (540, 1170), (236, 229, 221))
    draw = ImageDraw.Draw(canvas)
    for bubble in [(20, 120, 300, 190), (240, 230, 520, 330), (20, 700, 330, 790), (200, 860, 520, 950)]:
        draw.rectangle(bubble, fill=(255, 255, 255))
        for y in range(bubble[1] + 15, bubble[3] - 10, 22):
            draw.text((bubble[0] + 12, y), "that is great, see you there", fill=(20, 20, 20))
    canvas.paste(photo, (280, 420))
    assert propose_regions(np.asarray(canvas)) == [(280, 420, 500, 600)]


@pytest.fixture(params=["sqlite", "chdb"])
def index_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return (
        f"sqlite:///{tmp_path / 'index.db'}" if request.param == "sqlite" else f"chdb://{tmp_path / 'chdb'}"
    )


def test_an_original_finds_the_stored_composites_that_show_it(tmp_path: Path, index_url: str) -> None:
    """The other way round: composites stored, the original the query (whose own regions are
    none). Its hash meets the stored pictures inside them, and only the composites showing it."""
    canvas = _photo(16).copy()
    inset = _photo(1).resize((canvas.width * 2 // 5, canvas.height * 2 // 5), Image.Resampling.LANCZOS)
    canvas.paste(inset, (canvas.width // 2, canvas.height // 8))
    stored = {
        "collage_with": collage(_photo(1), 3, [_photo(11), _photo(14), _photo(21)]),
        "inset_with": canvas,
        "collage_without": collage(_photo(2), 6, [_photo(11), _photo(14), _photo(21)]),
        "plain": _photo(9),
    }
    paths = []
    for name, image in stored.items():
        image.save(tmp_path / f"{name}.png")
        paths.append(str(tmp_path / f"{name}.png"))
    original = tmp_path / "original.png"
    _photo(1).save(original)
    query = hash_file(str(original), default_index_hashes(), dihedral=True)
    with open_index(index_url) as index:
        index.add_files(paths, list(default_index_hashes()), dihedral=True, local=False, workers=1)
        found = {Path(v.key).stem: v for v in index.match(query, "partial-copy")}
        assert set(found) == {"collage_with", "inset_with"}
        assert all(v.distances["phash_eq_regions"] <= 56 for v in found.values())
        assert not index.match(query, "near-duplicate")  # the whole pictures are not copies
        exact = {Path(v.key).stem for v in index.match(query, "partial-copy", exact=True)}
        assert exact == set(found)
        # removing a composite takes its pictures out of the search
        index.remove([paths[0]])
        assert {Path(v.key).stem for v in index.match(query, "partial-copy")} == {"inset_with"}


def _collage_with_photo01() -> tuple[Image.Image, tuple[int, int, int, int]]:
    image = collage(_photo(1), 3, [_photo(11), _photo(14), _photo(21)])
    cells, _ = collage_cells(image.size)
    return image, cells[collage_place(3)]


def _inset_of_photo01() -> tuple[Image.Image, tuple[int, int, int, int]]:
    canvas = _photo(16).copy()
    inset = _photo(1).resize((canvas.width * 2 // 5, canvas.height * 2 // 5), Image.Resampling.LANCZOS)
    place = (canvas.width // 2, canvas.height // 8)
    canvas.paste(inset, place)
    return canvas, (*place, place[0] + inset.width, place[1] + inset.height)


@pytest.mark.parametrize("make", [_collage_with_photo01, _inset_of_photo01], ids=["collage", "inset"])
def test_search_says_where_in_the_composite_the_stored_photo_lies(
    tmp_path: Path, make: Callable[[], tuple[Image.Image, tuple[int, int, int, int]]]
) -> None:
    """What a user sees: `lookalike search composite --partial --json` answers the photo with
    the place it occupies in the composite (`where.query_region`, in the composite's pixels),
    by keypoints or by the hash of that picture, and says which."""
    from typer.testing import CliRunner

    from lookalike.cli.app import app

    composite, place = make()
    for index in (1, 2, 9):
        _photo(index).save(tmp_path / f"photo{index:02d}.png")
    composite.save(tmp_path / "composite.png")
    url = f"sqlite:///{tmp_path / 'index.db'}"
    runner = CliRunner()
    photos = [str(tmp_path / f"photo{i:02d}.png") for i in (1, 2, 9)]
    assert runner.invoke(app, ["index", "add", *photos, "--index", url, "--workers", "1"]).exit_code == 0
    result = runner.invoke(
        app, ["search", str(tmp_path / "composite.png"), "--index", url, "--partial", "--json"]
    )
    matches = json.loads(result.stdout.splitlines()[0])["matches"]
    assert [Path(m["key"]).stem for m in matches] == ["photo01"]
    where = matches[0]["where"]
    assert where["by"] in ("region", "keypoints") and where["query_pixels"]
    xs = [x for x, _ in where["query_region"]]
    ys = [y for _, y in where["query_region"]]
    found = (min(xs), min(ys), max(xs), max(ys))
    tolerance = 0.03 * max(composite.size)
    assert all(abs(a - b) <= tolerance for a, b in zip(found, place, strict=True)), (found, place)
    assert matches[0].get("verified") is not False  # not called "similar, not a copy"


@pytest.mark.parametrize("make", [_collage_with_photo01, _inset_of_photo01], ids=["collage", "inset"])
def test_an_original_is_shown_where_it_lies_in_a_stored_composite(
    tmp_path: Path, index_url: str, make: Callable[[], tuple[Image.Image, tuple[int, int, int, int]]]
) -> None:
    """The theft check: `lookalike search original --partial --json` over stored composites
    answers the composite with the place the original occupies in it (`where.stored_region`,
    in the composite's pixels), from the boxes stored with its pictures: the composites here
    have no stored keypoints to place it by."""
    from typer.testing import CliRunner

    from lookalike.cli.app import app

    composite, place = make()
    composite.save(tmp_path / "composite.png")
    _photo(9).save(tmp_path / "plain.png")
    _photo(1).save(tmp_path / "original.png")
    stored = [str(tmp_path / "composite.png"), str(tmp_path / "plain.png")]
    with open_index(index_url) as index:
        index.add_files(stored, list(default_index_hashes()), dihedral=True, local=False, workers=1)
    result = CliRunner().invoke(
        app, ["search", str(tmp_path / "original.png"), "--index", index_url, "--partial", "--json"]
    )
    matches = json.loads(result.stdout.splitlines()[0])["matches"]
    assert [Path(m["key"]).stem for m in matches] == ["composite"]
    where = matches[0]["where"]
    assert where is not None and where["by"] == "region" and where["pixels"]
    xs = [x for x, _ in where["stored_region"]]
    ys = [y for _, y in where["stored_region"]]
    found = (min(xs), min(ys), max(xs), max(ys))
    tolerance = 0.03 * max(composite.size)
    assert all(abs(a - b) <= tolerance for a, b in zip(found, place, strict=True)), (found, place)
    assert where["query_relative"] == [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
    assert where["picture_in"] == "stored"
    assert matches[0].get("verified") is not False  # not called "similar, not a copy"
    text = CliRunner().invoke(
        app, ["search", str(tmp_path / "original.png"), "--index", index_url, "--partial"]
    )
    assert "the query is the picture at x" in text.stdout
