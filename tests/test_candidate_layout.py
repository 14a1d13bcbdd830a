"""The candidate key layout: which bits make the keys, that both backends cut and probe them alike,
and that an index made with the first layout (20 tables of rows, `k_*` on ClickHouse) keeps
working after an upgrade: its key tables are rebuilt from the stored hashes and find the pairs a
fresh index finds."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

import lookalike
from conftest import COMMITTED_PHOTOS, committed_rgb
from lookalike.candidates import keys as key_module
from lookalike.candidates.keys import dct_layout
from lookalike.dedupe.pairs import rule_pairs
from lookalike.hash import Hash
from lookalike.index import Index, open_index
from lookalike.index.base import Pairs
from lookalike.index.clickhouse import ClickHouseIndex
from lookalike.matcher import PRESETS, Matcher

RULE = Matcher.parse(PRESETS["near-duplicate"].split(" or local")[0])  # the preset's hashes alone
PHOTOS = COMMITTED_PHOTOS[:8]
EDITS = {
    "original": lambda im: im,
    "small": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS),
    "darker": lambda im: ImageEnhance.Brightness(im).enhance(0.7),
    "mirrored": ImageOps.mirror,
    "cropped": lambda im: im.crop((0, 0, int(im.width * 0.85), im.height)),
}
Hashes = Mapping[str, Mapping[str, Hash]]


@pytest.fixture(scope="module")
def hashes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Hash]]:
    """The rule's hashes, with variants, of each photo and its edited copies (JPEG q90)."""
    folder = tmp_path_factory.mktemp("layout")
    found = {}
    for photo in PHOTOS:
        picture = committed_rgb(photo, 480)
        for edit, apply in EDITS.items():
            path = folder / f"{photo.stem}--{edit}.jpg"
            apply(picture).save(path, quality=90)
            found[path.name] = lookalike.hash_file(path, RULE.algorithms, dihedral=True)
    return found


def _fill(index: Index, hashes: Hashes) -> None:
    for algorithm in RULE.algorithms:
        keys = list(hashes)
        chosen = [hashes[key][algorithm] for key in keys]
        words = np.stack([h.words() for h in chosen])
        quality = [None if h.quality is None else int(h.quality) for h in chosen]
        index.add_words(keys, algorithm, words, chosen[0].nbits, quality)


def _keyed(found: Pairs) -> set[frozenset[str]]:
    pairs = zip(found.first.tolist(), found.second.tolist(), strict=True)
    return {frozenset((found.entries[a].key, found.entries[b].key)) for a, b in pairs}


def _pairs(index: Index, hashes: Hashes, *, exact: bool = False) -> set[frozenset[str]]:
    return _keyed(rule_pairs(index, RULE, queries=hashes, exact=exact))


def test_keys_are_three_of_the_six_lowest_rows_or_of_the_six_lowest_columns() -> None:
    layout = dct_layout(16)
    assert layout is not None and layout.table_count == 40
    rows = [(2 * r,) for r in range(6)]  # byte 2r: row r's 8 lowest horizontal frequencies
    columns = [(32 + 2 * c,) for c in range(6)]  # byte 32 + 2c: column c's 8 lowest vertical ones
    expected = [sum(t, ()) for t in itertools.combinations(rows, 3)]
    expected += [sum(t, ()) for t in itertools.combinations(columns, 3)]
    assert list(layout.tables) == expected
    for row in range(6):
        assert layout.byte_bits(2 * row) == tuple(range(16 * row, 16 * row + 8))
    for column in range(6):
        assert layout.byte_bits(32 + 2 * column) == tuple(16 * r + column for r in range(8))
    # every low row and column is in as many tables: no frequency weighs more than another
    counts = np.bincount([byte for table in layout.tables for byte in table], minlength=64)
    assert set(counts[[2 * r for r in range(6)] + [32 + 2 * c for c in range(6)]]) == {10}
    assert dct_layout(8) is None  # 64-bit hashes: exact multi-index search serves them


def test_keys_are_the_bits_of_a_real_hash_at_those_places(hashes: Hashes) -> None:
    layout = dct_layout(16)
    assert layout is not None
    value = next(iter(hashes.values()))["phash_eq"]
    bits = [int(bit) for bit in format(int(value), "0256b")]  # bit 0 = the hash's first bit
    keys = layout.keys(value.words()[None, :])[0]
    for table, chosen in enumerate(layout.tables):
        positions = [p for byte in chosen for p in layout.byte_bits(byte)]
        assert int(keys[table]) == int("".join(str(bits[p]) for p in positions), 2)


def test_sqlite_and_chdb_find_the_same_pairs_through_the_keys(hashes: Hashes, tmp_path: Path) -> None:
    found = {}
    for url in (f"sqlite:///{tmp_path / 'index.db'}", f"chdb://{tmp_path / 'chdb'}"):
        with open_index(url) as index:
            _fill(index, hashes)
            found[url.split(":")[0]] = (_pairs(index, hashes), _pairs(index, hashes, exact=True))
    keys, exact = found["sqlite"]
    assert found["chdb"] == (keys, exact)
    assert keys <= exact
    whole = {pair for pair in exact if not any("--cropped" in key for key in pair)}
    assert whole <= keys  # every resized, darker and mirrored copy, and most crops
    assert len(keys) >= 0.95 * len(exact) and len(keys) >= len(PHOTOS) * 8


