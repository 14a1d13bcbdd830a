"""Find image files under folders (extensions, recursion, symlink loops, unreadable folders), and
turn their names into text.

A name that is not UTF-8 (written on another system, in another encoding) reaches Python as a
string with surrogate escapes, which SQLite, JSON and terminals refuse. `path_text` writes each
such byte as `\\xNN`; the index stores that text as the file's key (`file_key`), and `key_path`
finds the file a key names again.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".gif", ".bmp", ".dib",
        ".tif", ".tiff", ".heic", ".heif", ".avif", ".ppm", ".pgm", ".pbm", ".tga", ".ico",
    }
)  # fmt: skip


@dataclass(frozen=True)
class SkippedPath:
    """A path that discovery could not descend into, and why."""

    path: str
    reason: str


def path_text(path: str) -> str:
    """`path` as text any store or output accepts: bytes that are not UTF-8 become `\\xNN`."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")
    return path


def file_key(path: str | os.PathLike[str]) -> str:
    """The index key of a file: its absolute path, as text (`path_text`)."""
    return path_text(os.path.abspath(os.fspath(path)))


_ESCAPED_BYTE = re.compile(rb"\\x([0-9a-f]{2})")


def key_path(key: str) -> str:
    """The file a file key names: the key itself, or, when no file has that name and the key holds
    `\\xNN` escapes, the name those bytes spell. (A caller about to act on the file checks that it
    is still the one indexed, by size and sha256.)"""
    if "\\x" not in key or os.path.lexists(key):
        return key
    raw = _ESCAPED_BYTE.sub(lambda match: bytes([int(match[1], 16)]), os.fsencode(key))
    return os.fsdecode(raw)


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def iter_image_paths(
    inputs: Iterable[str | os.PathLike[str]],
    *,
    recursive: bool = False,
    on_skip: Callable[[SkippedPath], None] | None = None,
    on_empty: Callable[[SkippedPath], None] | None = None,
) -> Iterator[str]:
    """Yield files named on the command line as they are, and image files found in folders.

    Folders are walked in sorted order (recursively if asked), following symlinks to folders
    only once each, so a symlink loop ends instead of recursing forever. Folders that cannot be
    listed are reported through `on_skip` and skipped; a folder named in `inputs` that gives no
    image is reported through `on_empty`, with the reason (`why_no_images`).
    """
    seen_dirs: set[tuple[int, int]] = set()
    for item in inputs:
        path = os.fspath(item)
        if os.path.isdir(path):
            found = 0
            for image in _walk(path, recursive, seen_dirs, on_skip):
                found += 1
                yield image
            reason = why_no_images(path, recursive) if found == 0 and on_empty else None
            if reason is not None and on_empty:
                on_empty(SkippedPath(path, reason))
        else:
            yield path  # a named file is always tried, so a bad one is reported, not ignored


def why_no_images(folder: str, recursive: bool) -> str | None:
    """Why `folder` gave no images, as a hint: it is empty, its images are in sub-folders (and
    the walk was not recursive), or its files have no image extension. None if it cannot be
    listed (that is reported as a skip)."""
    try:
        with os.scandir(folder) as entries:
            listing = list(entries)
    except OSError:
        return None
    files = [e for e in listing if _is(e, "file")]
    subfolders = [e.path for e in listing if _is(e, "dir")]
    if not recursive and any(_holds_images(sub) for sub in subfolders):
        return "no images directly in it, but its sub-folders have some: add --recursive"
    if files:
        count = f"{len(files)} file{'s' if len(files) != 1 else ''}"
        return f"no image files in it ({count}, none named .jpg, .png, .webp, .heic or another image type)"
    return "no images in it (empty)" if not subfolders else "no images in it or its sub-folders"


def _is(entry: os.DirEntry[str], kind: str) -> bool:
    try:
        return entry.is_dir() if kind == "dir" else entry.is_file()
    except OSError:
        return False


def _holds_images(folder: str) -> bool:
    """Whether any image lies at any depth under `folder` (stops at the first)."""
    return next(_walk(folder, True, set(), None), None) is not None


def _walk(
    folder: str,
    recursive: bool,
    seen_dirs: set[tuple[int, int]],
    on_skip: Callable[[SkippedPath], None] | None,
) -> Iterator[str]:
    try:
        info = os.stat(folder)
    except OSError as exc:
        if on_skip:
            on_skip(SkippedPath(folder, exc.strerror or str(exc)))
        return
    key = (info.st_dev, info.st_ino)
    if key in seen_dirs:
        if on_skip:
            on_skip(SkippedPath(folder, "already visited (symlink loop or repeated folder)"))
        return
    seen_dirs.add(key)
    try:
        with os.scandir(folder) as entries:
            listing = sorted(entries, key=lambda e: e.name)
    except OSError as exc:
        if on_skip:
            on_skip(SkippedPath(folder, exc.strerror or str(exc)))
        return
    subfolders = []
    for entry in listing:
        try:
            is_dir = entry.is_dir()
            is_file = entry.is_file()
        except OSError:
            continue
        if is_dir:
            subfolders.append(entry.path)
        elif is_file and is_image_name(entry.name):
            yield entry.path
    if recursive:
        for sub in subfolders:
            yield from _walk(sub, recursive, seen_dirs, on_skip)
