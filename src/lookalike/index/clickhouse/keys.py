"""The keys of a bulk load as one column, built and checked without a Python loop per key.

`add_words` takes millions of keys at once. Turning a list of str into an Arrow string array
the ordinary way costs about as much as the whole ClickHouse insert, so an ASCII list is joined
into one buffer and its offsets come from the lengths; NumPy and Arrow string arrays convert in C.
Uniqueness is proved by order where it can be (strictly increasing keys, the usual bulk load),
and only unsorted batches pay for a dict. Without pyarrow (a driver-only install) it is a list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from lookalike.errors import IndexStoreError

_INT32_OFFSETS = 2**31 - 1


class KeyColumn:
    """Non-empty string keys, in order: an Arrow string array, or a list without pyarrow."""

    def __init__(self, values: Any) -> None:
        self.values = values  # pa.Array of strings, or list[str]

    @classmethod
    def of(cls, keys: Any, url: str) -> KeyColumn:
        """Keys from a list, tuple, NumPy string array or Arrow string array; every key must be a
        non-empty str (else `IndexStoreError` naming the index and the key)."""
        try:
            import pyarrow as pa
        except ImportError:
            listed = [str(k) if isinstance(k, np.str_) else k for k in keys]
            _check_python(listed, url)
            return cls(listed)
        if isinstance(keys, pa.ChunkedArray):
            keys = keys.combine_chunks()
        if isinstance(keys, pa.Array):
            column = keys
        elif isinstance(keys, np.ndarray) and keys.dtype.kind in "UT":
            column = pa.array(keys)
        else:
            column = _arrow_from_list(keys if isinstance(keys, list) else list(keys), url)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            raise IndexStoreError(f"{url}: index keys must be strings, got an array of {column.type}")
        if column.null_count:
            raise IndexStoreError(f"{url}: an index key must be a non-empty string, got None")
        if len(column) and _min_length(column) == 0:
            raise IndexStoreError(f"{url}: an index key must be a non-empty string, got ''")
        return cls(column)

    def __len__(self) -> int:
        return len(self.values)

    def to_list(self) -> list[str]:
        return self.values if isinstance(self.values, list) else self.values.to_pylist()

    def slice(self, start: int, stop: int) -> KeyColumn:
        return KeyColumn(self.values[start:stop])

    def take(self, positions: npt.NDArray[np.int64]) -> KeyColumn:
        if isinstance(self.values, list):
            return KeyColumn([self.values[i] for i in positions.tolist()])
        return KeyColumn(self.values.take(positions))

    def filter(self, keep: npt.NDArray[np.bool_]) -> KeyColumn:
        return self.take(np.flatnonzero(keep))

    def strictly_increasing(self) -> bool:
        """Sorted without repeats: then the keys are unique and the ends are min and max."""
        if len(self) < 2:
            return True
        if isinstance(self.values, list):
            values = self.values
            return all(values[i] < values[i + 1] for i in range(len(values) - 1))
        import pyarrow.compute as pc

        return bool(pc.all(pc.greater(self.values[1:], self.values[:-1])).as_py())

    def last_occurrences(self) -> npt.NDArray[np.int64]:
        """Positions of each distinct key's last occurrence (the last write of a key wins),
        in order of first appearance."""
        last = {key: position for position, key in enumerate(self.to_list())}
        return np.fromiter(last.values(), dtype=np.int64, count=len(last))

    def bounds(self, ordered: bool) -> tuple[str, str]:
        """(smallest key, largest key) of a non-empty column."""
        if ordered:
            return str(self.values[0]), str(self.values[-1])
        if isinstance(self.values, list):
            return min(self.values), max(self.values)
        import pyarrow.compute as pc

        low, high = pc.min_max(self.values).values()
        return str(low.as_py()), str(high.as_py())

    def positions_in(self, found: Any) -> npt.NDArray[np.int64]:
        """Per key, its position in `found` (distinct keys: a list or an Arrow string array),
        -1 where absent: one hash join in Arrow, not a dict of Python strings."""
        if isinstance(self.values, list):
            listed = found.to_pylist() if hasattr(found, "to_pylist") else found
            where = {key: position for position, key in enumerate(listed)}
            return np.fromiter((where.get(key, -1) for key in self.values), np.int64, count=len(self.values))
        import pyarrow as pa
        import pyarrow.compute as pc

        value_set = found if isinstance(found, pa.Array) else pa.array(list(found), type=pa.string())
        positions = pc.index_in(self.values, value_set=value_set.cast(self.values.type))
        return np.asarray(positions.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)


def _check_python(keys: Sequence[Any], url: str) -> None:
    for key in keys:
        if not isinstance(key, str) or not key:
            raise IndexStoreError(f"{url}: an index key must be a non-empty string, got {key!r}")


def _arrow_from_list(keys: list[Any], url: str) -> Any:
    """A list of str as an Arrow string array: one joined buffer plus offsets from the lengths
    (ASCII keys, the usual case; byte length = character length), else pyarrow's converter."""
    import pyarrow as pa

    try:
        text = "".join(keys)
    except TypeError:
        _check_python(keys, url)  # raises, naming the key that is not a str
        raise
    if not text.isascii() or len(text) > _INT32_OFFSETS:
        try:
            return pa.array(keys, type=pa.large_string() if len(text) > _INT32_OFFSETS else pa.string())
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            _check_python(keys, url)
            raise
    lengths = np.fromiter(map(len, keys), dtype=np.int32, count=len(keys))
    offsets = np.zeros(len(keys) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    data = text.encode("ascii")
    return pa.StringArray.from_buffers(len(keys), pa.py_buffer(offsets), pa.py_buffer(data))


def _min_length(column: Any) -> int:
    import pyarrow.compute as pc

    return int(pc.min(pc.binary_length(column)).as_py())
