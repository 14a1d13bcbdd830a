"""Every hash the accuracy benchmark measures, lookalike's and its peers', as arrays over images.

A hasher group computes several outputs from one opened image (ImageHash's five, pdqhash's PDQ,
thorn's perception hashers); lookalike's own hashes come from `lookalike.hash_files`. Each output
is a `HashTable`: bit hashes as rows of uint64 words (with dihedral variants and quality where the
algorithm has them) or float vectors. Tables are cached per output on disk, so adding a hash to a
run only computes that hash, and adding images (new edits) only hashes those images.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lookalike.algorithms import parse_spec
from lookalike.errors import LookalikeError
from lookalike.hash import Hash
from lookalike.pipeline import hash_files
from lookalike.trim import TRIM_REVISION

Record = dict[str, Any]  # one image's output: "words", optional "variants", "quality", or "vector"


@dataclass
class HashTable:
    """One hash over all benchmark images (row i = image i)."""

    name: str
    words: npt.NDArray[np.uint64] | None = None  # (n, words)
    variants: npt.NDArray[np.uint64] | None = None  # (n, 8, words): dihedral variants
    quality: npt.NDArray[np.float64] | None = None  # (n,), nan where unknown
    vectors: npt.NDArray[np.float64] | None = None  # (n, d) for float-valued hashes

    def subset(self, rows: npt.NDArray[np.intp]) -> HashTable:
        def take(array: Any) -> Any:
            return None if array is None else array[rows]

        return HashTable(
            self.name, take(self.words), take(self.variants), take(self.quality), take(self.vectors)
        )


def bits_to_words(bits: npt.ArrayLike) -> npt.NDArray[np.uint64]:
    """A flat boolean vector packed into big-endian uint64 words, right-aligned like `Hash.words()`."""
    flat = np.asarray(bits, dtype=bool).ravel()
    value = Hash.from_bits(flat) if flat.size else Hash(0, 1)
    return value.words()


def _hash_record(value: Hash) -> Record:
    record: Record = {"words": value.words()}
    if value.variants:
        record["variants"] = np.stack([v.words() for v in value.variants])
    if value.quality is not None:
        record["quality"] = float(value.quality)
    return record


# ----- peers ------------------------------------------------------------------------------------


def _open_rgb(path: str) -> Any:
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")


def imagehash_outputs(path: str) -> dict[str, Record]:
    """ImageHash 4.3.2's five hashes, each as ImageHash computes it from the opened file."""
    import imagehash
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        results = {
            "imagehash:ahash": imagehash.average_hash(image),
            "imagehash:dhash": imagehash.dhash(image),
            "imagehash:phash": imagehash.phash(image),
            "imagehash:whash": imagehash.whash(image),
            "imagehash:colorhash": imagehash.colorhash(image),
        }
    return {name: {"words": bits_to_words(value.hash)} for name, value in results.items()}


def pdqhash_outputs(path: str) -> dict[str, Record]:
    """Meta's PDQ reference (pdqhash), with its quality and its 8 dihedral variants."""
    import pdqhash

    pixels = np.ascontiguousarray(np.asarray(_open_rgb(path)))
    variants, quality = pdqhash.compute_dihedral(pixels)
    words = np.stack([bits_to_words(v) for v in variants])
    return {"pdqhash:pdq": {"words": words[0], "variants": words, "quality": float(quality)}}


_PERCEPTION_HASHERS: dict[str, tuple[str, dict[str, int]]] = {
    "perception:phash": ("PHash", {}),
    "perception:phash16": ("PHash", {"hash_size": 16}),
    "perception:dhash": ("DHash", {}),
    "perception:ahash": ("AverageHash", {}),
    "perception:whash": ("WaveletHash", {}),
    "perception:marrhildreth": ("MarrHildreth", {}),
    "perception:blockmean": ("BlockMean", {}),
    "perception:colormoment": ("ColorMoment", {}),
}


