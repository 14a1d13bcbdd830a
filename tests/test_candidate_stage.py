"""The candidate stage on every backend, on real photos and their edited copies: the keys find what
the exact plan finds (the recall bound), the exact path is the rule applied to every pair, bulk
adds are idempotent, an interrupted duplicate search resumes, a partial copy is retrieved by its
keypoints with the place it was cut from, and chDB's hashes and key tables held in memory for a
duplicate search judge and nominate as its reads and SQLite do, are dropped by any write, and are
not built past the memory ceiling."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

import lookalike
from conftest import COMMITTED_PHOTOS, committed_rgb
from lookalike.candidates.batch import QueryBatch
from lookalike.candidates.plan import family_of
from lookalike.candidates.stage import candidate_pairs, judge_batch
from lookalike.dedupe import pairs as pair_search
from lookalike.hash import Hash
from lookalike.index import Index, open_index
from lookalike.index.base import Pairs
from lookalike.index.clickhouse import ClickHouseIndex, held_keys, snapshot
from lookalike.index.clickhouse import candidates as candidate_sql
from lookalike.index.clickhouse.connection import ChdbConnection
from lookalike.matcher import PRESETS, Matcher, default_index_hashes

PHOTOS = COMMITTED_PHOTOS[:14]
HASH_RULE = Matcher.parse(PRESETS["near-duplicate"].split(" or local")[0])  # the preset's hashes alone
EDITS = {
    "small": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS),
    "darker": lambda im: ImageEnhance.Brightness(im).enhance(0.7),
    "mirrored": ImageOps.mirror,
    "cropped": lambda im: im.crop((0, 0, int(im.width * 0.9), im.height)),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Each photo and four edited copies (JPEG q90), named photo--edit.jpg."""
    folder = tmp_path_factory.mktemp("candidates")
    files = []
    for photo in PHOTOS:
        original = committed_rgb(photo, 480)
        for edit, apply in [("original", lambda im: im), *EDITS.items()]:
            path = folder / f"{photo.stem}--{edit}.jpg"
            apply(original).save(path, quality=90)
            files.append(path)
    return files


@pytest.fixture(params=["sqlite", "chdb"])
def filled(request: pytest.FixtureRequest, corpus: list[Path], tmp_path: Path) -> Iterator[Index]:
    url = f"sqlite:///{tmp_path / 'index.db'}" if request.param == "sqlite" else f"chdb://{tmp_path / 'chdb'}"
    with open_index(url) as index:
        report = index.add_files(corpus, workers=1)
        assert report.added == len(corpus) and not report.failed
        yield index


def _photo(key: str) -> str:
    return Path(key).name.split("--")[0]


def _keyed(found: Pairs) -> set[frozenset[str]]:
    pairs = zip(found.first.tolist(), found.second.tolist(), strict=True)
    return {frozenset((found.entries[a].key, found.entries[b].key)) for a, b in pairs}


def _pairs(index: Index, rule: Matcher, *, exact: bool) -> set[frozenset[str]]:
    return _keyed(pair_search.rule_pairs(index, rule, exact=exact))


def test_keys_find_what_the_exact_plan_finds_and_nothing_it_rejects(filled: Index) -> None:
    exact = _pairs(filled, HASH_RULE, exact=True)
    keys = _pairs(filled, HASH_RULE, exact=False)
    assert keys <= exact  # the keys only nominate; the rule still judges every pair
    same_photo = {pair for pair in exact if len({_photo(k) for k in pair}) == 1}
    assert len(same_photo) >= 0.9 * len(PHOTOS) * 10  # most of each photo's 10 pairs are found at all
    # The recall bound, on real photos and edits: every whole-picture copy, and nearly every crop
    # (a crop shifts the low frequencies the keys are cut from: docs/candidates.md).
    whole = {pair for pair in exact if not any(key.endswith("--cropped.jpg") for key in pair)}
    assert whole <= keys
    assert len(keys & exact) >= 0.9 * len(exact)


def test_the_exact_path_is_the_rule_applied_to_every_pair(filled: Index, corpus: list[Path]) -> None:
    hashes = {
        str(path.resolve()): lookalike.hash_file(path, HASH_RULE.algorithms, dihedral=True) for path in corpus
    }
    plain = {
        key: {a: Hash(int(h), h.nbits, quality=h.quality) for a, h in result.items()}
        for key, result in hashes.items()
    }
    expected = {
        frozenset((a, b))
        for (a, query), (b, _) in itertools.permutations(hashes.items(), 2)
        if HASH_RULE.matches(query, plain[b], dihedral=True)
    }
    assert _pairs(filled, HASH_RULE, exact=True) == expected


