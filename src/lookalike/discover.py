"""Find image files under folders: extensions, recursion, symlink loops and unreadable folders."""

from __future__ import annotations

import os
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


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def iter_image_paths(
    inputs: Iterable[str | os.PathLike[str]],
    *,
    recursive: bool = False,
    on_skip: Callable[[SkippedPath], None] | None = None,
) -> Iterator[str]:
    """Yield files named on the command line as they are, and image files found in folders.

    Folders are walked in sorted order (recursively if asked), following symlinks to folders
    only once each, so a symlink loop ends instead of recursing forever. Folders that cannot be
    listed are reported through `on_skip` and skipped.
    """
    seen_dirs: set[tuple[int, int]] = set()
    for item in inputs:
        path = os.fspath(item)
        if os.path.isdir(path):
            yield from _walk(path, recursive, seen_dirs, on_skip)
        else:
            yield path  # a named file is always tried, so a bad one is reported, not ignored


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