def perception_outputs(path: str) -> dict[str, Record]:
    """thorn's perception hashers (bit hashes as words, float ones as vectors)."""
    import perception.hashers as hashers

    pixels = np.ascontiguousarray(np.asarray(_open_rgb(path)))
    outputs: dict[str, Record] = {}
    for name, (class_name, kwargs) in _PERCEPTION_HASHERS.items():
        hasher = getattr(hashers, class_name)(**kwargs)
        vector = np.asarray(hasher.compute(pixels, hash_format="vector"))
        if hasher.distance_metric == "hamming":
            outputs[name] = {"words": bits_to_words(vector.astype(bool))}
        else:
            outputs[name] = {"vector": vector.astype(np.float64)}
    return outputs


@dataclass(frozen=True)
class PeerGroup:
    """Outputs computed together from one opened image, and the package they need."""

    name: str
    module: str
    outputs: tuple[str, ...]
    compute: Callable[[str], dict[str, Record]]

    @property
    def available(self) -> bool:
        return importlib.util.find_spec(self.module) is not None


PEER_GROUPS: tuple[PeerGroup, ...] = (
    PeerGroup(
        "imagehash",
        "imagehash",
        ("imagehash:ahash", "imagehash:dhash", "imagehash:phash", "imagehash:whash", "imagehash:colorhash"),
        imagehash_outputs,
    ),
    PeerGroup("pdqhash", "pdqhash", ("pdqhash:pdq",), pdqhash_outputs),
    PeerGroup("perception", "perception", tuple(_PERCEPTION_HASHERS), perception_outputs),
)


def _run_group(job: tuple[Callable[[str], dict[str, Record]], str]) -> dict[str, Record] | str:
    compute, path = job
    try:
        return compute(path)
    except Exception as exc:  # a peer failing on one image is reported, not fatal
        return f"{type(exc).__name__}: {exc}"


def compute_peer_group(
    group: PeerGroup, paths: Sequence[str], workers: int, on_done: Callable[[], None] | None = None
) -> Iterator[tuple[str, dict[str, Record] | str]]:
    """(path, outputs or error text) for each path, computed over `workers` processes."""
    jobs = [(group.compute, path) for path in paths]
    if workers <= 1:
        for job in jobs:
            yield job[1], _run_group(job)
            if on_done:
                on_done()
        return
    with ProcessPoolExecutor(workers) as pool:
        for job, result in zip(jobs, pool.map(_run_group, jobs, chunksize=8), strict=True):
            yield job[1], result
            if on_done:
                on_done()


# ----- lookalike --------------------------------------------------------------------------------


def lookalike_output_name(spec: str, trim: bool = False) -> str:
    return f"lookalike{'-trim' if trim else ''}:{spec}"


def compute_lookalike(
    paths: Sequence[str],
    specs: Sequence[str],
    *,
    trim: bool,
    workers: int,
    on_done: Callable[[], None] | None = None,
) -> Iterator[tuple[str, dict[str, Record] | str]]:
    """lookalike's hashes (fast mode, dihedral variants where the algorithm has them)."""
    for path, result in hash_files(paths, list(specs), workers=workers, dihedral=True, trim=trim):
        if on_done:
            on_done()
        if not isinstance(result, dict):
            yield path, str(result)
            continue
        outputs = {}
        for spec in specs:
            value = result[spec]
            if isinstance(value, Hash):
                outputs[lookalike_output_name(spec, trim)] = _hash_record(value)
        yield path, outputs


# ----- the cache --------------------------------------------------------------------------------


def _cache_file(folder: Path, name: str) -> Path:
    """The table's file; a lookalike table's name carries its algorithm's revision, so a table
    made before the algorithm changed is never read as current."""
    safe = name.replace(":", "__").replace("/", "_").replace("+", "-")
    return folder / f"{safe}{_revision_suffix(name)}.npz"


def _revision_suffix(name: str) -> str:
    source, _, spec = name.partition(":")
    if not source.startswith("lookalike"):
        return ""
    try:
        revision = parse_spec(spec).algorithm.revision
    except LookalikeError:
        return ""
    suffix = "" if revision == 1 else f".r{revision}"
    if source == "lookalike-trim":  # hashed with trim=True: the trimming rule decides them too
        suffix += f".t{TRIM_REVISION}"
    return suffix


TABLE_FIELDS = ("words", "variants", "quality", "vectors")