def test_bulk_adds_are_idempotent(filled: Index) -> None:
    rng = np.random.default_rng(7)
    keys = [f"list-{i}" for i in range(3000)]
    words = rng.integers(0, 2**63, size=(3000, 4), dtype=np.uint64)
    before = len(filled)
    filled.add_words(keys, "pdq", words, 256)
    first = filled.range_search(Hash.from_words(words[17], 256), "pdq", 0)
    again = filled.add_words(keys, "pdq", words, 256)
    assert len(filled) == before + 3000 and again.added == 0
    assert filled.range_search(Hash.from_words(words[17], 256), "pdq", 0) == first
    assert [m.key for m in first] == ["list-17"]


def test_an_interrupted_duplicate_search_resumes_where_it_stopped(
    filled: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pair_search, "BATCH", 16)
    whole = _pairs(filled, HASH_RULE, exact=False)
    journal = tmp_path / "dupes.journal"

    def stop_after_two_batches(done: int, total: int) -> None:
        if done >= 32:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pair_search.rule_pairs(filled, HASH_RULE, checkpoint=journal, progress=stop_after_two_batches)
    assert journal.exists()
    progress: list[int] = []
    resumed = pair_search.rule_pairs(
        filled, HASH_RULE, checkpoint=journal, progress=lambda done, total: progress.append(done)
    )
    assert progress[0] > 32  # the two finished batches were not searched again
    assert _keyed(resumed) == whole
    assert not journal.exists()  # a finished search leaves no journal behind


