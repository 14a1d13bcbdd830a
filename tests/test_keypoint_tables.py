"""KeypointTables against a brute force: every (probe, image, signature) of a live stored keypoint
sharing a probe's key, across the sorted part, the buffer, removals, replaced images and a
snapshot; and the limit counted over live keypoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lookalike.local.features import STORED_KEYPOINTS
from lookalike.local.keypoint_tables import KeypointTables, keypoint_numbers
from lookalike.local.retrieval import DESCRIPTOR_LAYOUT, descriptor_signatures


def _images(rng: np.random.Generator, ids: range | list[int]) -> dict[int, np.ndarray]:
    """Descriptor words of each image: the key bytes from 500 patterns, so that a key is held by
    about 45 stored keypoints (some by fewer than the limit, some by more)."""
    patterns = np.random.default_rng(0).integers(0, 2**63, size=(500, 2), dtype=np.uint64)
    found = {}
    for image in ids:
        count = int(rng.integers(1, STORED_KEYPOINTS + 1))
        words = rng.integers(0, 2**63, size=(count, 4), dtype=np.uint64)
        words[:, :2] = patterns[rng.integers(0, len(patterns), size=count)]
        found[image] = words
    return found


def _add(tables: KeypointTables, images: dict[int, np.ndarray]) -> None:
    owners = np.concatenate([np.full(len(w), i, dtype=np.int64) for i, w in images.items()])
    tables.add(owners, np.concatenate(list(images.values())))


def _brute_force(
    held: dict[int, np.ndarray], keys: np.ndarray, tables: np.ndarray, limit: int | None
) -> list[tuple[int, int, int]]:
    met = []
    for image, words in held.items():
        stored_keys = DESCRIPTOR_LAYOUT.keys(words)
        signatures = descriptor_signatures(words)
        for probe, (key, table) in enumerate(zip(keys.tolist(), tables.tolist(), strict=True)):
            for point in np.flatnonzero(stored_keys[:, table] == key).tolist():
                met.append((probe, image, int(signatures[point])))
    if limit is not None:
        counts = np.bincount([m[0] for m in met], minlength=len(keys))
        met = [m for m in met if counts[m[0]] < limit]
    return sorted(met)


def _probe(tables: KeypointTables, keys: np.ndarray, table_of: np.ndarray, limit: int | None) -> list:
    probes, images, signatures = tables.probe_keys(keys, table_of, limit)
    return sorted(zip(probes.tolist(), images.tolist(), signatures.tolist(), strict=True))


@pytest.mark.parametrize("limit", [None, 50])
def test_keypoints_meet_with_their_signatures_after_adds_removals_replacements_and_a_snapshot(
    tmp_path: Path, limit: int | None
) -> None:
    rng = np.random.default_rng(3)
    tables = KeypointTables()
    held = _images(rng, range(0, 400))
    _add(tables, held)
    tables.keys.compact()  # the sorted part
    late = _images(rng, range(400, 430))
    _add(tables, late)  # the buffer
    held.update(late)
    gone = [3, 77, 401]
    tables.remove(np.array(gone))
    for image in gone:
        del held[image]
    replaced = _images(rng, [10, 405])  # removed, then added again with other keypoints
    tables.remove(np.array(list(replaced)))
    _add(tables, replaced)
    held.update(replaced)
    stored_keys = np.concatenate([DESCRIPTOR_LAYOUT.keys(w) for w in held.values()])
    table_of = rng.integers(0, DESCRIPTOR_LAYOUT.table_count, size=60)
    probes = stored_keys[rng.integers(0, len(stored_keys), size=60), table_of]

    expected = _brute_force(held, probes, table_of, limit)
    kept = len({m[0] for m in expected})
    assert len(expected) > 500 and (kept < 50 if limit else kept == 60)
    assert _probe(tables, probes, table_of, limit) == expected
    tables.save(tmp_path / "snapshot", {"rev": 1})
    loaded = KeypointTables.load(tmp_path / "snapshot")
    assert loaded is not None and loaded[1]["rev"] == 1
    assert _probe(loaded[0], probes, table_of, limit) == expected


def test_a_snapshot_of_plain_key_tables_is_not_read_as_keypoints(tmp_path: Path) -> None:
    """Rows named by image alone (the tables before signatures) would be read as other images'
    keypoints: such a snapshot is refused, and the index rebuilds from its catalog."""
    from lookalike.candidates.tables import KeyTables

    rng = np.random.default_rng(4)
    plain = KeyTables(DESCRIPTOR_LAYOUT)
    plain.add(np.arange(50), rng.integers(0, 2**63, size=(50, 4), dtype=np.uint64))
    plain.save(tmp_path / "snapshot" / "keys", {"rev": 1})
    KeypointTables().signatures.save(tmp_path / "snapshot" / "signatures", {"rev": 1})
    assert KeypointTables.load(tmp_path / "snapshot") is None


def test_keypoint_numbers_count_within_each_image_and_refuse_split_or_oversized_images() -> None:
    assert keypoint_numbers(np.array([4, 4, 4, 9, 2, 2])).tolist() == [0, 1, 2, 0, 0, 1]
    with pytest.raises(ValueError, match="consecutive"):
        keypoint_numbers(np.array([4, 9, 4]))
    with pytest.raises(ValueError, match="at most"):
        keypoint_numbers(np.zeros(STORED_KEYPOINTS + 1, dtype=np.int64))
