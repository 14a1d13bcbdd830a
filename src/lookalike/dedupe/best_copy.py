"""Which member of a duplicate group to keep: the best copy comes first.

Without the files (`best_copy_rank`): most pixels of picture, then largest file, then oldest.
With them (`fidelity_rank`, what `--keep auto` uses among the copies no one edited): the least
derived, highest-fidelity copy: not upscaled (`is_upscaled`), most real pixels, lossless,
highest JPEG quality, a camera's EXIF, then the oldest file. `--keep largest|oldest|newest|
path:PREFIX` are the simple rules people know from other de-duplicators.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lookalike.dedupe.fidelity import ImageFacts, lost_detail
from lookalike.index.base import Entry


def content_pixels(entry: Entry) -> int:
    """Pixels of picture: without uniform borders when indexing measured them (metadata
    "content"), so bars added to a copy do not make it look like the larger original."""
    content = entry.metadata.get("content") if entry.metadata else None
    if isinstance(content, list) and len(content) == 2 and all(isinstance(v, int) for v in content):
        return int(content[0]) * int(content[1])
    return entry.pixels


def best_copy_rank(entry: Entry) -> tuple[int, int, float, str]:
    """Sort key putting the best copy first: most pixels of picture (see `content_pixels`), then
    largest file, then oldest (file mtime, else when it was indexed), then key for a stable order."""
    age = entry.mtime if entry.mtime is not None else entry.added_at
    return (-content_pixels(entry), -(entry.byte_size or 0), age, entry.key)


KEEP_RULES = ("auto", "largest", "oldest", "newest", "path:PREFIX")
# `is_upscaled`: detail beyond a smaller member's resolution, relative to that member's own
UPSCALED_RATIO = 0.08
UPSCALED_RATIO_EMPTY_TOP = 0.2  # ... when the top octave holds under this share of the smaller's
UPSCALED_TOP_BAND = 0.2


def check_keep_rule(rule: str) -> str:
    """`rule` if it is one of KEEP_RULES (`path:` followed by a non-empty prefix), else an error."""
    from lookalike.errors import LookalikeError

    if rule in ("auto", "largest", "oldest", "newest") or (rule.startswith("path:") and len(rule) > 5):
        return rule
    raise LookalikeError(f"unknown keep rule {rule!r}; choose one of {', '.join(KEEP_RULES)}")


def age(entry: Entry) -> float:
    """When the file was last written (else when it was indexed)."""
    return entry.mtime if entry.mtime is not None else entry.added_at


def simple_rank(entry: Entry, rule: str) -> tuple[object, ...]:
    """Sort key of the rules that need no pixels: largest, oldest, newest (ties: `best_copy_rank`)."""
    if rule == "oldest":
        return (age(entry), best_copy_rank(entry))
    if rule == "newest":
        return (-age(entry), best_copy_rank(entry))
    return (best_copy_rank(entry),)


def fidelity_rank(
    candidates: Sequence[tuple[Entry, ImageFacts]],
    spread: Mapping[str, float] | None = None,
) -> list[tuple[Entry, ImageFacts]]:
    """The candidates (copies of one picture, none edited) best first: not upscaled, most pixels,
    lossless, then the least damaged lossy file: the highest JPEG quality when every lossy
    candidate is a JPEG, else the one nearest the other members (`spread`: key -> mean distance;
    compression adds its own error). Members holding the very same pixels rank as one (the best
    file among them counts), and among those a camera's EXIF, then the older file wins."""
    upscaled = {entry.key for entry, facts in candidates if is_upscaled(facts, [f for _, f in candidates])}
    by_pixels: dict[str, list[tuple[str, ImageFacts]]] = {}
    for entry, facts in candidates:
        by_pixels.setdefault(facts.pixel_digest, []).append((entry.key, facts))
    all_jpeg = all(facts.jpeg_quality is not None for _, facts in candidates if not facts.lossless)

    def picture(key: str, facts: ImageFacts) -> tuple[object, ...]:
        if facts.lossless:
            damage = 0.0
        elif all_jpeg or spread is None:
            damage = float(100 - (facts.jpeg_quality or 0))
        else:
            damage = round(spread.get(key, 0.0), 1)
        return (key in upscaled, -facts.area, not facts.lossless, damage)

    def key(item: tuple[Entry, ImageFacts]) -> tuple[object, ...]:
        entry, facts = item
        same = min(picture(key, other) for key, other in by_pixels[facts.pixel_digest])
        return (same, not facts.camera, age(entry), entry.key)

    return sorted(candidates, key=key)


def is_upscaled(facts: ImageFacts, others: Sequence[ImageFacts]) -> bool:
    """Whether `facts` is an enlargement of a smaller member. Scaled down to that member's size
    and up again, an enlargement loses next to no detail where the smaller member, at the same
    factor, loses its own; a soft original (a phone's noise reduction, a smooth graphic) loses
    little too, so a middling loss counts only when the spectrum's top octave is nearly empty
    next to the smaller member's. Measured on 118 pairs of originals with their half-size copies
    and 2x enlargements (bicubic) of 75 photos: 2 wrong (docs/dupes.md)."""
    for other in others:
        if facts.area <= 1.5 * other.area:
            continue
        factor = (facts.area / other.area) ** 0.5
        own, source = lost_detail(facts.window, factor), lost_detail(other.window, factor)
        if source <= 0:
            continue
        ratio = own / source
        empty_top = other.top_band > 0 and facts.top_band / other.top_band < UPSCALED_TOP_BAND
        if ratio < UPSCALED_RATIO or (empty_top and ratio < UPSCALED_RATIO_EMPTY_TOP):
            return True
    return False
