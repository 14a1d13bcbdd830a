"""Arrays kept in the cache folder: built once, checked on load, never in the way when the folder is not."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lookalike import disk_memo


def test_an_array_is_built_once_and_then_loaded(tmp_path: Path) -> None:
    builds: list[int] = []

    def build() -> np.ndarray:
        builds.append(1)
        return np.arange(1000, dtype=np.uint16)

    first = disk_memo.cached_array("numbers", build, tmp_path)
    second = disk_memo.cached_array("numbers", build, tmp_path)
    assert builds == [1]
    assert np.array_equal(first, second) and second.dtype == np.uint16
    [kept] = tmp_path.glob("numbers-*.npy")
    assert kept.stem.startswith("numbers-") and len(kept.stem) == len("numbers-") + disk_memo.DIGEST_CHARS


def test_a_damaged_file_is_removed_and_the_array_built_again(tmp_path: Path) -> None:
    disk_memo.cached_array("numbers", lambda: np.arange(1000, dtype=np.uint16), tmp_path)
    [kept] = tmp_path.glob("numbers-*.npy")
    data = bytearray(kept.read_bytes())
    data[-3] ^= 0xFF  # one flipped byte in the payload
    kept.write_bytes(bytes(data))
    assert disk_memo.stored_array("numbers", tmp_path) is None
    assert not kept.exists()
    again = disk_memo.cached_array("numbers", lambda: np.arange(1000, dtype=np.uint16), tmp_path)
    assert np.array_equal(again, np.arange(1000))


def test_a_folder_that_is_a_file_only_means_building_in_memory(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("a file where the cache folder should be")
    array = disk_memo.cached_array("numbers", lambda: np.ones(5), not_a_folder)
    assert np.array_equal(array, np.ones(5))
