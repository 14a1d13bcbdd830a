"""Write hash results to a file: JSON lines, CSV, or Parquet (with the `lookalike[parquet]` extra)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import IO, Any, Protocol

from lookalike.errors import LookalikeError
from lookalike.pipeline import HashResult


class HashWriter(Protocol):
    def write(self, path: str, result: HashResult) -> None: ...
    def close(self) -> None: ...


def _record(path: str, result: HashResult) -> dict[str, Any]:
    record: dict[str, Any] = {
        "path": path,
        "width": result.width,
        "height": result.height,
        "bytes": result.byte_size,
        "sha256": result.sha256,
    }
    for name, value in result.items():
        record[name] = str(value)
        quality = getattr(value, "quality", None)
        if quality is not None:
            record[f"{name}_quality"] = quality
    return record


class JsonLinesWriter:
    def __init__(self, target: Path) -> None:
        self._file: IO[str] = open(target, "w", encoding="utf-8")  # noqa: SIM115 - open until close()

    def write(self, path: str, result: HashResult) -> None:
        self._file.write(json.dumps(_record(path, result), ensure_ascii=False) + "\n")

    def close(self) -> None:
        self._file.close()


class CsvWriter:
    def __init__(self, target: Path) -> None:
        self._file: IO[str] = open(target, "w", encoding="utf-8", newline="")  # noqa: SIM115
        self._writer: csv.DictWriter[str] | None = None

    def write(self, path: str, result: HashResult) -> None:
        record = _record(path, result)
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=list(record))
            self._writer.writeheader()
        self._writer.writerow(record)

    def close(self) -> None:
        self._file.close()


class ParquetWriter:
    """Buffers rows and writes one Parquet file on close (hash results are small)."""

    def __init__(self, target: Path) -> None:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise LookalikeError("writing Parquet needs pyarrow: pip install 'lookalike[parquet]'") from None
        self._target = target
        self._rows: list[dict[str, Any]] = []

    def write(self, path: str, result: HashResult) -> None:
        self._rows.append(_record(path, result))

    def close(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(self._rows), self._target)


def open_hash_writer(target: str | os.PathLike[str]) -> HashWriter:
    """A writer chosen by the file's extension."""
    path = Path(target)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return JsonLinesWriter(path)
    if suffix == ".csv":
        return CsvWriter(path)
    if suffix == ".parquet":
        return ParquetWriter(path)
    raise LookalikeError(f"{path}: unknown output format {suffix!r}; use .jsonl, .csv or .parquet")
