"""What the service holds while it runs: the index (behind a lock), banks, thumbnails, metrics."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lookalike.decode import DecodeLimits, sniff_image_type
from lookalike.errors import LookalikeError
from lookalike.hash import Hash
from lookalike.index import Index, open_index
from lookalike.index.sqlite import sqlite_path
from lookalike.local.features import LocalWanted, local_features_available
from lookalike.lookup import query_algorithms, search_algorithms
from lookalike.matcher import default_index_hashes
from lookalike.pipeline import HashResult, hash_image
from lookalike.server.banks import BankStore
from lookalike.server.config import ServerConfig
from lookalike.server.errors import ApiError
from lookalike.server.metrics import Metrics
from lookalike.server.thumbnails import ThumbnailStore

ACCEPTED_FORMATS = {"JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "HEIF", "AVIF"}


@dataclass(frozen=True)
class Upload:
    """An uploaded image: its bytes' digest, its hashes and a thumbnail."""

    sha256: str
    byte_size: int
    result: HashResult
    thumbnail: bytes | None


def state_folder(config: ServerConfig) -> Path:
    """Where banks and thumbnails live: --banks-dir, else beside a SQLite index, else ./lookalike-server."""
    if config.banks_dir:
        return Path(config.banks_dir)
    url = config.index_url
    if url is None or "://" not in url or url.startswith("sqlite:"):
        return Path(sqlite_path(url) + ".server")
    return Path("lookalike-server")


class ServiceState:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.index: Index = open_index(config.index_url)
        self._index_lock = threading.RLock()
        folder = state_folder(config)
        folder.mkdir(parents=True, exist_ok=True)
        self.banks = BankStore(folder)
        self.thumbnails = ThumbnailStore(folder / "thumbnails.db")
        self.metrics = Metrics()
        self.limits = DecodeLimits(max_pixels=config.max_pixels, max_decoded_bytes=config.max_image_bytes)

    @contextmanager
    def locked_index(self) -> Iterator[Index]:
        """The index, used by one request at a time (backends are not thread-safe)."""
        with self._index_lock:
            yield self.index

    def upload_algorithms(self) -> list[str]:
        """What `/v1/hash` computes by default: what the index and the banks need, and PDQ."""
        return list(dict.fromkeys([*self.query_algorithms(None), "pdq", *self.banks.algorithms()]))

    def query_algorithms(self, names_text: str | None) -> list[str]:
        """What an upload searched (or added) is hashed with: the algorithms asked for (default:
        the index's) with the rest of the index's, as the command line hashes a query."""
        with self.locked_index() as index:
            stored = index.algorithm_bits()
        try:
            names = search_algorithms(names_text, stored) if stored or names_text else []
        except LookalikeError as exc:
            raise ApiError(422, "bad_query", str(exc)) from None
        return query_algorithms(names or default_index_hashes(), stored)

    def add_algorithms(self) -> list[str]:
        """What an added upload is hashed with: what `index add` stores by default, with every
        other hash the index holds."""
        with self.locked_index() as index:
            return query_algorithms(default_index_hashes(), index.algorithm_bits())

    def hash_upload(
        self,
        data: bytes,
        names: list[str] | None = None,
        *,
        dihedral: bool = True,
        thumbnail: bool = False,
        local: LocalWanted = False,
    ) -> Upload:
        """Hash uploaded bytes after checking their type from the bytes themselves; `local` as in
        `hash_image` (True for an image to store, "query" for one to search with), when OpenCV is
        installed."""
        kind = sniff_image_type(data[:32])
        if kind is None or kind not in ACCEPTED_FORMATS:
            raise ApiError(
                415, "unsupported_media_type", "not a JPEG, PNG, GIF, WebP, BMP, TIFF, HEIF or AVIF image"
            )
        local = local if local_features_available() else False
        algorithms = names or self.upload_algorithms()
        result = hash_image(data, algorithms, limits=self.limits, dihedral=dihedral, local=local)
        preview = _thumbnail(data, self.limits) if thumbnail else None
        return Upload(hashlib.sha256(data).hexdigest(), len(data), result, preview)

    def index_size(self) -> int:
        with self.locked_index() as index:
            return len(index)

    def close(self) -> None:
        with self.locked_index() as index:
            index.close()
        self.banks.close()
        self.thumbnails.close()


def _thumbnail(data: bytes, limits: DecodeLimits) -> bytes | None:
    from lookalike.decode import decode
    from lookalike.errors import ImageError
    from lookalike.server.thumbnails import make_thumbnail

    try:
        return make_thumbnail(decode(data, draft_min_side=512, limits=limits).image)
    except ImageError:
        return None


def hash_json(hashes: dict[str, object]) -> dict[str, str]:
    return {name: str(value) for name, value in hashes.items()}


def qualities(hashes: dict[str, object]) -> dict[str, int]:
    return {
        name: value.quality
        for name, value in hashes.items()
        if isinstance(value, Hash) and value.quality is not None
    }
