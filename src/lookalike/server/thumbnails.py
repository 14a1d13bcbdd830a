"""Small JPEG previews of images the service has seen, for its web page."""

from __future__ import annotations

import io
import sqlite3
import threading
from pathlib import Path

from PIL import Image

from lookalike.prepare import reduce_to_8bit

SIDE = 256


def make_thumbnail(image: Image.Image, side: int = SIDE) -> bytes:
    """A JPEG no larger than side x side of a decoded image (orientation already applied), in
    any mode: box-reduced to 8 bits band by band first, so a large 16-bit or float image costs
    no full-size copy."""
    preview = reduce_to_8bit(image, max(1, max(image.size) // (2 * side)))
    if preview is image:  # small already: thumbnail() works in place
        preview = image.copy()
    preview.thumbnail((side, side))
    buffer = io.BytesIO()
    preview.convert("RGB").save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


class ThumbnailStore:
    """Thumbnails by image id in a SQLite file (ids are opaque strings, never paths)."""

    def __init__(self, path: str | Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS thumbnails (id TEXT PRIMARY KEY, jpeg BLOB NOT NULL)")

    def put(self, image_id: str, jpeg: bytes) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO thumbnails VALUES (?, ?)", (image_id, jpeg))

    def get(self, image_id: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT jpeg FROM thumbnails WHERE id = ?", (image_id,)).fetchone()
        return None if row is None else bytes(row[0])

    def delete(self, image_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM thumbnails WHERE id = ?", (image_id,))

    def close(self) -> None:
        with self._lock:
            self._db.close()
