"""lookalike: find look-alike images with perceptual hashes.

>>> import lookalike
>>> hashes = lookalike.hash_file("cat.jpg", ["ahash", "colorhash"])
>>> hashes["ahash"] - other["ahash"]   # Hamming distance
"""

from lookalike.algorithms import algorithm_names
from lookalike.hash import Hash, MultiHash
from lookalike.index import Index, open_index
from lookalike.matcher import Matcher
from lookalike.pipeline import DEFAULT_HASHES, HashResult, hash_file, hash_files, hash_image

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_HASHES",
    "Hash",
    "HashResult",
    "Index",
    "Matcher",
    "MultiHash",
    "__version__",
    "algorithm_names",
    "hash_file",
    "hash_files",
    "hash_image",
    "open_index",
]
