"""Bad input raises a lookalike.errors exception naming the file and the reason."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

import lookalike
from conftest import COMMITTED_PHOTOS
from lookalike.errors import (
    CorruptImageError,
    FileMissingError,
    ImageError,
    ImageTooLargeError,
    NotAFileError,
    UnsupportedImageError,
)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels (a decompression bomb's calling card)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.jpg"
    with pytest.raises(FileMissingError) as caught:
        lookalike.hash_file(path)
    assert str(path) in str(caught.value) and "no such file" in caught.value.reason


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(NotAFileError) as caught:
        lookalike.hash_file(tmp_path)
    assert caught.value.path == str(tmp_path) and "directory" in caught.value.reason


def test_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "page.jpg"
    path.write_text("<html><body>not a picture</body></html>")
    with pytest.raises(UnsupportedImageError) as caught:
        lookalike.hash_file(path, ["ahash"])
    assert caught.value.path == str(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(UnsupportedImageError, match="empty"):
        lookalike.hash_file(path)


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_truncated_jpeg(tmp_path: Path, mode: str) -> None:
    source = next(p for p in COMMITTED_PHOTOS if p.suffix == ".jpg")
    path = tmp_path / "cut.jpg"
    path.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(CorruptImageError) as caught:
        lookalike.hash_file(path, ["ahash", "phash"], mode=mode)  # type: ignore[arg-type]
    assert "truncated" in caught.value.reason and str(path) in str(caught.value)


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(40_000, 40_000))
    with pytest.raises(ImageTooLargeError) as caught:
        lookalike.hash_file(path)
    assert "pixels" in caught.value.reason and caught.value.path == str(path)


def test_errors_are_one_family() -> None:
    for error in (
        FileMissingError,
        NotAFileError,
        UnsupportedImageError,
        CorruptImageError,
        ImageTooLargeError,
    ):
        assert issubclass(error, ImageError) and issubclass(error, lookalike.errors.LookalikeError)


def test_hash_files_reports_bad_files_and_goes_on(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nonsense")
    paths = [str(COMMITTED_PHOTOS[0]), str(bad), str(tmp_path / "missing.png"), str(COMMITTED_PHOTOS[1])]
    results = dict(lookalike.hash_files(paths, ["ahash"], workers=2))
    assert set(results) == set(paths)
    assert isinstance(results[str(bad)], UnsupportedImageError)
    assert isinstance(results[str(tmp_path / "missing.png")], FileMissingError)
    good = results[str(COMMITTED_PHOTOS[0])]
    assert not isinstance(good, ImageError)
    assert good["ahash"] == lookalike.hash_file(COMMITTED_PHOTOS[0], ["ahash"])["ahash"]