def _legacy_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first layout: 3 of the 6 lowest rows only (20 tables)."""
    monkeypatch.setattr(key_module, "LOW_COLUMNS", 0)
    layout = dct_layout(16)
    assert layout is not None and layout.table_count == 20


def test_an_sqlite_index_made_with_the_first_layout_gives_the_pairs_of_a_fresh_one(
    hashes: Hashes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    with monkeypatch.context() as patched:
        _legacy_layout(patched)
        with open_index(str(path)) as old:
            _fill(old, hashes)
            legacy = _pairs(old, hashes)
            old.persist_search(force=True)  # type: ignore[attr-defined]
    snapshots = list(tmp_path.glob("old.db.search/keys-phash_eq*/plain/meta.json"))
    assert len(snapshots) == 1 and '"layout"' in snapshots[0].read_text()  # the first layout's keys
    with open_index(str(tmp_path / "fresh.db")) as fresh:
        _fill(fresh, hashes)
        expected = _pairs(fresh, hashes)
    with open_index(str(path)) as upgraded:
        assert _pairs(upgraded, hashes) == expected
    assert expected >= legacy  # the new layout finds what the first one found


def _key_tables(index: ClickHouseIndex) -> set[str]:
    return {name for name in index._table_names() if name.startswith("k")}


def test_a_chdb_index_made_with_the_first_layout_is_rebuilt_when_opened(
    hashes: Hashes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"chdb://{tmp_path / 'old'}"
    later = {key: value for key, value in hashes.items() if key.startswith(PHOTOS[0].stem)}
    first = {key: value for key, value in hashes.items() if key not in later}
    with monkeypatch.context() as patched:
        _legacy_layout(patched)
        with ClickHouseIndex.open_chdb(url) as old:
            _fill(old, first)
            legacy = _pairs(old, first)
            made = _key_tables(old)
    assert made and all(name.startswith(("k_", "kv_")) for name in made)
    with open_index(str(tmp_path / "fresh.db")) as fresh:
        _fill(fresh, hashes)
        expected = _pairs(fresh, hashes)
    with ClickHouseIndex.open_chdb(url) as upgraded:
        rebuilt = _key_tables(upgraded)
        assert rebuilt and all(name.startswith(("k40_", "kv40_")) for name in rebuilt)
        assert _pairs(upgraded, first) == {p for p in expected if not any(k in later for k in p)}
        _fill(upgraded, later)  # written after the upgrade: the new views key them
        assert _pairs(upgraded, hashes) == expected
    assert expected >= legacy


def test_neighbour_probes_flip_one_low_frequency_bit_each_and_change_only_the_tables_holding_it() -> None:
    layout = dct_layout(16, neighbour_frequencies=2)
    assert layout is not None and layout.tables == dct_layout(16).tables  # type: ignore[union-attr]
    assert layout.neighbours == (1, 2, 16, 17, 32)  # (r, c) = (0,1) (0,2) (1,0) (1,1) (2,0): r + c <= 2
    assert dct_layout(16, neighbour_frequencies=0).neighbours == ()  # type: ignore[union-attr]
    rng = np.random.default_rng(3)
    words = rng.integers(0, 2**63, size=(2, 4), dtype=np.uint64)
    probed, owners = layout.probe_words(words, np.array([7, 9]))
    assert probed.shape == (12, 4) and owners.tolist() == [7, 9] * 6
    masks = {}
    for table, chosen in enumerate(layout.tables):
        masks[table] = {p for byte in chosen for p in layout.byte_bits(byte)}
    keys = layout.keys(probed)
    for step, position in enumerate(layout.neighbours, start=1):
        flipped = probed[2 * step] ^ words[0]
        assert sum(int(w).bit_count() for w in flipped) == 1
        changed = set(np.flatnonzero(keys[2 * step] != keys[0]).tolist())
        assert changed == {t for t, bits in masks.items() if position in bits}


def test_neighbour_probes_find_at_least_the_default_pairs_and_nothing_the_rule_rejects(
    hashes: Hashes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_index(str(tmp_path / "index.db")) as index:
        _fill(index, hashes)
        default = _pairs(index, hashes)
        exact = _pairs(index, hashes, exact=True)
        monkeypatch.setattr(key_module, "NEIGHBOUR_FREQUENCIES", 3)
        wider = _pairs(index, hashes)
    assert default <= wider <= exact


@pytest.mark.parametrize("reach", [0, 3])
def test_the_offline_recall_counts_what_the_index_finds(
    hashes: Hashes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reach: int
) -> None:
    from lookalike.benchmarks.candidate_recall import Corpus, exact_pairs, offline_found, undirected
    from lookalike.benchmarks.hashers import HashTable
    from lookalike.candidates.batch import QueryBatch

    names = list(hashes)
    batch = QueryBatch.from_hashes([hashes[name] for name in names])
    tables = {
        a: HashTable(a, q.words[:, 0], q.words, q.quality.astype(np.float64)) for a, q in batch.hashes.items()
    }
    rows = np.arange(len(names), dtype=np.intp)
    corpus = Corpus(tables, [0] * len(names), [""] * len(names), {}, [rows], names)
    pairs = exact_pairs(corpus, RULE, rows, log=lambda _: None)
    layout = dct_layout(16, neighbour_frequencies=reach)
    assert layout is not None
    first, second, found = undirected(pairs, offline_found(corpus, RULE, pairs, layout))
    offline = {frozenset((names[a], names[b])) for a, b, hit in zip(first, second, found, strict=True) if hit}
    with open_index(str(tmp_path / "index.db")) as index:
        _fill(index, hashes)
        assert {frozenset((names[a], names[b])) for a, b in zip(first, second, strict=True)} == _pairs(
            index, hashes, exact=True
        )
        monkeypatch.setattr(key_module, "NEIGHBOUR_FREQUENCIES", reach)
        assert offline == _pairs(index, hashes)
