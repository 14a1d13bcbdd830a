"""Keeping the original: families of an original and copies derived from it by known edits
(noise, halftone, mosaic, upscaling, low-quality re-compression, blur, crop, colour, rotation,
mirror, a small copy), made from the committed photos and de-duplicated as `lookalike dupes`
does. bench/keep_original.py runs the same on ../shared/photos."""

from __future__ import annotations

from pathlib import Path

from conftest import COMMITTED_PHOTOS
from lookalike.benchmarks.keep_original import make_families, measure


def test_the_original_is_kept_in_at_least_95_percent_of_groups(tmp_path: Path) -> None:
    result = measure(make_families(COMMITTED_PHOTOS, tmp_path))
    assert result.groups >= 0.9 * len(COMMITTED_PHOTOS)  # the families are found as groups
    assert result.rate >= 0.95, result.missed
    # and in the groups that kept it, the copies' relations are named as the edits made them
    assert result.relation_rate >= 0.95, result.confusions
