"""The partial-copy retrieval benchmark (`lookalike.benchmarks.local_scale`): its synthetic stored
images are made again from their ids alone, and among thousands of them the candidate stage still
nominates a picture in picture's original, the same whether the commonest keys are read or not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import COMMITTED_PHOTOS
from lookalike.benchmarks.local_scale import SYNTHETIC_BASE, ScaledSource, SyntheticSets
from lookalike.candidates.batch import QueryBatch
from lookalike.candidates.stage import local_candidates
from lookalike.local.features import extract, mirrored
from lookalike.local.retrieval import descriptor_words
from test_local_features import _gray, small_inset

pytest.importorskip("cv2")

INSET, BACKGROUND = 5, 0


@pytest.fixture(scope="module")
def sources() -> list:
    return [extract(_gray(i)) for i in range(len(COMMITTED_PHOTOS)) if i not in (INSET, BACKGROUND)]


@pytest.mark.parametrize("mixed", [False, True], ids=["whole sources", "mixed keypoints"])
def test_a_synthetic_image_is_made_again_from_its_id_with_the_share_of_bits_flipped(
    sources: list, mixed: bool
) -> None:
    synthetic = SyntheticSets(sources, 0.25, seed=3, mixed=mixed)
    ids = np.arange(40, dtype=np.int64) + SYNTHETIC_BASE
    owners, words = synthetic.words(ids)
    alone = synthetic.features(ids[[17]])[int(ids[17])]
    assert len(alone) == 112
    assert (descriptor_words(alone) == words[owners == ids[17]]).all()
    if not mixed:  # each descriptor is its source's with about a quarter of its bits flipped
        source = synthetic.sources[int(synthetic._source_of(ids[[17]])[0])]
        distance = np.unpackbits(alone.descriptors ^ source.descriptors[:112], axis=1).sum(axis=1)
        assert 0.2 * 256 < distance.mean() < 0.3 * 256
    assert not (synthetic.words(ids + 1000)[1][:112] == words[:112]).all()


class _Unlimited:
    """A source that reads every key, however common."""

    def __init__(self, source: ScaledSource) -> None:
        self.source = source

    def nominate_local(self, keys: np.ndarray, tables: np.ndarray, limit: int | None = None) -> tuple:
        return self.source.nominate_local(keys, tables, None)

    def stored_local(self, ids: np.ndarray) -> dict:
        return self.source.stored_local(ids)


def test_an_insets_original_is_nominated_among_thousands_of_stored_images(sources: list) -> None:
    """A photo pasted at 30% of another's width, its original and the background among 20,000
    synthetic stored images made from the other committed photos' keypoints: the candidate stage
    nominates the original, and skipping keys that 64 stored keypoints hold (they weigh nothing)
    changes no candidate."""
    canvas, _ = small_inset(INSET, BACKGROUND)
    gray = np.asarray(canvas.convert("L"))
    query = (extract(gray, finer=True), extract(mirrored(gray)))
    real = {i: (extract(_gray(i)).compact(), None) for i in (INSET, BACKGROUND)}
    source = ScaledSource(real, SyntheticSets(sources, 0.0625, mixed=True), 20_000)
    empty = np.zeros(0, dtype=np.int64)
    batch = QueryBatch(1, {}, None, [query])
    _, ids, _ = local_candidates(source, batch, empty, empty, 32)  # type: ignore[arg-type]
    assert INSET in ids.tolist()
    assert (ids >= SYNTHETIC_BASE).sum() > 0  # the synthetic images compete
    _, unlimited, _ = local_candidates(_Unlimited(source), batch, empty, empty, 32)  # type: ignore[arg-type]
    assert unlimited.tolist() == ids.tolist()


def test_chdb_key_rows_nominate_what_the_tables_held_in_memory_do(sources: list, tmp_path: Path) -> None:
    """The benchmark's ClickHouse backend: the same keypoint rows in a chDB index's `local_keypoints`,
    probed by ClickHouse with the common-key limit, nominate the same stored images."""
    canvas, _ = small_inset(INSET, BACKGROUND)
    gray = np.asarray(canvas.convert("L"))
    batch = QueryBatch(1, {}, None, [(extract(gray, finer=True), extract(mirrored(gray)))])
    real = {i: (extract(_gray(i)).compact(), None) for i in (INSET, BACKGROUND)}
    synthetic = SyntheticSets(sources, 0.0625, mixed=True)
    empty = np.zeros(0, dtype=np.int64)
    _, held, _ = local_candidates(ScaledSource(real, synthetic, 3000), batch, empty, empty, 32)  # type: ignore[arg-type]
    on_chdb = ScaledSource.on_chdb(real, synthetic, 3000, tmp_path / "chdb")
    try:
        _, read, _ = local_candidates(on_chdb, batch, empty, empty, 32)  # type: ignore[arg-type]
    finally:
        on_chdb.index.close()
    assert INSET in held.tolist()
    assert read.tolist() == held.tolist()
