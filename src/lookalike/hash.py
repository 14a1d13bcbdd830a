"""The Hash value type: a fixed-length bit string with ImageHash's ergonomics.

`a - b` is the Hamming distance, `str(h)` the hex ImageHash prints for the same bits, `int(h)` the
unsigned integer of that hex (the seed article's `hash_to_int`). Bits are kept as one Python integer
(most significant bit = first bit of ImageHash's flattened array), which makes XOR and popcount
cheap, hashing exact and pickling compact.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from lookalike.errors import InvalidHashError

_UINT64_MASK = (1 << 64) - 1


def _hex_width(nbits: int) -> int:
    return (nbits + 3) // 4


@functools.total_ordering
class Hash:
    """An immutable perceptual hash of `len(h)` bits.

    Optionally it carries a quality score (0-100; PDQ's, or the thumbnail contrast for 64-bit
    hashes) and its 8 dihedral variants (rotations and flips, index 0 = the hash itself), which
    dihedral search uses. Neither takes part in equality or hashing.
    """

    __slots__ = ("_nbits", "_value", "quality", "variants")

    _nbits: int
    _value: int
    quality: int | None
    variants: tuple[Hash, ...] | None

    def __init__(
        self, value: int, nbits: int, quality: int | None = None, variants: tuple[Hash, ...] | None = None
    ) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"hash value must be an int, not {type(value).__name__}")
        if not isinstance(nbits, int) or nbits < 1:
            raise InvalidHashError(f"a hash has at least 1 bit, got nbits={nbits!r}")
        if value < 0 or value >> nbits:
            raise InvalidHashError(f"value {value} does not fit in {nbits} unsigned bits")
        object.__setattr__(self, "_value", value)
        object.__setattr__(self, "_nbits", nbits)
        object.__setattr__(self, "quality", quality)
        object.__setattr__(self, "variants", variants)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Hash is immutable")

    # ----- constructors -------------------------------------------------------------------------
    @classmethod
    def from_bits(cls, bits: npt.ArrayLike, quality: int | None = None) -> Hash:
        """Pack a boolean array (any shape, flattened row-major, first element most significant)."""
        flat = np.asarray(bits, dtype=bool).ravel()
        nbits = int(flat.size)
        if nbits == 0:
            raise InvalidHashError("cannot make a hash from zero bits")
        packed = np.packbits(flat)  # pads the last byte with zeros on the right
        value = int.from_bytes(packed.tobytes(), "big") >> (packed.size * 8 - nbits)
        return cls(value, nbits, quality)

    @classmethod
    def from_hex(cls, text: str, nbits: int | None = None) -> Hash:
        """Parse hex as ImageHash prints it; `nbits` defaults to 4 bits per digit."""
        if not isinstance(text, str):
            raise InvalidHashError(f"hex hash must be a string, not {type(text).__name__}")
        digits = text.strip()
        if digits[:2] in ("0x", "0X"):
            digits = digits[2:]
        if not digits or any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise InvalidHashError(f"not a hex hash: {text!r}")
        if nbits is None:
            nbits = 4 * len(digits)
        elif len(digits) != _hex_width(nbits):
            raise InvalidHashError(
                f"a {nbits}-bit hash has {_hex_width(nbits)} hex digits, got {len(digits)}: {text!r}"
            )
        value = int(digits, 16)
        if value >> nbits:
            raise InvalidHashError(f"hex {text!r} has bits set above bit {nbits}")
        return cls(value, nbits)

    @classmethod
    def from_int(cls, value: int, nbits: int) -> Hash:
        """From the unsigned integer (as `int(h)` or the seed's `hash_to_int` gives it)."""
        return cls(int(value), nbits)

    @classmethod
    def from_int64(cls, value: int, nbits: int = 64) -> Hash:
        """From the signed two's-complement value a BIGINT / Int64 column holds (nbits <= 64)."""
        if nbits > 64:
            raise InvalidHashError(f"a {nbits}-bit hash does not fit in one int64")
        value = int(value)
        if not -(1 << 63) <= value < (1 << 63):
            raise InvalidHashError(f"{value} is not a signed 64-bit integer")
        return cls(value & _UINT64_MASK, nbits)

    @classmethod
    def from_words(cls, words: Sequence[int] | npt.NDArray[np.uint64], nbits: int) -> Hash:
        """From big-endian uint64 words (as `h.words()` gives them)."""
        value = 0
        for word in np.asarray(words, dtype=np.uint64).ravel().tolist():
            value = (value << 64) | int(word)
        return cls(value, nbits)

    @classmethod
    def from_bytes(cls, data: bytes, nbits: int | None = None) -> Hash:
        """From big-endian bytes, the hash right-aligned (as `h.to_bytes()` gives them)."""
        return cls(int.from_bytes(data, "big"), nbits if nbits is not None else 8 * len(data))

    # ----- conversions --------------------------------------------------------------------------
    def __str__(self) -> str:
        return format(self._value, f"0{_hex_width(self._nbits)}x")

    def __repr__(self) -> str:
        extra = f", quality={self.quality}" if self.quality is not None else ""
        return f"Hash('{self}', nbits={self._nbits}{extra})"

    def __int__(self) -> int:
        return self._value

    def __len__(self) -> int:
        return self._nbits

    @property
    def nbits(self) -> int:
        return self._nbits

    @property
    def bits(self) -> npt.NDArray[np.bool_]:
        """The bits as a flat boolean array, most significant first (ImageHash's order)."""
        nbytes = (self._nbits + 7) // 8
        raw = np.frombuffer((self._value << (nbytes * 8 - self._nbits)).to_bytes(nbytes, "big"), np.uint8)
        return np.unpackbits(raw)[: self._nbits].astype(bool)

    def to_int64(self) -> int:
        """The signed 64-bit integer holding the same bits (for BIGINT / Int64 columns)."""
        if self._nbits > 64:
            raise InvalidHashError(f"a {self._nbits}-bit hash does not fit in one int64; use words()")
        return self._value - (1 << 64) if self._value >> 63 else self._value

    def words(self) -> npt.NDArray[np.uint64]:
        """Big-endian uint64 words, the hash right-aligned in the last word (PDQ: 4 words)."""
        count = (self._nbits + 63) // 64
        data = self._value.to_bytes(count * 8, "big")
        return np.frombuffer(data, dtype=">u8").astype(np.uint64)

    def to_bytes(self) -> bytes:
        """Big-endian bytes, the hash right-aligned."""
        return self._value.to_bytes((self._nbits + 7) // 8, "big")

    def with_quality(self, quality: int | None) -> Hash:
        return Hash(self._value, self._nbits, quality, self.variants)

    def with_variants(self, variants: Iterable[Hash] | None) -> Hash:
        """This hash carrying its dihedral variants (for rotation/flip-invariant search)."""
        return Hash(self._value, self._nbits, self.quality, None if variants is None else tuple(variants))

    # ----- comparison ---------------------------------------------------------------------------
    def distance(self, other: Hash) -> int:
        """Hamming distance: the number of differing bits."""
        if not isinstance(other, Hash):
            raise TypeError(f"cannot compare a Hash with {type(other).__name__}")
        if other._nbits != self._nbits:
            raise TypeError(f"hashes differ in length: {self._nbits} and {other._nbits} bits")
        return (self._value ^ other._value).bit_count()

    def __sub__(self, other: Hash) -> int:
        return self.distance(other)

    def __xor__(self, other: Hash) -> Hash:
        self.distance(other)  # validates type and length
        return Hash(self._value ^ other._value, self._nbits)

    def popcount(self) -> int:
        return self._value.bit_count()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Hash):
            return NotImplemented
        return self._nbits == other._nbits and self._value == other._value

    def __lt__(self, other: Hash) -> bool:
        if not isinstance(other, Hash):
            return NotImplemented
        return (self._nbits, self._value) < (other._nbits, other._value)

    def __hash__(self) -> int:
        return hash((self._nbits, self._value))

    def __reduce__(self) -> tuple[type[Hash], tuple[int, int, int | None, tuple[Hash, ...] | None]]:
        return (Hash, (self._value, self._nbits, self.quality, self.variants))


class MultiHash:
    """A crop-resistant hash: one Hash per image segment, compared as ImageHash's ImageMultiHash."""

    __slots__ = ("segments",)

    segments: tuple[Hash, ...]

    def __init__(self, segments: Iterable[Hash]) -> None:
        object.__setattr__(self, "segments", tuple(segments))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("MultiHash is immutable")

    @classmethod
    def from_hex(cls, text: str) -> MultiHash:
        return cls(Hash.from_hex(part) for part in text.split(",") if part.strip())

    def __str__(self) -> str:
        return ",".join(str(segment) for segment in self.segments)

    def __repr__(self) -> str:
        return f"MultiHash('{self}')"

    def __len__(self) -> int:
        return len(self.segments)

    def hash_diff(
        self, other: MultiHash, hamming_cutoff: float | None = None, bit_error_rate: float | None = None
    ) -> tuple[int, int]:
        """(segments of self that have a close segment in other, sum of those distances)."""
        if not self.segments or not other.segments:
            return 0, 0
        if hamming_cutoff is None:
            hamming_cutoff = len(self.segments[0]) * (0.25 if bit_error_rate is None else bit_error_rate)
        distances = [min(mine - theirs for theirs in other.segments) for mine in self.segments]
        close = [d for d in distances if d <= hamming_cutoff]
        return len(close), sum(close)

    def matches(
        self,
        other: MultiHash,
        region_cutoff: int = 1,
        hamming_cutoff: float | None = None,
        bit_error_rate: float | None = None,
    ) -> bool:
        return self.hash_diff(other, hamming_cutoff, bit_error_rate)[0] >= region_cutoff

    def distance(
        self, other: MultiHash, hamming_cutoff: float | None = None, bit_error_rate: float | None = None
    ) -> float:
        """ImageHash's score: segments minus matching segments, plus a tie-breaker in [0, 1)."""
        matches, sum_distance = self.hash_diff(other, hamming_cutoff, bit_error_rate)
        if matches == 0:
            return float(len(self.segments))
        tie_breaker = -(float(sum_distance) / (matches * len(self.segments[0])))
        return len(self.segments) - (matches + tie_breaker)

    def __sub__(self, other: MultiHash) -> float:
        return self.distance(other)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MultiHash):
            return NotImplemented
        return self.segments == other.segments

    def __hash__(self) -> int:
        return hash(self.segments)

    def __reduce__(self) -> tuple[type[MultiHash], tuple[tuple[Hash, ...]]]:
        return (MultiHash, (self.segments,))
