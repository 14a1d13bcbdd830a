"""Quality gates: which hashes are too unreliable to match on ("flagged").

A hash is flagged when
- its quality is below its algorithm's `min_quality`: PDQ below 50 (Meta's advice: too little
  gradient for the bits to mean anything), a 64-bit hash whose thumbnail is near-flat (contrast
  quality below 50, see `lookalike.algorithms.contrast`);
- or it is degenerate: every bit 0 or every bit 1 (a flat image, an image too small to hash, a
  thumbnail whose neighbours all tie), which would match every other degenerate hash;
- or, for a crop-resistant hash, it has no segment, or only degenerate ones.

Indexes store the flag with each hash and skip flagged hashes in search unless asked
(`include_flagged=True`), so blank frames and flat fills do not match each other.
"""

from __future__ import annotations

from lookalike.algorithms import Algorithm, HashSpec, HashValue, get_algorithm
from lookalike.errors import UnknownAlgorithmError
from lookalike.hash import Hash, MultiHash

DEFAULT_MIN_QUALITY = 50  # for hashes stored under a name that no registered algorithm has

AlgorithmRef = str | HashSpec | Algorithm | None


def min_quality(algorithm: AlgorithmRef) -> int:
    """The quality below which `algorithm`'s hashes are flagged (a name like "phash:16" will do)."""
    if isinstance(algorithm, Algorithm):
        return algorithm.min_quality
    if isinstance(algorithm, HashSpec):
        return algorithm.algorithm.min_quality
    if algorithm is None:
        return DEFAULT_MIN_QUALITY
    try:
        return get_algorithm(algorithm.partition(":")[0]).min_quality
    except UnknownAlgorithmError:
        return DEFAULT_MIN_QUALITY


def flag_reason(value: HashValue, algorithm: AlgorithmRef = None) -> str | None:
    """Why `value` (a hash made by `algorithm`, e.g. "pdq" or "phash:16") is unreliable, or None.

    Without an algorithm (or with a name no algorithm is registered under) the minimum quality is
    `DEFAULT_MIN_QUALITY`, which is what every registered algorithm with a quality score uses.
    """
    if isinstance(value, MultiHash):
        if not value.segments:
            return "no segments"
        if all(_degenerate(segment) for segment in value.segments):
            return "every segment has all bits equal"
        return None
    minimum = min_quality(algorithm)
    if value.quality is not None and value.quality < minimum:
        return f"quality {value.quality} < {minimum}"
    return _degenerate(value)


def _degenerate(value: Hash) -> str | None:
    ones = value.popcount()
    if ones == 0:
        return "all bits 0"
    if ones == value.nbits:
        return "all bits 1"
    return None


def is_flagged(value: HashValue, algorithm: AlgorithmRef = None) -> bool:
    """True when `value` should not take part in matching (see the module docstring)."""
    return flag_reason(value, algorithm) is not None


def flagged_names(hashes: dict[str, HashValue]) -> frozenset[str]:
    """The keys of a `{name: hash}` result (as `hash_file` returns) whose hash is flagged."""
    return frozenset(name for name, value in hashes.items() if is_flagged(value, name))


__all__ = ["DEFAULT_MIN_QUALITY", "flag_reason", "flagged_names", "is_flagged", "min_quality"]
