"""What the review page says about groups whatever they carry: verified relations and tiers when
present (objects or plain names), a tier from the bytes and "identical file" when not."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import COMMITTED_PHOTOS
from lookalike.dedupe.grouping import Group
from lookalike.dedupe.report import render_report
from lookalike.dedupe.report_facts import relation_of, tier_label, tier_of
from lookalike.index.base import FROM_FILE, Entry


@dataclass(frozen=True)
class Tagged(Group):
    relations: Mapping[str, Any] = field(default_factory=dict)
    tier: str | None = None


def _entry(path: Path) -> Entry:
    data = path.read_bytes()
    return Entry(
        id=0, key=str(path), hashes={}, sha256=hashlib.sha256(data).hexdigest(), byte_size=len(data),
        width=320, height=200, mtime=None, added_at=0.0, origin=FROM_FILE,
    )  # fmt: skip


def test_groups_without_relations_get_their_tier_from_the_bytes(tmp_path: Path) -> None:
    a, same, other = tmp_path / "a.jpg", tmp_path / "b.jpg", tmp_path / "c.jpg"
    shutil.copy(COMMITTED_PHOTOS[0], a)
    shutil.copy(COMMITTED_PHOTOS[0], same)
    shutil.copy(COMMITTED_PHOTOS[1], other)
    identical = Group((_entry(a), _entry(same)))
    mixed = Group((_entry(a), _entry(same), _entry(other)))
    assert tier_of(identical) == "identical-files" and tier_of(mixed) == "near-duplicates"
    relation = relation_of(mixed, mixed.members[1])
    assert relation is not None and relation.kind == "identical-file" and relation.safe
    assert relation_of(mixed, mixed.members[2]) is None


def test_relations_given_as_names_and_unknown_tiers_still_render(tmp_path: Path) -> None:
    kept, edited = tmp_path / "kept.jpg", tmp_path / "edited.jpg"
    shutil.copy(COMMITTED_PHOTOS[2], kept)
    shutil.copy(COMMITTED_PHOTOS[3], edited)
    group = Tagged((_entry(kept), _entry(edited)), relations={str(edited): "edited"}, tier="screenshots")
    relation = relation_of(group, group.members[1])
    assert relation is not None and relation.text == "edited" and not relation.safe
    assert tier_of(group) == "screenshots" and tier_label("screenshots") == ("screenshots", "t-other")
    page = render_report([group])
    assert ">screenshots<" in page and "not chosen at first" in page
    assert page.count(" checked>") == 0  # an edited copy is not chosen
