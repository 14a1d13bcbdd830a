"""A duplicate group is cut where its files show a pair is similar but not a copy.

Two chat screenshots of different photos hash alike (the app's bars, bubbles and text fill most
of both frames; the `partial-copy` rule accepts such pairs), and one such pair joins two photos'
groups. The files decide: a photo and its crop, its screenshot, a picture in a picture or a
collage showing it hold; two screenshots of different photos do not. Pictures are the committed
photos, drawn into screens and composites here."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import COMMITTED_PHOTOS
from lookalike.benchmarks import transforms
from lookalike.cli.app import app
from lookalike.dedupe.fidelity import ImageFacts, load_facts
from lookalike.dedupe.grouping import Group
from lookalike.dedupe.shown_copies import Looks, shown_copy, split_group
from lookalike.index.base import FROM_FILE, Entry
from lookalike.local.verify import verify
from tests_support import chat_screenshot

pytest.importorskip("cv2")

PHOTOS = (13, 14, 18)  # their chat screenshots pair by the hashes, each with the other two
LONE = 21  # a chat screenshot of this photo pairs with those three by the hashes


def _photo(number: int) -> Image.Image:
    with Image.open(COMMITTED_PHOTOS[number]) as image:
        return image.convert("RGB")


def _chat_screenshot(number: int) -> Image.Image:
    """A phone screenshot of a chat showing a committed photo 480 pixels wide, as an app fits it."""
    photo = _photo(number)
    return chat_screenshot(photo.resize((480, round(480 * photo.height / photo.width))))


def test_every_committed_photo_holds_with_its_keystoned_copy(tmp_path: Path) -> None:
    """A keystoned copy (the benchmark's `perspective`: one side 8-18% shorter, cropped) aligns
    by keypoints with hardly a turn or a scale, as two screenshots of one app do, so the pictures
    found inside both frames are compared where one lies on the other. Laid by an affine fit,
    boxes in textured photos landed a few pixels off and 7 of these 35 pairs were cut; laid by
    the homography the keypoints agree with, every one holds."""
    keystone = transforms.get_transform("perspective")
    cut = []
    for number, path in enumerate(COMMITTED_PHOTOS):
        copy = Looks(_facts(keystone(_photo(number), seed=0), tmp_path, f"keystone{number}"))
        if not shown_copy(Looks(load_facts(str(path))), copy):
            cut.append(number)
    assert cut == []


def test_chat_screenshots_that_keypoints_verify_on_the_apps_text_do_not_hold(tmp_path: Path) -> None:
    """The accuracy benchmark's chat screenshots (its layout for seed 31) of different photos:
    keypoints verify every pair on the app's bubbles and bars, shifted by the photos' heights,
    and the alignment lays one photo on the other, which differ. Each still holds with its own
    photo."""
    chat = transforms.get_transform("screenshot_chat")
    numbers = (0, 8, 16, 24, 32)
    shots = {n: Looks(_facts(chat(_photo(n), seed=31), tmp_path, f"chat{n}")) for n in numbers}
    pairs = [(shots[a], shots[b]) for a, b in itertools.combinations(numbers, 2)]
    assert all(verify(one.keypoints, other.keypoints, one.mirrored_keypoints) for one, other in pairs)
    assert not any(shown_copy(one, other) or shown_copy(other, one) for one, other in pairs)
    for number in numbers:
        assert shown_copy(Looks(_facts(_photo(number), tmp_path, f"photo{number}")), shots[number])


def _crop(number: int) -> Image.Image:
    photo = _photo(number)
    return photo.crop((photo.width // 5, photo.height // 10, photo.width * 3 // 4, photo.height * 4 // 5))


def _picture_in_picture(number: int, ground: int) -> Image.Image:
    back = _photo(ground).resize((640, 480))
    back.paste(_photo(number).resize((300, 220)), (250, 40))
    return back


def _collage(numbers: tuple[int, int, int, int]) -> Image.Image:
    sheet = Image.new("RGB", (640, 480), (255, 255, 255))
    for place, number in enumerate(numbers):
        sheet.paste(_photo(number).resize((310, 230)), ((place % 2) * 325 + 5, (place // 2) * 245 + 5))
    return sheet


def _facts(picture: Image.Image, folder: Path, name: str) -> ImageFacts:
    path = folder / f"{name}.png"
    picture.save(path)
    return load_facts(str(path))


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("crop", lambda: _crop(27)),
        ("screenshot", lambda: _chat_screenshot(27)),
        ("picture in picture", lambda: _picture_in_picture(27, 5)),
        ("collage", lambda: _collage((3, 27, 9, 21))),
        ("mirrored", lambda: _photo(27).transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
    ],
)
def test_a_photo_and_a_copy_showing_it_hold(
    tmp_path: Path, name: str, make: Callable[[], Image.Image]
) -> None:
    photo = Looks(_facts(_photo(27), tmp_path, "photo"))
    copy = Looks(_facts(make(), tmp_path, "copy"))
    assert shown_copy(photo, copy) and shown_copy(copy, photo), name


@pytest.mark.parametrize(("first", "second"), [(13, 14), (13, 18), (14, 18), (18, 21)])
def test_two_screenshots_of_different_photos_in_one_app_do_not_hold(
    tmp_path: Path, first: int, second: int
) -> None:
    one = Looks(_facts(_chat_screenshot(first), tmp_path, "one"))
    other = Looks(_facts(_chat_screenshot(second), tmp_path, "other"))
    assert not shown_copy(one, other) and not shown_copy(other, one)


def _entry(number: int, key: str, facts: ImageFacts) -> Entry:
    return Entry(number, key, {}, None, 1000 - number, facts.width, facts.height, None, 0.0, origin=FROM_FILE)


def test_a_false_pair_splits_the_group_and_a_member_joined_only_by_it_is_left_out(tmp_path: Path) -> None:
    """photo 18 ~ its screenshot ~ 27's screenshot ~ photo 27, and 33's screenshot hangs on 18's
    screenshot alone: the chain is cut at the screenshots, and 33's is listed as similar."""
    pictures = {
        "p18": _photo(18),
        "s18": _chat_screenshot(18),
        "s27": _chat_screenshot(27),
        "p27": _photo(27),
        "s33": _chat_screenshot(33),
    }
    facts = {key: _facts(picture, tmp_path, key) for key, picture in pictures.items()}
    entries = {key: _entry(number, key, facts[key]) for number, key in enumerate(pictures)}
    pairs = {("p18", "s18"): 30, ("s18", "s27"): 20, ("p27", "s27"): 30, ("s18", "s33"): 25}
    group = Group(tuple(entries.values()), {tuple(sorted(pair)): d for pair, d in pairs.items()})  # type: ignore[misc]
    split = split_group(group, facts)
    assert sorted(sorted(entry.key for entry in part.members) for part in split.groups) == [
        ["p18", "s18"],
        ["p27", "s27"],
    ]
    assert [entry.key for entry in split.left_out] == ["s33"]
    holding = next(part for part in split.groups if "s18" in {entry.key for entry in part.members})
    assert [entry.key for entry in holding.similar] == ["s33"]
    for part in split.groups:  # the pairs kept are the group's own
        keys = {entry.key for entry in part.members}
        assert part.distances and all(set(pair) <= keys for pair in part.distances)


def test_a_member_without_a_file_keeps_its_pairs(tmp_path: Path) -> None:
    facts: dict[str, ImageFacts | None] = {
        "s18": _facts(_chat_screenshot(18), tmp_path, "s18"),
        "s27": None,
    }
    entries = tuple(
        _entry(n, key, value or facts["s18"])  # type: ignore[arg-type]
        for n, (key, value) in enumerate(facts.items())
    )
    split = split_group(Group(entries, {("s18", "s27"): 20}), facts)
    assert [sorted(entry.key for entry in part.members) for part in split.groups] == [["s18", "s27"]]


def test_files_with_the_same_bytes_keep_their_pair_unchecked(tmp_path: Path) -> None:
    """The sha256 already says they are one file's copies: no keypoints are computed for them
    (the facts here are two different screenshots, which the check would cut)."""
    facts: dict[str, ImageFacts | None] = {
        "a": _facts(_chat_screenshot(13), tmp_path, "a"),
        "b": _facts(_chat_screenshot(14), tmp_path, "b"),
    }
    entries = tuple(
        replace(_entry(n, key, value), sha256="same")  # type: ignore[arg-type]
        for n, (key, value) in enumerate(facts.items())
    )
    split = split_group(Group(entries, {("a", "b"): 0}), facts)
    assert [sorted(entry.key for entry in part.members) for part in split.groups] == [["a", "b"]]
    assert not split_group(
        Group(tuple(replace(e, sha256=None) for e in entries), {("a", "b"): 0}), facts
    ).groups


def test_dupes_partial_groups_each_photo_with_its_own_screenshot_only(tmp_path: Path) -> None:
    """`lookalike dupes --partial` over three photos and their chat screenshots, and a fourth
    screenshot whose photo is not there: the rule's hashes pair the screenshots with each other;
    the groups shown hold one photo each, and the lone screenshot is listed as similar."""
    folder = tmp_path / "chats"
    folder.mkdir()
    for number in PHOTOS:
        _photo(number).save(folder / f"photo{number}.png")
        _chat_screenshot(number).save(folder / f"chat{number}.png")
    _chat_screenshot(LONE).save(folder / f"chat{LONE}.png")
    page = tmp_path / "review.html"
    args = ["dupes", str(folder), "--index", str(tmp_path / "i.db"), "--partial", "--no-progress"]
    result = CliRunner().invoke(app, [*args, "--json", "--html", str(page)])
    assert result.exit_code == 0, result.output
    groups = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    shown = [sorted(Path(member["key"]).stem for member in group["members"]) for group in groups]
    assert sorted(shown) == [[f"chat{n}", f"photo{n}"] for n in PHOTOS]
    kept = sorted(Path(m["key"]).stem for group in groups for m in group["members"] if m["best"])
    assert kept == [f"photo{n}" for n in PHOTOS]  # the screenshot has more pixels, and shows the photo
    # each screenshot is named for what it is: its photo, shown inside it where the app put it
    # (`chat_screenshot` pastes the photo 480 pixels wide at (30, 300) of a 540 x 1170 page)
    for group in groups:
        (shot,) = [m for m in group["members"] if not m["best"]]
        relation = shot["relation"]
        assert relation["kind"] == "edited" and relation["edit"] == "shown inside", relation
        width, height = _photo(int(Path(shot["key"]).stem.removeprefix("chat"))).size
        expected = (30 / 540, 300 / 1170, 510 / 540, (300 + 480 * height / width) / 1170)
        assert all(abs(a - b) < 0.02 for a, b in zip(relation["shown_at"], expected, strict=True))
    similar = [Path(entry["key"]).stem for group in groups for entry in group["similar"]]
    assert similar == [f"chat{LONE}"]
    assert "similar, not copies" in page.read_text() and f"chat{LONE}.png" in page.read_text()
    text = CliRunner().invoke(app, ["dupes", "--index", str(tmp_path / "i.db"), "--partial", "--no-progress"])
    assert text.exit_code == 0, text.output
    assert any(line.strip().startswith("~") and f"chat{LONE}" in line for line in text.stdout.splitlines())
    assert sum("edited (shown inside, at x 0.06-0.94" in line for line in text.stdout.splitlines()) == 3


def test_the_hashes_alone_pair_the_screenshots(tmp_path: Path) -> None:
    """The premise of the test above: without the files' check, the rule's pairs join photos."""
    from lookalike.matcher import Matcher
    from lookalike.pipeline import hash_file

    rule = Matcher.preset("partial-copy")
    hashes = {}
    for number in (*PHOTOS, LONE):
        path = tmp_path / f"chat{number}.png"
        _chat_screenshot(number).save(path)
        hashes[number] = hash_file(str(path), list(rule.algorithms), dihedral=True)
    assert rule.matches(hashes[13], hashes[14]) and rule.matches(hashes[13], hashes[18])
    assert rule.matches(hashes[LONE], hashes[13]) and rule.matches(hashes[LONE], hashes[18])