def load_stored(folder: Path, name: str) -> tuple[list[str], HashTable] | None:
    """Everything the cache holds for `name`: its paths and their rows; None if nothing."""
    file = _cache_file(folder, name)
    if not file.exists():
        return None
    with np.load(file, allow_pickle=False) as data:
        table = HashTable(name)
        for field in TABLE_FIELDS:
            if field in data.files:
                setattr(table, field, data[field])
        return [str(p) for p in data["paths"]], table


def rows_for(stored: tuple[Sequence[str], HashTable], paths: Sequence[str]) -> HashTable | None:
    """The rows of a stored table for `paths`, in that order; None if any path is missing."""
    position = {p: i for i, p in enumerate(stored[0])}
    if any(p not in position for p in paths):
        return None
    return stored[1].subset(np.array([position[p] for p in paths], dtype=np.intp))


def load_table(folder: Path, name: str, paths: Sequence[str]) -> HashTable | None:
    """The cached table for these paths, or None if any path is missing from the cache."""
    stored = load_stored(folder, name)
    return None if stored is None else rows_for(stored, paths)


def merge_tables(
    older: tuple[Sequence[str], HashTable], newer: tuple[Sequence[str], HashTable]
) -> tuple[list[str], HashTable]:
    """One table with the rows of both (a path in both keeps the newer row)."""
    fresh = set(newer[0])
    keep = np.array([i for i, p in enumerate(older[0]) if p not in fresh], dtype=np.intp)
    kept = older[1].subset(keep)
    merged = HashTable(newer[1].name)
    for field in TABLE_FIELDS:
        new_rows = getattr(newer[1], field)
        old_rows = getattr(kept, field)
        if new_rows is not None and old_rows is not None:
            setattr(merged, field, np.concatenate([old_rows, new_rows]))
        elif new_rows is not None and not len(keep):
            setattr(merged, field, new_rows)
        elif new_rows is not None or old_rows is not None:
            raise ValueError(f"{newer[1].name}: cached and new rows differ in their {field}")
    return [older[0][i] for i in keep.tolist()] + list(newer[0]), merged


def save_table(folder: Path, table: HashTable, paths: Sequence[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {"paths": np.array(list(paths))}
    for field in TABLE_FIELDS:
        value = getattr(table, field)
        if value is not None:
            arrays[field] = value
    temporary = _cache_file(folder, table.name).with_suffix(".part.npz")
    np.savez(temporary, **arrays)
    temporary.replace(_cache_file(folder, table.name))


def tables_from_records(
    names: Sequence[str], paths: Sequence[str], records: dict[str, dict[str, Record]]
) -> dict[str, HashTable]:
    """Stack per-image records into tables; images with no record for a name get a zero hash
    (a failure is reported by the caller; it cannot make a hash look better)."""
    tables: dict[str, HashTable] = {}
    for name in names:
        rows = [records.get(path, {}).get(name) for path in paths]
        template = next((r for r in rows if r is not None), None)
        if template is None:
            continue
        table = HashTable(name)
        if "vector" in template:
            table.vectors = np.stack([r["vector"] if r else np.zeros_like(template["vector"]) for r in rows])
        else:
            table.words = np.stack([r["words"] if r else np.zeros_like(template["words"]) for r in rows])
            if any(r is not None and "variants" in r for r in rows):
                table.variants = _padded_variants(rows, table.words)
            if "quality" in template:
                table.quality = np.array([r.get("quality", np.nan) if r else np.nan for r in rows])
        tables[name] = table
    return tables


def _padded_variants(rows: Sequence[Record | None], words: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """(n, variants, words): each image's variants, its own hash where it has none, and shorter
    lists repeated from their first (`phash_eq_regions` carries one variant per picture found)."""
    width = max(len(r["variants"]) for r in rows if r is not None and "variants" in r)
    stacked = np.repeat(words[:, None, :], width, axis=1)
    for row, record in enumerate(rows):
        if record is not None and "variants" in record:
            found = record["variants"]
            stacked[row, : len(found)] = found
            stacked[row, len(found) :] = found[0]
    return stacked
