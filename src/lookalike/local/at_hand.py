"""Every keypoint of a stored picture whose file is at hand: a second look.

An index keeps a compact share of each picture's keypoints (`STORED_KEYPOINTS`, under 4 KB). A
copy that keeps a third of its original, such as a heavy uneven crop, covers too few of them for
verification to see it, though the file itself holds plenty. When a pair fails verification but
came close (`verify.NearMiss`), and the stored picture is a file that `index add` made (origin
FROM_FILE) and that is still the one indexed (the same byte size and mtime), its keypoints are
found again from the file and the pair verified with them; in a duplicate search, where the
query is a stored picture too, the same holds for the query's file.

Nothing else is opened: a key a client chose over HTTP, such as a path to a private image, is
never read, and neither is a file changed since it was indexed (its stored hashes say what the
index knows of it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from lookalike.decode import DEFAULT_LIMITS, DecodeLimits
from lookalike.discover import key_path
from lookalike.index.base import FROM_FILE, Entry
from lookalike.local.second_look import SidedFeatures


def indexed_file(entry: Entry) -> str | None:
    """The path of the file `entry` was made from, if `index add` made it and the file is still
    the one it indexed (same byte size and mtime); else None."""
    if entry.origin != FROM_FILE or entry.byte_size is None or entry.mtime is None:
        return None
    path = key_path(entry.key)
    try:
        stat = os.stat(path)
    except OSError:
        return None
    if stat.st_size != entry.byte_size or stat.st_mtime != entry.mtime:
        return None
    return path


def features_at_hand(
    entries: Mapping[int, Entry], limits: DecodeLimits = DEFAULT_LIMITS, *, mirrored: bool = False
) -> dict[int, SidedFeatures]:
    """Every keypoint of each entry whose indexed file is at hand (`indexed_file`), and with
    `mirrored` those of its mirror image, under the same id as `entries` (the candidate stage's
    id: a row version on ClickHouse); entries whose file is missing, changed or no longer
    decodes are left out."""
    from lookalike.pipeline import local_features_of_file

    found: dict[int, SidedFeatures] = {}
    for name, entry in entries.items():
        path = indexed_file(entry)
        if path is None:
            continue
        features, of_mirror = local_features_of_file(path, limits, mirrored=mirrored)
        if features is not None:
            found[name] = (features, of_mirror)
    return found
