"""Second-hop candidates: two images that each pair with a third are judged against each other, so
a pair of two edited copies whose candidate keys differ is still found (docs/candidates.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageDraw, ImageOps

from conftest import COMMITTED_PHOTOS, committed_rgb
from lookalike.candidates import expansion, stage
from lookalike.candidates.batch import QueryBatch
from lookalike.candidates.expansion import both_ways, second_hop_pairs
from lookalike.dedupe import pairs as pair_search
from lookalike.index import Index, open_index
from lookalike.index.base import Pairs
from lookalike.matcher import PRESETS, Matcher

HASH_RULE = Matcher.parse(PRESETS["near-duplicate"].split(" or local")[0])
PHOTOS = COMMITTED_PHOTOS[:6]
Ids = npt.NDArray[np.int64]


def _ids(*values: int) -> Ids:
    return np.array(values, dtype=np.int64)


def _pairs(first: Ids, second: Ids) -> set[tuple[int, int]]:
    return set(zip(first.tolist(), second.tolist(), strict=True))


def test_partners_of_one_image_are_nominated_once_and_found_pairs_are_not() -> None:
    # 1-2, 1-3, 2-3 found; 1-4 found: 2-4 and 3-4 share partner 1; 5-6 stands alone.
    first, second = _ids(1, 1, 2, 1, 5), _ids(2, 3, 3, 4, 6)
    assert _pairs(*second_hop_pairs(first, second)) == {(2, 4), (3, 4)}


def test_ids_are_any_int64_and_pairs_come_out_ordered() -> None:
    big, negative = 2**62 + 5, -(2**62)  # ClickHouse row versions use all 64 bits
    first, second = second_hop_pairs(_ids(negative, 7), _ids(big, big))
    assert _pairs(first, second) == {(negative, 7)}
    assert (first < second).all()


def test_a_hub_nominates_nothing() -> None:
    leaves = np.arange(10, 20, dtype=np.int64)
    hub = np.zeros(len(leaves), dtype=np.int64)
    assert len(second_hop_pairs(hub, leaves)[0]) == 45
    assert len(second_hop_pairs(hub, leaves, hub_partners=9)[0]) == 0
    # one leaf also pairs with two more images: its partners (the hub among them) still meet
    first = np.concatenate([hub, _ids(10, 10)])
    second = np.concatenate([leaves, _ids(99, 98)])
    assert _pairs(*second_hop_pairs(first, second, hub_partners=9)) == {(98, 99), (0, 98), (0, 99)}


def test_blocks_of_paths_give_the_pairs_one_block_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    first, second = rng.integers(0, 400, 1500), rng.integers(0, 400, 1500)
    keep = first != second
    whole = _pairs(*second_hop_pairs(first[keep], second[keep]))
    monkeypatch.setattr(expansion, "PATHS_PER_BLOCK", 50)
    assert _pairs(*second_hop_pairs(first[keep], second[keep])) == whole
    brute = set()
    partners: dict[int, set[int]] = {}
    for a, b in zip(first[keep].tolist(), second[keep].tolist(), strict=True):
        partners.setdefault(a, set()).add(b)
        partners.setdefault(b, set()).add(a)
    for middle in partners.values():
        brute |= {(a, b) for a in middle for b in middle if a < b and b not in partners[a]}
    assert whole == brute


def test_no_pairs_no_candidates() -> None:
    assert len(second_hop_pairs(_ids(), _ids())[0]) == 0


def test_each_pair_is_judged_both_ways() -> None:
    queries, stored = both_ways(_ids(1, 2), _ids(5, 3))
    assert _pairs(queries, stored) == {(1, 5), (5, 1), (2, 3), (3, 2)}
    assert (np.diff(queries) >= 0).all()


def _captioned(image: Image.Image) -> Image.Image:
    copy = image.copy()
    ImageDraw.Draw(copy).rectangle((0, int(copy.height * 0.8), copy.width, copy.height), fill="white")
    return copy


EDITS = {
    "original": lambda im: im,
    "cropped": lambda im: im.crop((0, 0, int(im.width * 0.85), im.height)),
    "captioned": _captioned,
    "mirrored": ImageOps.mirror,
}


@pytest.fixture(params=["sqlite", "chdb"])
def filled(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Index]:
    """Each photo and three edited copies, stored with their variants."""
    files = []
    for photo in PHOTOS:
        original = committed_rgb(photo, 400)
        for edit, apply in EDITS.items():
            path = tmp_path / f"{photo.stem}--{edit}.jpg"
            apply(original).save(path, quality=90)
            files.append(path)
    url = f"sqlite:///{tmp_path / 'index.db'}" if request.param == "sqlite" else f"chdb://{tmp_path / 'ch'}"
    with open_index(url) as index:
        assert index.add_files(files, workers=1).added == len(files)
        yield index


def _keyed(found: Pairs) -> set[frozenset[str]]:
    pairs = zip(found.first.tolist(), found.second.tolist(), strict=True)
    return {frozenset(Path(found.entries[i].key).name for i in pair) for pair in pairs}


def _copies(pair: frozenset[str]) -> bool:
    """Two edited copies of one photo (not the original)."""
    photos = {name.split("--")[0] for name in pair}
    return len(photos) == 1 and not any(name.endswith("--original.jpg") for name in pair)


def _keys_missing_copy_pairs(monkeypatch: pytest.MonkeyPatch, index: Index) -> None:
    """The candidate keys nominate no pair of two edited copies of one photo (as when their low
    DCT rows and columns all differ), only pairs with an original."""
    keys_of = index.keys_by_id
    nominate = stage.candidate_pairs

    def without_copy_pairs(source: stage.CandidateSource, batch: QueryBatch, *args: object, **kw: object):  # type: ignore[no-untyped-def]
        rows, ids = nominate(source, batch, *args, **kw)  # type: ignore[arg-type]
        assert batch.ids is not None
        names = keys_of(np.unique(np.concatenate([ids, batch.ids])))
        keep = [
            not _copies(frozenset(Path(names[int(i)]).name for i in (batch.ids[r], e)))
            for r, e in zip(rows.tolist(), ids.tolist(), strict=True)
        ]
        mask = np.array(keep, dtype=bool)
        return rows[mask], ids[mask]

    monkeypatch.setattr(stage, "candidate_pairs", without_copy_pairs)


def test_pairs_of_two_copies_the_keys_miss_are_found_through_their_original(
    filled: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _keyed(pair_search.rule_pairs(filled, HASH_RULE))
    exact = _keyed(pair_search.rule_pairs(filled, HASH_RULE, exact=True))
    copy_pairs = {pair for pair in whole if _copies(pair)}
    assert len(copy_pairs) >= 2 * len(PHOTOS)  # most photos' copies pair with each other

    _keys_missing_copy_pairs(monkeypatch, filled)
    monkeypatch.setattr(pair_search, "second_hop_judged", _nothing_more)
    keys_alone = _keyed(pair_search.rule_pairs(filled, HASH_RULE))
    assert not keys_alone & copy_pairs  # the keys now miss every one of them
    monkeypatch.undo()

    _keys_missing_copy_pairs(monkeypatch, filled)
    expanded = _keyed(pair_search.rule_pairs(filled, HASH_RULE))
    assert expanded == whole  # the second hop found them all, and nothing the rule rejects
    assert expanded <= exact


def _nothing_more(*args: object, **kw: object) -> tuple[Ids, Ids, Ids]:
    empty = np.zeros(0, dtype=np.int64)
    return empty, empty.copy(), empty.copy()


def test_given_hashes_are_judged_on_the_second_hop_too(
    filled: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lookalike

    files = [Path(entry.key) for entry in filled.entries()]
    queries = {str(path): lookalike.hash_file(path, HASH_RULE.algorithms, dihedral=True) for path in files}
    whole = _keyed(pair_search.rule_pairs(filled, HASH_RULE, queries=queries))
    _keys_missing_copy_pairs(monkeypatch, filled)
    assert _keyed(pair_search.rule_pairs(filled, HASH_RULE, queries=queries)) == whole
