"""Banks: named hash lists (known-bad images, protected portfolios) with a matching rule each.

A bank is an embedded SQLite index of its own (hash lists are exchanged without images) plus a
row in the server's registry: algorithm, maximum distance, minimum quality, dihedral matching.
Bank names are restricted to letters, digits, `_`, `.` and `-`; a bank's file is named by the hex
of its name (`banks/<hex>.db`), so no name is a prefix of another's files, names differing only
in case get different files on any file system, and deleting a bank removes its own files only.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from lookalike.algorithms import parse_spec
from lookalike.hash import Hash
from lookalike.index.base import AddReport, IndexItem, Match
from lookalike.index.sqlite import SQLiteIndex
from lookalike.quality import min_quality
from lookalike.server.errors import ApiError

BANK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Bank:
    """A bank's definition; `rule` is how a match against it is decided."""

    name: str
    algorithm: str = "pdq"
    max_distance: int = 31
    min_quality: int | None = 50
    dihedral: bool = True
    description: str = ""
    created_at: float = 0.0

    @property
    def rule(self) -> str:
        text = f"{self.algorithm} <= {self.max_distance}"
        return text if self.min_quality is None else f"{text} with quality >= {self.min_quality}"

    def as_json(self) -> dict[str, object]:
        return {**asdict(self), "rule": self.rule}


@dataclass(frozen=True)
class BankCheck:
    """One bank's verdict on an upload."""

    bank: Bank
    matches: list[Match]
    skipped: str | None = None  # why the bank was not consulted (e.g. the upload's quality)


def check_name(name: str) -> str:
    if not BANK_NAME.fullmatch(name) or ".." in name:
        raise ApiError(422, "bad_bank_name", "bank names are 1-64 letters, digits, '_', '.' or '-'")
    return name


