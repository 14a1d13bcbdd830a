"""In-memory exact Hamming search: vectorised scans and multi-index hashing over uint64 words."""

from lookalike.search.bits import hamming_to_one, popcount, words_of
from lookalike.search.brute import brute_knn, brute_range
from lookalike.search.mih import MultiIndexTable, chunk_layout, chunk_radii
from lookalike.search.store import HashStore, Hits

__all__ = [
    "HashStore",
    "Hits",
    "MultiIndexTable",
    "brute_knn",
    "brute_range",
    "chunk_layout",
    "chunk_radii",
    "hamming_to_one",
    "popcount",
    "words_of",
]
