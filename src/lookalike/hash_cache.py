"""Remember hash results per file, so hashing an unchanged folder again decodes nothing.

A result is keyed by `CacheKey`: the file's absolute path, size and mtime (nanoseconds), and a
fingerprint of the settings that shaped it (mode, EXIF orientation, dihedral variants, the
algorithm set with each algorithm's fast-mode working resolution, and the lookalike version).
Any change to the file or the settings is a miss. `HashCache` stores results in a small SQLite
file (by default in the user cache folder); an index can keep its own store and reuse `CacheKey`.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lookalike.algorithms import HashValue
from lookalike.algorithms.equalized import PHASH_EQ_REGIONS
from lookalike.cache_dir import default_cache_dir
from lookalike.discover import file_key
from lookalike.errors import LookalikeError
from lookalike.hash import Hash, MultiHash
from lookalike.local.features import LOCAL_REVISION, LocalFeatures
from lookalike.pipeline import HashOptions, HashResult
from lookalike.trim import TRIM_REVISION

CACHE_FORMAT = 1
CACHE_FILE_NAME = "hashes.sqlite"


def default_cache_path() -> Path:
    """hashes.sqlite in the cache folder (see `lookalike.cache_dir`)."""
    return default_cache_dir() / CACHE_FILE_NAME


def settings_fingerprint(options: HashOptions) -> str:
    """Everything besides the file that decides the hash values, as one short string."""
    from lookalike import __version__

    algorithms = sorted(
        _revised(spec.key, spec.algorithm.revision)
        + (f"@{spec.working_side}" if options.mode == "fast" else "")
        for spec in options.specs
    )
    return (
        f"v{CACHE_FORMAT}|lookalike {__version__}|{options.mode}|orientation={int(options.orientation)}"
        f"|dihedral={int(options.dihedral)}{f'|trim{TRIM_REVISION}' if options.trim else ''}"
        f"{f'|local{LOCAL_REVISION}' if options.local else ''}{'-query' if options.local == 'query' else ''}"
        f"|{','.join(algorithms)}"
    )


def _revised(key: str, revision: int) -> str:
    return key if revision == 1 else f"{key}#r{revision}"


@dataclass(frozen=True)
class CacheKey:
    """Identifies one file's content (by path, size, mtime) hashed with one set of settings."""

    path: str  # absolute, as text (`discover.file_key`: a name that is not UTF-8 is escaped)
    size: int
    mtime_ns: int
    settings: str

    @classmethod
    def for_file(cls, path: str | os.PathLike[str], options: HashOptions) -> CacheKey | None:
        """The key for `path` now, or None if it cannot be stat'ed (hashing will report why)."""
        try:
            info = os.stat(path)
        except OSError:
            return None
        return cls(file_key(path), info.st_size, info.st_mtime_ns, settings_fingerprint(options))


# ----- results <-> JSON --------------------------------------------------------------------------------


def _encode_hash(value: HashValue) -> dict[str, Any]:
    if isinstance(value, MultiHash):
        return {"segments": [[str(segment), len(segment)] for segment in value.segments]}
    record: dict[str, Any] = {"hex": str(value), "nbits": len(value)}
    if value.quality is not None:
        record["quality"] = value.quality
    if value.variants is not None:
        record["variants"] = [str(variant) for variant in value.variants]
    return record


def _decode_hash(record: dict[str, Any]) -> HashValue:
    if "segments" in record:
        return MultiHash(Hash.from_hex(text, nbits) for text, nbits in record["segments"])
    nbits = int(record["nbits"])
    value = Hash.from_hex(record["hex"], nbits).with_quality(record.get("quality"))
    if "variants" in record:
        value = value.with_variants(Hash.from_hex(text, nbits) for text in record["variants"])
    return value


def encode_result(result: HashResult, options: HashOptions) -> str:
    """JSON for a result, its hashes keyed by canonical algorithm key (not the caller's spelling)."""
    named = zip(options.names, options.specs, strict=True)
    hashes = {spec.key: _encode_hash(result[name]) for name, spec in named}
    return json.dumps(
        {
            "hashes": hashes,
            "width": result.width,
            "height": result.height,
            "format": result.format,
            "sha256": result.sha256,
            "bytes": result.byte_size,
            "content": list(result.content) if result.content else None,
            "regions": [list(box) for box in result.regions],
            # local features as an index stores them (compact), base64; a search's in full
            **_encode_local(result, whole=options.local == "query"),
        },
        separators=(",", ":"),
    )


def _encode_local(result: HashResult, whole: bool) -> dict[str, str]:
    """Local features as base64: compact (what an index stores), or `whole` with the finer set
    (a search's own picture)."""
    encoded = {}
    for field, value in (("local", result.local), ("local_mirrored", result.local_mirrored)):
        if value is None:
            continue
        encoded[field] = _base64((value if whole else value.compact()).to_bytes())
        if whole and value.finer is not None:
            encoded[f"{field}_finer"] = _base64(value.finer.to_bytes())
    return encoded


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _decode_local(record: dict[str, Any], field: str) -> LocalFeatures | None:
    text = record.get(field)
    if text is None:
        return None
    features = LocalFeatures.from_bytes(base64.b64decode(text))
    finer = record.get(f"{field}_finer")
    if finer is None:
        return features
    return replace(features, finer=LocalFeatures.from_bytes(base64.b64decode(finer)))


