"""The exceptions lookalike raises. Every image error names the file and the reason."""

from __future__ import annotations


class LookalikeError(Exception):
    """Base class of every error lookalike raises on purpose."""


class ImageError(LookalikeError):
    """An image could not be read or hashed; `path` names it, `reason` says why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason

    def __reduce__(self) -> tuple[type[ImageError], tuple[str, str]]:
        # Exceptions cross process boundaries in hash_files; keep both fields.
        return (type(self), (self.path, self.reason))


class FileMissingError(ImageError):
    """No file at that path."""


class NotAFileError(ImageError):
    """The path is a directory or another non-regular file."""


class UnreadableFileError(ImageError):
    """The file exists but cannot be read (permissions, I/O error)."""


class UnsupportedImageError(ImageError):
    """The bytes are not an image in a format we can decode."""


class CorruptImageError(ImageError):
    """The file is an image but its data is truncated or broken."""


class ImageTooLargeError(ImageError):
    """The image exceeds a decoding limit (pixels, dimensions, frames): a decompression bomb."""


class InvalidHashError(LookalikeError, ValueError):
    """A hash string or value is malformed (not hex, wrong length, out of range)."""


class UnknownAlgorithmError(LookalikeError, ValueError):
    """No algorithm is registered under that name, or its parameter is invalid."""


class IndexStoreError(LookalikeError):
    """An index could not be opened, read or written."""


class IndexUnreachableError(IndexStoreError):
    """The index's server could not be reached (refused, timed out, name not found)."""


class MissingVariantsError(LookalikeError, ValueError):
    """A dihedral search was asked for with a query hash that carries no rotation/flip variants."""


class MatcherSyntaxError(LookalikeError, ValueError):
    """A matcher rule such as "phash <= 8 and colorhash <= 6" could not be parsed."""