class BankStore:
    """The registry of banks and their hash indexes, under one folder."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        (self.folder / "banks").mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.folder / "registry.db", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS banks (name TEXT PRIMARY KEY, algorithm TEXT NOT NULL, "
            "max_distance INTEGER NOT NULL, min_quality INTEGER, dihedral INTEGER NOT NULL, "
            "description TEXT NOT NULL, created_at REAL NOT NULL)"
        )
        self._indexes: dict[str, SQLiteIndex] = {}
        for bank in self.all():
            _rename_legacy_files(self.folder / "banks", bank.name)

    # ----- registry --------------------------------------------------------------------------------
    def all(self) -> list[Bank]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM banks ORDER BY name").fetchall()
        return [_bank(row) for row in rows]

    def get(self, name: str) -> Bank:
        with self._lock:
            row = self._db.execute("SELECT * FROM banks WHERE name = ?", (check_name(name),)).fetchone()
        if row is None:
            raise ApiError(404, "no_such_bank", f"no bank named {name!r}")
        return _bank(row)

    def create(
        self,
        name: str,
        algorithm: str = "pdq",
        max_distance: int | None = None,
        min_quality_: int | None = -1,
        dihedral: bool = True,
        description: str = "",
    ) -> Bank:
        spec = parse_spec(algorithm)
        if spec.algorithm.multi:
            raise ApiError(422, "bad_algorithm", f"{spec.key} cannot be used for a bank")
        distance = spec.max_distance if max_distance is None else max_distance
        if not 0 <= distance <= spec.nbits:
            raise ApiError(422, "bad_threshold", f"max_distance must be within 0..{spec.nbits}")
        quality = min_quality(spec.algorithm.name) if min_quality_ == -1 else min_quality_
        bank = Bank(check_name(name), spec.key, distance, quality, dihedral, description[:500], time.time())
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO banks VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (bank.name, bank.algorithm, bank.max_distance, bank.min_quality, int(bank.dihedral),
                     bank.description, bank.created_at),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                raise ApiError(409, "bank_exists", f"a bank named {name!r} exists") from None
        return bank

    def delete(self, name: str) -> None:
        self.get(name)
        with self._lock:
            index = self._indexes.pop(name, None)
            if index is not None:
                index.close()
            self._db.execute("DELETE FROM banks WHERE name = ?", (name,))
            for path in bank_files(self.folder / "banks", name):
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)

    # ----- hashes ----------------------------------------------------------------------------------
    def _index(self, bank: Bank) -> SQLiteIndex:
        with self._lock:
            if bank.name not in self._indexes:
                self._indexes[bank.name] = SQLiteIndex.open(str(bank_path(self.folder / "banks", bank.name)))
            return self._indexes[bank.name]

    def size(self, name: str) -> int:
        bank = self.get(name)
        with self._lock:
            return len(self._index(bank))

    def add(self, name: str, items: Iterable[IndexItem]) -> AddReport:
        bank = self.get(name)
        checked = []
        for item in items:
            if set(item.hashes) != {bank.algorithm}:
                raise ApiError(422, "bad_hash", f"bank {name!r} holds {bank.algorithm} hashes only")
            checked.append(item)
        with self._lock:
            return self._index(bank).add(checked)

    def check(self, hashes: Mapping[str, Hash], banks: Iterable[Bank] | None = None) -> list[BankCheck]:
        """Every bank's matches for an upload's hashes, by each bank's own rule: the matcher of
        `Bank.rule` over the bank's index (`Index.match_many`, exact range searches: a hash list
        is never searched approximately), with the upload's variants when the bank is dihedral."""
        results = []
        for bank in self.all() if banks is None else banks:
            query = hashes.get(bank.algorithm)
            if query is None:
                results.append(BankCheck(bank, [], f"the upload has no {bank.algorithm} hash"))
                continue
            if (
                bank.min_quality is not None
                and query.quality is not None
                and query.quality < bank.min_quality
            ):
                results.append(BankCheck(bank, [], f"upload quality {query.quality} < {bank.min_quality}"))
                continue
            dihedral = bank.dihedral and bool(query.variants)
            with self._lock:
                index = self._index(bank)
                if not index.algorithm_bits():  # an empty bank matches nothing
                    results.append(BankCheck(bank, []))
                    continue
                verdicts = index.match_many(
                    [{bank.algorithm: query}], bank.rule, dihedral=dihedral, exact=True
                )
            matches = [Match(v.distances[bank.algorithm], v.key, variant=v.variant) for v in verdicts[0]]
            results.append(BankCheck(bank, matches))
        return results

    def algorithms(self) -> set[str]:
        return {bank.algorithm for bank in self.all()}

    def close(self) -> None:
        with self._lock:
            for index in self._indexes.values():
                index.close()
            self._indexes.clear()
            self._db.close()


# What SQLite keeps beside an index file, and the index's search snapshots (SQLiteIndex).
_COMPANIONS = ("-wal", "-shm", "-journal", ".search")


def bank_path(folder: Path, name: str) -> Path:
    """A bank's index file: the hex of its name, so that names never collide as file names."""
    return folder / f"{name.encode('utf-8').hex()}.db"


def bank_files(folder: Path, name: str) -> list[Path]:
    """Every file and folder that belongs to the bank `name` (and to no other)."""
    main = bank_path(folder, name)
    return [main, *(main.with_name(main.name + suffix) for suffix in _COMPANIONS)]


def _rename_legacy_files(folder: Path, name: str) -> None:
    """Banks made before hex file names kept `<name>.db`: move them to their hex name once."""
    legacy = folder / f"{name}.db"
    if not legacy.exists() or bank_path(folder, name).exists():
        return
    for old, new in zip(
        [legacy, *(legacy.with_name(legacy.name + s) for s in _COMPANIONS)],
        bank_files(folder, name),
        strict=True,
    ):
        with contextlib.suppress(FileNotFoundError):
            old.rename(new)


def _bank(row: tuple[object, ...]) -> Bank:
    name, algorithm, max_distance, quality, dihedral, description, created = row
    return Bank(
        str(name), str(algorithm), int(max_distance),  # type: ignore[call-overload]
        None if quality is None else int(quality),  # type: ignore[call-overload]
        bool(dihedral), str(description), float(created),  # type: ignore[arg-type]
    )  # fmt: skip
