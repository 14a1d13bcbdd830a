"""Persistent indexes of image hashes with exact Hamming search (see `base` for the API)."""

from lookalike.index.base import (
    DEFAULT_INDEX_URL,
    AddReport,
    Entry,
    FileState,
    Index,
    IndexItem,
    Match,
    open_index,
)

__all__ = [
    "DEFAULT_INDEX_URL",
    "AddReport",
    "Entry",
    "FileState",
    "Index",
    "IndexItem",
    "Match",
    "open_index",
]