def test_a_partial_copy_is_retrieved_by_its_keypoints_with_its_place(filled: Index, tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    stored = committed_rgb(PHOTOS[3], 480)
    box = (
        int(stored.width * 0.08),
        int(stored.height * 0.22),
        int(stored.width * 0.71),
        int(stored.height * 0.93),
    )
    cut = tmp_path / "cut.jpg"
    stored.crop(box).save(cut, quality=90)
    query = lookalike.hash_file(cut, default_index_hashes(), dihedral=True, local=True)
    assert not any(_photo(v.key) == PHOTOS[3].stem for v in filled.match(query, HASH_RULE))
    found = [v for v in filled.match(query, "partial-copy") if _photo(v.key) == PHOTOS[3].stem]
    assert found, "the crop was not retrieved"
    original = next(v for v in found if v.key.endswith("--original.jpg"))
    assert original.alignment is not None
    region = np.asarray(original.alignment.stored_region)  # relative to the stored picture
    relative = np.array(box, dtype=float) / [stored.width, stored.height, stored.width, stored.height]
    assert np.allclose([region[:, 0].min(), region[:, 1].min()], relative[:2], atol=0.04)
    assert np.allclose([region[:, 0].max(), region[:, 1].max()], relative[2:], atol=0.04)


@pytest.fixture
def both(corpus: list[Path], tmp_path: Path) -> Iterator[tuple[Index, ClickHouseIndex]]:
    """The corpus in SQLite and in chDB."""
    with (
        open_index(f"sqlite:///{tmp_path / 'index.db'}") as sqlite,
        open_index(f"chdb://{tmp_path / 'ch'}") as ch,
    ):
        for index in (sqlite, ch):
            assert index.add_files(corpus, workers=1).added == len(corpus)
        assert isinstance(ch, ClickHouseIndex)
        yield sqlite, ch


def _held(index: ClickHouseIndex) -> set[str]:
    assert isinstance(index.connection, ChdbConnection)
    return set(snapshot.snapshots(index.connection).tables)


def test_hashes_held_in_memory_judge_as_clickhouse_reads_and_sqlite_do(
    both: tuple[Index, ClickHouseIndex],
) -> None:
    sqlite, ch = both
    batch = next(ch.stored_batches(HASH_RULE.algorithms, 10_000))  # every entry, read from ClickHouse
    read = judge_batch(ch, batch, HASH_RULE)
    assert not _held(ch)
    ch.hold_stored_hashes(HASH_RULE.algorithms)
    assert _held(ch) == {*HASH_RULE.algorithms, "phash_eq_regions"}  # its family's keys need it
    held = judge_batch(ch, batch, HASH_RULE)
    assert np.array_equal(held.rows, read.rows) and np.array_equal(held.ids, read.ids)
    assert np.array_equal(held.evaluation.score, read.evaluation.score)
    for algorithm in HASH_RULE.algorithms:
        assert np.array_equal(held.distances[algorithm], read.distances[algorithm])
    again = next(ch.stored_batches(HASH_RULE.algorithms, 10_000))  # the queries, from memory
    for algorithm in HASH_RULE.algorithms:
        assert np.array_equal(again.hashes[algorithm].words, batch.hashes[algorithm].words)
        assert np.array_equal(
            again.hashes[algorithm].quality, batch.hashes[algorithm].quality, equal_nan=True
        )
    assert set(ch.keys_by_id(held.ids).values()) == set(ch.keys_by_id(read.ids).values())
    assert _pairs(ch, HASH_RULE, exact=False) == _pairs(sqlite, HASH_RULE, exact=False)  # a job holds them


def test_any_write_on_the_path_drops_the_hashes_held_in_memory(both: tuple[Index, ClickHouseIndex]) -> None:
    _, ch = both
    keys = sorted(entry.key for entry in ch.entries())
    ch.hold_stored_hashes(HASH_RULE.algorithms)
    pdq = ch.stored_hashes("pdq", np.array([ch.ids_by_key([keys[0]])[keys[0]]], dtype=np.int64))
    changed = pdq.words ^ np.uint64(0xFF)
    ch.add_words([keys[0]], "pdq", changed, 256)
    assert not _held(ch)
    ch.hold_stored_hashes(HASH_RULE.algorithms)
    now = ch.ids_by_key([keys[0]])[keys[0]]
    assert np.array_equal(ch.stored_hashes("pdq", np.array([now], dtype=np.int64)).words, changed)
    with open_index(ch.url) as other:  # another handle on the same path, in this process
        other.remove([keys[1]])
    assert not _held(ch)
    ch.hold_stored_hashes(HASH_RULE.algorithms)
    ch.compact()
    assert not _held(ch)
    ch.hold_stored_hashes(HASH_RULE.algorithms)
    assert keys[1] not in set(ch.keys_by_id(np.array(list(ch.ids_by_key(keys).values()))).values())
    assert len(_pairs(ch, HASH_RULE, exact=False)) > 0


def _nominated(index: Index, batch: QueryBatch, include_flagged: bool) -> tuple[np.ndarray, np.ndarray]:
    return candidate_pairs(index, batch, HASH_RULE, include_flagged=include_flagged)


def _keyed_candidates(
    index: Index, batch: QueryBatch, rows: np.ndarray, ids: np.ndarray
) -> set[tuple[str, str]]:
    """(query key, candidate key) of nominated (row, entry id) pairs."""
    assert batch.ids is not None
    keys = index.keys_by_id(np.concatenate([batch.ids, ids]))
    return {(keys[int(batch.ids[r])], keys[int(i)]) for r, i in zip(rows.tolist(), ids.tolist(), strict=True)}


def test_every_algorithm_of_a_family_fills_its_key_table_on_chdb(
    both: tuple[Index, ClickHouseIndex],
) -> None:
    """The first add registers a family's algorithms one after the other; each used to drop the
    key-table views the earlier ones had made, and the keys nominated fewer candidates than
    SQLite's (which hold every member's hashes)."""
    sqlite, ch = both
    found = {}
    for index in (sqlite, ch):
        batch = next(index.stored_batches(HASH_RULE.algorithms, 10_000))
        found[index.url] = _keyed_candidates(index, batch, *_nominated(index, batch, False))
    assert found[ch.url] == found[sqlite.url]
    assert len(found[ch.url]) > len(PHOTOS) * 15


def _held_keys(index: ClickHouseIndex) -> set[str]:
    assert isinstance(index.connection, ChdbConnection)
    return set(snapshot.snapshots(index.connection).keys)


def _scored(found: Pairs) -> set[tuple[frozenset[str], int]]:
    pairs = zip(found.first.tolist(), found.second.tolist(), found.distances.tolist(), strict=True)
    return {(frozenset((found.entries[a].key, found.entries[b].key)), d) for a, b, d in pairs}


def _no_sql_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("probed ClickHouse's key tables while they were held")

    monkeypatch.setattr(candidate_sql, "nominate", refuse)


def test_key_tables_held_in_memory_nominate_as_clickhouse_and_sqlite_do(
    both: tuple[Index, ClickHouseIndex], monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite, ch = both
    batch = next(ch.stored_batches(HASH_RULE.algorithms, 10_000))
    by_sql = {flagged: _nominated(ch, batch, flagged) for flagged in (False, True)}
    judged_by_sql = judge_batch(ch, batch, HASH_RULE)
    with monkeypatch.context() as patch:
        patch.setattr(held_keys, "hold", lambda *args, **kwargs: None)  # the job holds its hashes alone
        by_sql_pairs = _scored(pair_search.rule_pairs(ch, HASH_RULE))
    assert _held(ch) and not _held_keys(ch)
    ch.hold_stored_hashes(HASH_RULE.algorithms)
    assert _held_keys(ch) == {"phash_eq", "phash:16"}
    _no_sql_probes(monkeypatch)
    for flagged, (rows, ids) in by_sql.items():
        held_rows, held_ids = _nominated(ch, batch, flagged)
        assert len(rows) > len(batch)
        assert np.array_equal(held_rows, rows) and np.array_equal(held_ids, ids)
    judged = judge_batch(ch, batch, HASH_RULE)
    assert np.array_equal(judged.rows, judged_by_sql.rows) and np.array_equal(judged.ids, judged_by_sql.ids)
    for algorithm in HASH_RULE.algorithms:
        assert np.array_equal(judged.distances[algorithm], judged_by_sql.distances[algorithm])
    held_pairs = _scored(pair_search.rule_pairs(ch, HASH_RULE))
    assert held_pairs == by_sql_pairs == _scored(pair_search.rule_pairs(sqlite, HASH_RULE))
    assert len(held_pairs) >= len(PHOTOS) * 5


def test_a_write_between_batches_drops_the_key_tables_held_in_memory(
    both: tuple[Index, ClickHouseIndex],
) -> None:
    _, ch = both
    keys = sorted(entry.key for entry in ch.entries())
    moved, target = keys[0], next(k for k in keys if _photo(k) != _photo(keys[0]))
    ch.hold_stored_hashes(HASH_RULE.algorithms)
    assert _held_keys(ch)
    family = family_of("phash_eq")
    assert family is not None
    target_words = ch.stored_hashes("phash_eq", np.array([ch.ids_by_key([target])[target]])).words
    ch.add_words([moved], "phash_eq", target_words, 256)  # `moved` now looks like `target`
    assert not _held_keys(ch)
    now = ch.ids_by_key([moved])[moved]
    _, found = ch.nominate("phash_eq", family[1], target_words, False)
    assert now in found.tolist()  # ClickHouse answers, with the new version
    ch.hold_stored_hashes(HASH_RULE.algorithms)
    assert _held_keys(ch) == {"phash_eq", "phash:16"}
    _, held = ch.nominate("phash_eq", family[1], target_words, False)
    assert np.array_equal(np.unique(held), np.unique(found))  # ClickHouse repeats one per table
    with open_index(ch.url) as other:  # a write from another handle on the path
        other.remove([target])
    assert not _held_keys(ch)


def test_key_tables_past_the_memory_ceiling_are_left_to_clickhouse(
    both: tuple[Index, ClickHouseIndex], monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite, ch = both
    ch.hold_stored_hashes(HASH_RULE.algorithms)
    assert isinstance(ch.connection, ChdbConnection)
    hashes_bytes = sum(table.nbytes for table in snapshot.snapshots(ch.connection).tables.values())
    snapshot.drop(ch.connection)
    monkeypatch.setattr(snapshot, "MEMORY_CEILING", hashes_bytes + 1024)  # the hashes fit, the keys not
    calls: list[int] = []
    probe = candidate_sql.nominate

    def counted(*args: Any, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        calls.append(1)
        return probe(*args, **kwargs)

    monkeypatch.setattr(candidate_sql, "nominate", counted)
    found = _scored(pair_search.rule_pairs(ch, HASH_RULE))
    assert _held(ch) >= set(HASH_RULE.algorithms) and not _held_keys(ch)
    assert calls  # every batch probed ClickHouse
    assert found == _scored(pair_search.rule_pairs(sqlite, HASH_RULE))


def _local_meetings(
    index: Index, keys: np.ndarray, tables: np.ndarray, limit: int | None
) -> list[tuple[int, str, int]]:
    """Every (probe, stored key, keypoint signature) meeting, once per stored keypoint (an image
    may hold a key twice)."""
    probes, ids, signatures = index.nominate_local(keys, tables, limit)
    named = index.keys_by_id(np.unique(ids))
    return sorted(
        (p, named[i], s) for p, i, s in zip(probes.tolist(), ids.tolist(), signatures.tolist(), strict=True)
    )


def test_descriptor_keys_meet_the_same_keypoints_on_sqlite_and_chdb_and_common_ones_are_skipped(
    both: tuple[Index, ClickHouseIndex], corpus: list[Path]
) -> None:
    """A query's descriptor probes (its keys and those one bit away) meet the same stored
    keypoints, with the same signatures, in SQLite's tables held in memory and in ClickHouse's
    `local_keys`; a stored keypoint of the query's own photo has its descriptor's signature; with
    a limit, both drop exactly the keys that many stored keypoints hold (a photo's copies share
    many)."""
    from lookalike.local.retrieval import descriptor_probes, query_descriptors

    sqlite, ch = both
    query = lookalike.hash_file(corpus[0], default_index_hashes(), dihedral=True, local=True)
    words, owners = query_descriptors([(query.local, query.local_mirrored)])
    keys, tables, _, signatures = descriptor_probes(words, owners, neighbours=True)
    every = _local_meetings(sqlite, keys, tables, None)
    assert every == _local_meetings(ch, keys, tables, None)
    same = [s == int(signatures[p]) for p, key, s in every if key.endswith(corpus[0].name)]
    assert sum(same) >= 50  # the stored keypoints are the query's own, their descriptors equal
    held: dict[int, int] = {}  # stored keypoints per probed key
    for probe, _key, _ in every:
        held[probe] = held.get(probe, 0) + 1
    assert max(held.values()) >= 3 and min(held.values()) < 3
    rare = [(probe, key, s) for probe, key, s in every if held[probe] < 3]
    assert _local_meetings(sqlite, keys, tables, 3) == rare
    assert _local_meetings(ch, keys, tables, 3) == rare


def test_an_index_made_before_keypoint_signatures_gains_them_when_it_opens(
    corpus: list[Path], tmp_path: Path
) -> None:
    """A chDB index whose `local_keys` has no signatures (made by an older lookalike): opening it
    builds `local_keypoints` from the stored local features, with the rows a new index writes, and
    drops the old table, so partial-copy retrieval goes on without re-adding a file."""
    from lookalike.local.retrieval import descriptor_probes, query_descriptors

    url = f"chdb://{tmp_path / 'ch'}"
    query = lookalike.hash_file(corpus[0], default_index_hashes(), dihedral=True, local=True)
    words, owners = query_descriptors([(query.local, query.local_mirrored)])
    keys, tables, _, _ = descriptor_probes(words, owners, neighbours=True)
    with open_index(url) as index:
        assert isinstance(index, ClickHouseIndex)
        assert index.add_files(corpus[:6], workers=1).added == 6
        expected = _local_meetings(index, keys, tables, None)
        assert len(expected) > 100
        new, old = index._tables.local_keys(), index._tables.legacy_local_keys()
        index.connection.execute(
            f"CREATE TABLE {old} (tk UInt64, version UInt64) ENGINE = MergeTree ORDER BY (tk, version)"
        )
        index.connection.execute(f"INSERT INTO {old} SELECT tk, version FROM {new}")
        index.connection.execute(f"DROP TABLE {new}")
    with open_index(url) as index:
        assert isinstance(index, ClickHouseIndex)
        assert _local_meetings(index, keys, tables, None) == expected
        assert not index._has_column(index._tables.legacy_local_keys(), "tk")  # dropped


def test_sqlite_keypoints_reopen_from_their_snapshot_and_take_new_images_after_it(
    corpus: list[Path], tmp_path: Path
) -> None:
    """An index's keypoint tables and signatures are snapshotted (`<index>.search/keypoints`,
    the folder of the tables before signatures removed), open from it with the same meetings,
    and images added afterwards are met too, with their signatures, as an index built at once
    meets them."""
    from lookalike.local.retrieval import descriptor_probes, query_descriptors

    query = lookalike.hash_file(corpus[0], default_index_hashes(), dihedral=True, local=True)
    words, owners = query_descriptors([(query.local, query.local_mirrored)])
    keys, tables, _, _ = descriptor_probes(words, owners, neighbours=True)
    path = tmp_path / "index.db"
    retired = Path(f"{path}.search") / "keys-local-descriptors"
    with open_index(f"sqlite:///{path}") as index:
        assert index.add_files(corpus[:5], workers=1).added == 5
        before = _local_meetings(index, keys, tables, None)
        retired.mkdir(parents=True)
        index.persist_search(force=True)  # type: ignore[attr-defined]
    assert (retired.parent / "keypoints" / "signatures").is_dir() and not retired.exists()
    with open_index(f"sqlite:///{path}") as index:
        assert _local_meetings(index, keys, tables, None) == before
        assert index._candidates._local.from_snapshot  # type: ignore[attr-defined]
        assert index.add_files(corpus[5:8], workers=1).added == 3
        grown = _local_meetings(index, keys, tables, None)
    with open_index(f"sqlite:///{tmp_path / 'at_once.db'}") as index:
        assert index.add_files(corpus[:8], workers=1).added == 8
        assert grown == _local_meetings(index, keys, tables, None) != before
