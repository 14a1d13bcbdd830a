"""Moving index contents in and out: JSON lines, CSV, Parquet, and plain hash lists.

Plain hash lists are how trust-and-safety teams exchange PDQ hashes: one hex hash per line,
optionally followed by a label (whitespace or comma separated); blank lines and `#` comments are
ignored. JSON lines, CSV and Parquet carry whole catalog rows (key, file facts, every hash, its
quality, metadata), so an index can be rebuilt elsewhere without its images.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from lookalike.errors import InvalidHashError, LookalikeError
from lookalike.hash import Hash
from lookalike.index.base import AddReport, Entry, Index, IndexItem

Format = Literal["jsonl", "csv", "parquet", "hashes"]
CATALOG_FIELDS = ("key", "sha256", "bytes", "width", "height", "mtime", "added_at")
BATCH = 5000


def format_of(path: str | os.PathLike[str], explicit: str | None = None) -> Format:
    """The exchange format, from `explicit` or the file's extension (.jsonl, .csv, .parquet;
    anything else is a plain hash list)."""
    if explicit:
        if explicit not in ("jsonl", "csv", "parquet", "hashes"):
            raise LookalikeError(f"unknown format {explicit!r}; use jsonl, csv, parquet or hashes")
        return explicit  # type: ignore[return-value]
    suffix = Path(path).suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if suffix == ".parquet":
        return "parquet"
    return "hashes"


# ----- rows ------------------------------------------------------------------------------------
def entry_record(entry: Entry) -> dict[str, Any]:
    """A catalog row as plain JSON-able values (hashes as hex)."""
    return {
        "key": entry.key,
        "sha256": entry.sha256,
        "bytes": entry.byte_size,
        "width": entry.width,
        "height": entry.height,
        "mtime": entry.mtime,
        "added_at": entry.added_at,
        "hashes": {name: str(value) for name, value in sorted(entry.hashes.items())},
        "quality": {n: v.quality for n, v in sorted(entry.hashes.items()) if v.quality is not None},
        "flagged": sorted(entry.flagged),
        "metadata": dict(entry.metadata),
    }


def _flat(record: Mapping[str, Any], algorithms: Iterable[str]) -> dict[str, Any]:
    row = {name: record[name] for name in CATALOG_FIELDS}
    for name in algorithms:
        row[name] = record["hashes"].get(name)
        row[f"{name}_quality"] = record["quality"].get(name)
    row["flagged"] = ";".join(record["flagged"])
    row["metadata"] = json.dumps(record["metadata"]) if record["metadata"] else ""
    return row


def item_from_record(record: Mapping[str, Any], nbits: Mapping[str, int]) -> IndexItem:
    """An IndexItem from a JSON-lines record or a flat CSV/Parquet row."""
    if "hashes" in record and isinstance(record["hashes"], Mapping):
        hexes = dict(record["hashes"])
        qualities = dict(record.get("quality") or {})
    else:
        reserved = {*CATALOG_FIELDS, "flagged", "metadata"}
        hexes = {k: v for k, v in record.items() if k not in reserved and not k.endswith("_quality") and v}
        qualities = {k: record.get(f"{k}_quality") for k in hexes}
    hashes = {}
    for name, text in hexes.items():
        value = Hash.from_hex(str(text), nbits.get(name))
        quality = qualities.get(name)
        hashes[name] = value.with_quality(None if quality in (None, "") else int(float(quality)))
    metadata = record.get("metadata") or None
    if isinstance(metadata, str):
        metadata = json.loads(metadata)

    def number(name: str, kind: type) -> Any:
        value = record.get(name)
        return None if value in (None, "") else kind(value)

    if not record.get("key"):
        raise LookalikeError(f"a record has no key: {dict(record)!r}"[:200])
    return IndexItem(
        key=str(record["key"]),
        hashes=hashes,
        sha256=record.get("sha256") or None,
        byte_size=number("bytes", int),
        width=number("width", int),
        height=number("height", int),
        mtime=number("mtime", float),
        metadata=metadata,
    )


# ----- export ----------------------------------------------------------------------------------
def export_index(
    index: Index, target: str | os.PathLike[str], fmt: Format | None = None, algorithm: str | None = None
) -> int:
    """Write every entry; returns how many rows were written. Plain hash lists need `algorithm`."""
    fmt = fmt or format_of(target)
    entries = index.entries()
    if fmt == "hashes":
        if not algorithm:
            raise LookalikeError("a plain hash list holds one algorithm: say which (e.g. --algorithm pdq)")
        count = 0
        with open(target, "w", encoding="utf-8") as handle:
            for entry in entries:
                value = entry.hashes.get(algorithm)
                if value is not None:
                    handle.write(f"{value}\n")
                    count += 1
        return count
    records = (entry_record(entry) for entry in entries)
    if fmt == "jsonl":
        count = 0
        with open(target, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
        return count
    algorithms = sorted(index.algorithm_bits())
    rows = [_flat(record, algorithms) for record in records]
    if fmt == "csv":
        with open(target, "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=_columns(algorithms))
            writer.writeheader()
            writer.writerows(rows)
        return len(rows)
    pq, pa = _arrow()
    pq.write_table(pa.Table.from_pylist(rows, schema=None), os.fspath(target))
    return len(rows)


def _columns(algorithms: Iterable[str]) -> list[str]:
    columns = list(CATALOG_FIELDS)
    for name in algorithms:
        columns += [name, f"{name}_quality"]
    return [*columns, "flagged", "metadata"]


def _arrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise LookalikeError("Parquet needs pyarrow: pip install 'lookalike[parquet]'") from None
    return pq, pa


# ----- import ----------------------------------------------------------------------------------
def read_records(source: str | os.PathLike[str], fmt: Format) -> Iterator[dict[str, Any]]:
    if fmt == "jsonl":
        with open(source, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise LookalikeError(f"{source}:{number}: not JSON ({exc.msg})") from None
    elif fmt == "csv":
        with open(source, encoding="utf-8", newline="") as handle:
            yield from csv.DictReader(handle)
    elif fmt == "parquet":
        pq, _ = _arrow()
        yield from pq.read_table(os.fspath(source)).to_pylist()
    else:
        raise LookalikeError(f"{fmt} is not a record format")


_HEX = re.compile(r"[0-9a-fA-F]+")


def parse_hash_list(
    lines: Iterable[str], *, algorithm: str | None, key_prefix: str, source: str = "<list>"
) -> Iterator[IndexItem]:
    """Items from a plain hash list: `hex [label]` per line; the key is the label, else
    `key_prefix:hex`. Without `algorithm`, 64-digit hashes are taken as PDQ."""
    from lookalike.algorithms import parse_spec

    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.replace(",", " ").split(None, 1)
        digits = parts[0]
        if not _HEX.fullmatch(digits):
            raise LookalikeError(
                f"{source}:{number}: {digits[:40]!r} is not a hex hash; a hash list has one hex "
                "hash per line (0-9, a-f), optionally followed by a label"
            )
        name = algorithm or ("pdq" if len(digits) == 64 else None)
        if name is None:
            raise LookalikeError(
                f"{source}:{number}: a {len(digits) * 4}-bit hash could be several algorithms; "
                "say which (e.g. --algorithm phash)"
            )
        spec = parse_spec(name)
        try:
            value = Hash.from_hex(digits, spec.nbits)
        except InvalidHashError as exc:
            raise LookalikeError(f"{source}:{number}: {exc}") from None
        label = parts[1].strip() if len(parts) > 1 else f"{key_prefix}:{digits.lower()}"
        yield IndexItem(key=label, hashes={spec.key: value})


def import_into(
    index: Index,
    source: str | os.PathLike[str],
    fmt: Format | None = None,
    *,
    algorithm: str | None = None,
    key_prefix: str | None = None,
) -> AddReport:
    """Add a file's rows to the index in batches of a few thousand; returns the summed report."""
    fmt = fmt or format_of(source)
    total = AddReport()
    with contextlib.ExitStack() as stack:
        if fmt == "hashes":
            lines = stack.enter_context(open(source, encoding="utf-8"))
            prefix = key_prefix or Path(source).stem
            items = parse_hash_list(lines, algorithm=algorithm, key_prefix=prefix, source=os.fspath(source))
        else:
            nbits = index.algorithm_bits()
            items = (item_from_record(record, nbits) for record in read_records(source, fmt))
        batch: list[IndexItem] = []
        for item in items:
            batch.append(item)
            if len(batch) >= BATCH:
                total = total.merge(index.add(batch))
                batch = []
        if batch:
            total = total.merge(index.add(batch))
    return total