def decode_result(text: str, path: str, options: HashOptions) -> HashResult | None:
    """The stored result under the caller's names, or None if it lacks a requested hash."""
    record = json.loads(text)
    stored = record["hashes"]
    if any(spec.key not in stored for spec in options.specs):
        return None
    if "regions" not in record and any(spec.key == PHASH_EQ_REGIONS.name for spec in options.specs):
        return None  # stored before regions were kept: hashed again, so a match can say where
    named = zip(options.names, options.specs, strict=True)
    hashes = {name: _decode_hash(stored[spec.key]) for name, spec in named}
    return HashResult(
        hashes,
        path,
        record["width"],
        record["height"],
        record["format"],
        record["sha256"],
        record["bytes"],
        cpu_seconds=None,
        cached=True,
        content=(int(record["content"][0]), int(record["content"][1])) if record.get("content") else None,
        local=_decode_local(record, "local"),
        local_mirrored=_decode_local(record, "local_mirrored"),
        regions=tuple((float(a), float(b), float(c), float(d)) for a, b, c, d in record.get("regions", ())),
    )


# ----- the SQLite store ----------------------------------------------------------------------------


class HashCache:
    """A SQLite file of hash results; writes are batched, call `close()` (or use `with`)."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, batch_size: int = 256) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.batch_size = batch_size
        self.hits = 0
        self.misses = 0
        self._pending: list[tuple[str, str, int, int, str]] = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS results ("
                " path TEXT NOT NULL, settings TEXT NOT NULL, size INTEGER NOT NULL,"
                " mtime_ns INTEGER NOT NULL, result TEXT NOT NULL,"
                " PRIMARY KEY (path, settings)) WITHOUT ROWID"
            )
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise LookalikeError(f"{self.path}: cannot open the hash cache: {exc}") from None

    def get(self, key: CacheKey, options: HashOptions, path: str | None = None) -> HashResult | None:
        """The cached result for `key`, or None; `path` is the name the result carries."""
        try:
            row = self._db.execute(
                "SELECT size, mtime_ns, result FROM results WHERE path = ? AND settings = ?",
                (key.path, key.settings),
            ).fetchone()
        except sqlite3.Error as exc:
            raise LookalikeError(f"{self.path}: cannot read the hash cache: {exc}") from None
        result = None
        if row is not None and row[0] == key.size and row[1] == key.mtime_ns:
            try:
                result = decode_result(row[2], path if path is not None else key.path, options)
            except (ValueError, KeyError, TypeError, LookalikeError):
                result = None  # an unreadable entry is a miss; the fresh result replaces it
        if result is None:
            self.misses += 1
        else:
            self.hits += 1
        return result

    def put(self, key: CacheKey, result: HashResult, options: HashOptions) -> None:
        self._pending.append((key.path, key.settings, key.size, key.mtime_ns, encode_result(result, options)))
        if len(self._pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        try:
            with self._db:
                self._db.executemany(
                    "INSERT OR REPLACE INTO results (path, settings, size, mtime_ns, result)"
                    " VALUES (?, ?, ?, ?, ?)",
                    self._pending,
                )
        except sqlite3.Error as exc:
            raise LookalikeError(f"{self.path}: cannot write the hash cache: {exc}") from None
        self._pending.clear()

    def __len__(self) -> int:
        self.flush()
        return int(self._db.execute("SELECT count(*) FROM results").fetchone()[0])

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._db.close()

    def __enter__(self) -> HashCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class CacheSession:
    """One `hash_files` run's view of a cache: look a path up, store its fresh result later.

    The key is taken when the path is looked up (before the file is read), so a file changed
    while being hashed is stored under its old stamp and simply hashed again next time.
    """

    def __init__(self, cache: HashCache, options: HashOptions) -> None:
        self.cache = cache
        self.options = options
        self._keys: dict[str, list[CacheKey | None]] = {}

    def lookup(self, path: str) -> HashResult | None:
        key = CacheKey.for_file(path, self.options)
        result = self.cache.get(key, self.options, path) if key is not None else None
        if result is None:
            self._keys.setdefault(path, []).append(key)
        return result

    def store(self, path: str, result: HashResult) -> None:
        keys = self._keys.get(path)
        if not keys:
            return
        key = keys.pop(0)
        if not keys:
            del self._keys[path]
        if key is not None:
            self.cache.put(key, result, self.options)

    def forget(self, path: str) -> None:
        """The path failed: drop its pending key."""
        keys = self._keys.get(path)
        if keys:
            keys.pop(0)
            if not keys:
                del self._keys[path]

    def close(self) -> None:
        self.cache.flush()
