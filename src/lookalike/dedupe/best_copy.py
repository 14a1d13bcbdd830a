"""Which member of a duplicate group to keep: the best copy comes first."""

from __future__ import annotations

from lookalike.index.base import Entry


def content_pixels(entry: Entry) -> int:
    """Pixels of picture: without uniform borders when indexing measured them (metadata
    "content"), so bars added to a copy do not make it look like the larger original."""
    content = entry.metadata.get("content") if entry.metadata else None
    if isinstance(content, list) and len(content) == 2 and all(isinstance(v, int) for v in content):
        return int(content[0]) * int(content[1])
    return entry.pixels


def best_copy_rank(entry: Entry) -> tuple[int, int, float, str]:
    """Sort key putting the best copy first: most pixels of picture (see `content_pixels`), then
    largest file, then oldest (file mtime, else when it was indexed), then key for a stable order."""
    age = entry.mtime if entry.mtime is not None else entry.added_at
    return (-content_pixels(entry), -(entry.byte_size or 0), age, entry.key)
