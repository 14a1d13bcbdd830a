"""The committed corpus of awkward files: each gives a hash or a clear error naming the file.

tests/fixtures/make_awkward_corpus.py rebuilds the corpus. Situations that cannot be committed
(symlink loops, unreadable files, a file deleted mid-scan) are built in a temporary folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import lookalike
from lookalike.discover import iter_image_paths
from lookalike.errors import (
    CorruptImageError,
    FileMissingError,
    ImageError,
    UnreadableFileError,
    UnsupportedImageError,
)

CORPUS = Path(__file__).parent / "fixtures" / "awkward"
FILES = sorted(CORPUS.iterdir())
ALGORITHMS = ["ahash", "dhash", "phash", "whash", "colorhash", "crop_resistant"]

EXPECTED_ERRORS: dict[str, type[ImageError]] = {
    "zero-bytes.jpg": UnsupportedImageError,
    "html-saved-as.jpg": UnsupportedImageError,
    "truncated.jpg": CorruptImageError,
    "progressive-truncated.jpg": CorruptImageError,
    "bad-crc.png": ImageError,
}


def test_corpus_is_present() -> None:
    assert len(FILES) >= 16


@pytest.mark.parametrize("mode", ["fast", "exact"])
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_each_file_gives_a_hash_or_a_clear_error(path: Path, mode: str) -> None:
    expected = EXPECTED_ERRORS.get(path.name)
    if expected is None:
        result = lookalike.hash_file(path, ALGORITHMS, mode=mode)  # type: ignore[arg-type]
        assert set(result) == set(ALGORITHMS)
        assert result.width >= 1 and result.height >= 1
    else:
        with pytest.raises(expected) as caught:
            lookalike.hash_file(path, ALGORITHMS, mode=mode)  # type: ignore[arg-type]
        assert caught.value.path == str(path) and caught.value.reason


def test_animated_files_hash_their_first_frame() -> None:
    for name in ("animated.gif", "animated.webp"):
        with Image.open(CORPUS / name) as image:
            assert getattr(image, "n_frames", 1) > 1
            first = image.convert("RGB")
        expected = lookalike.hash_image(first, ["phash"], mode="exact")
        assert lookalike.hash_file(CORPUS / name, ["phash"], mode="exact")["phash"] == expected["phash"]


def test_out_of_range_exif_orientation_is_ignored() -> None:
    for name in ("exif-orientation-0.jpg", "exif-orientation-9.jpg"):
        upright = lookalike.hash_file(CORPUS / name, ["phash"], orientation=False)
        assert lookalike.hash_file(CORPUS / name, ["phash"])["phash"] == upright["phash"]


def test_cli_reports_every_bad_file_without_a_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lookalike", "hash", str(CORPUS), "--json", "--hashes", "ahash,phash"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    records = [json.loads(line) for line in done.stdout.splitlines()]
    failed = {Path(r["path"]).name for r in records if "error" in r}
    assert failed == set(EXPECTED_ERRORS)
    assert len(records) == len(FILES)
    assert "Traceback" not in done.stderr


def test_symlink_loop_in_a_scanned_folder_ends(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.png").write_bytes((CORPUS / "one-pixel.png").read_bytes())
    os.symlink(tmp_path, tmp_path / "sub" / "loop")
    skipped: list[object] = []
    found = list(iter_image_paths([tmp_path], recursive=True, on_skip=skipped.append))
    assert [Path(p).name for p in found] == ["a.png"]
    assert skipped  # the loop was noticed and reported


@pytest.mark.skipif(not hasattr(os, "setuid"), reason="needs POSIX user switching")
def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    target = tmp_path / "secret.png"
    target.write_bytes((CORPUS / "one-pixel.png").read_bytes())
    target.chmod(0)
    if os.geteuid() != 0:
        with pytest.raises(UnreadableFileError):
            lookalike.hash_file(target)
        return
    # root reads anything: check as the unprivileged "nobody" user in a child process.
    tmp_path.chmod(0o755)
    # Import and warm up everything as root first: nobody cannot read root's Python install.
    script = (
        "import os, sys\n"
        "import lookalike\n"
        "from lookalike.errors import UnreadableFileError\n"
        "lookalike.hash_file(sys.argv[2])\n"
        "os.setgid(65534); os.setuid(65534)\n"
        "try:\n    lookalike.hash_file(sys.argv[1])\n"
        "except UnreadableFileError as e:\n    print('unreadable', e.reason)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(target), str(CORPUS / "one-pixel.png")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.stdout.startswith("unreadable permission denied"), done.stderr


def test_file_deleted_during_the_scan_is_reported_and_the_rest_hashed(tmp_path: Path) -> None:
    for name in ("a.png", "b.png", "c.png"):
        (tmp_path / name).write_bytes((CORPUS / "palette-transparency.png").read_bytes())
    paths = list(iter_image_paths([tmp_path]))

    def deleting() -> object:
        for index, path in enumerate(paths):
            if index == 1:
                os.remove(paths[2])
            yield path

    results = dict(lookalike.hash_files(deleting(), ["ahash"], workers=1))
    assert isinstance(results[paths[2]], FileMissingError)
    assert not isinstance(results[paths[0]], ImageError) and not isinstance(results[paths[1]], ImageError)
