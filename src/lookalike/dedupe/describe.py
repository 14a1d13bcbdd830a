"""Duplicate groups made useful: the copy to keep first, what every other member is to it, and
the group's tier.

Groups come from matching (`Index.duplicates`): pictures the hashes and rules call duplicates.
Here each group is verified on its files, where the files can be read (entries `index add` made
from disk): the members are aligned and compared (`relations`), the copy to keep is chosen
(`best_copy`), and the group gets a tier, after its least alike member:

identical-files    every copy has the kept copy's bytes
identical-pixels   every copy has its decoded pixels (another container or metadata)
copies             every copy is the same picture re-encoded or resized: safe to remove
edited-copies      some member was rotated, cropped or edited: derived work, kept unless asked
unverified         the files could not be read (uploads, a service without file access)

`keep="auto"` keeps the original: of the members showing the whole frame upright (as most members
do), the one the others are nearest on average on a shared canvas, each derived copy having
moved away from it in its own way (near-ties go to the higher-fidelity file); then, of it and its
unedited copies (re-encoded, resized, identical: verified at full resolution where the sizes
agree), the highest-fidelity file (`best_copy.fidelity_rank`: not enlarged, most pixels,
lossless, JPEG quality, camera EXIF, older).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace

import numpy as np

from lookalike.dedupe.best_copy import best_copy_rank, check_keep_rule, fidelity_rank, simple_rank
from lookalike.dedupe.fidelity import ImageFacts, try_load_facts
from lookalike.dedupe.grouping import Group
from lookalike.dedupe.relations import (
    IDENTICAL_FILE,
    KINDS,
    SHOWN_INSIDE,
    UNVERIFIED,
    Relation,
    canvas,
    relate,
)
from lookalike.dedupe.shown_copies import Looks, composites, looks_of, shown_inside, split_group
from lookalike.discover import key_path
from lookalike.index.base import FROM_FILE, Entry
from lookalike.regions import overlap

SAME_CONTENT = 0.8  # a picture shown inside a copy is its content between bars when they overlap this much
CANVAS_SIDE = 256  # pixels on the long side of the canvas members are compared on
TIERS = ("identical-files", "identical-pixels", "copies", "edited-copies", "unverified")
TIER_TITLES = {
    "identical-files": "identical files (same bytes)",
    "identical-pixels": "identical pixels (another file format or metadata)",
    "copies": "copies (resized or re-encoded)",
    "edited-copies": "edited copies (rotated, cropped or edited: kept unless asked)",
    "unverified": "near-duplicates the files could not verify",
}


def describe_groups(
    groups: Iterable[Group],
    *,
    keep: str = "auto",
    read_files: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> list[Group]:
    """Each group with the copy to keep first, every member's relation to it and its tier,
    ordered by tier (identical files first), then largest first. Read from their files, groups
    are first cut where a pair is similar but not a copy (`shown_copies`). `read_files=False`
    judges from the index alone (sha256 says which files are identical; the rest are unverified).
    `progress(members done, members in all)` follows the verification, which reads every file."""
    rule = check_keep_rule(keep)
    pending = list(groups)
    total = sum(len(group.members) for group in pending)
    described, done = [], 0
    for group in pending:
        facts = member_facts(group) if read_files else dict.fromkeys(e.key for e in group.members)
        looks = looks_of(facts)  # built once: the split and the choice of the kept copy share it
        for part in split_group(group, facts, looks).groups if read_files else (group,):
            described.append(describe_group(part, rule, facts, looks))
        done += len(group.members)
        if progress is not None:
            progress(done, total)
    described.sort(key=lambda g: (TIERS.index(g.tier or "unverified"), -len(g.members), g.best.key))
    return described


def describe_group(
    group: Group,
    keep: str,
    facts: Mapping[str, ImageFacts | None],
    looks: Mapping[str, Looks] | None = None,
) -> Group:
    """`group` with the copy to keep first and every other member's relation to it, judged on
    `facts` (by key; None where a file cannot be read; `looks`: `looks_of(facts)` if made before)."""
    members = list(group.members)
    looks = looks_of(facts) if looks is None else looks
    kept, relations = _choose(members, facts, keep, looks)
    for entry in members:
        if entry.key != kept.key and entry.key not in relations:
            relations[entry.key] = relation_between(kept, entry, facts)
    for key, relation in list(relations.items()):
        if key in looks and kept.key in looks:
            relations[key] = _as_shown_inside(relation, looks[key], looks[kept.key])
    order = sorted(
        (entry for entry in members if entry.key != kept.key),
        key=lambda e: (KINDS.index(relations[e.key].kind), best_copy_rank(e)),
    )
    return replace(group, members=(kept, *order), relations=relations, tier=tier_of(relations.values()))


def _as_shown_inside(relation: Relation, copy: Looks, kept: Looks) -> Relation:
    """A changed copy that shows the kept picture whole inside it (a screenshot, a collage, a
    picture in a picture) is named for that, with where: measured on the whole frame, its tone
    or detail says little. Uniform bars or padding around the picture stay a frame."""
    if relation.safe or relation.kind == "unverified":
        return relation
    box = shown_inside(copy, kept)
    if box is None:
        return relation
    content = copy.facts.content
    if relation.edit == "frame" and content is not None:
        height, width = copy.facts.pixels.shape[:2]
        left, top, right, bottom = content
        if overlap(box, (left / width, top / height, right / width, bottom / height)) >= SAME_CONTENT:
            return relation  # the picture is what the bars leave: a frame
    return Relation("edited", edit=SHOWN_INSIDE, shown_at=box)


def relation_between(kept: Entry, other: Entry, facts: Mapping[str, ImageFacts | None]) -> Relation:
    if kept.sha256 is not None and kept.sha256 == other.sha256:
        return IDENTICAL_FILE
    kept_facts, other_facts = facts.get(kept.key), facts.get(other.key)
    if kept_facts is None or other_facts is None:
        return UNVERIFIED
    try:
        return relate(kept_facts, other_facts)
    except Exception:  # OpenCV or NumPy on a degenerate picture: one pair unverified, not the run
        return UNVERIFIED


def tier_of(relations: Iterable[Relation]) -> str:
    kinds = {relation.kind for relation in relations}
    if kinds <= {"identical-file"}:
        return "identical-files"
    if kinds <= {"identical-file", "identical-pixels"}:
        return "identical-pixels"
    if kinds <= {"identical-file", "identical-pixels", "re-encoded", "resized"}:
        return "copies"
    if "unverified" in kinds and kinds <= {"identical-file", "unverified"}:
        return "unverified"
    return "edited-copies"


def member_facts(group: Group) -> dict[str, ImageFacts | None]:
    """Each member's file facts, by key (None where no file can be read)."""
    return {entry.key: _facts(entry) for entry in group.members}


def _facts(entry: Entry) -> ImageFacts | None:
    """The file's facts, for entries made from a file that is still there."""
    if entry.origin != FROM_FILE:
        return None
    path = key_path(entry.key)
    if not os.path.isfile(path):
        return None
    return try_load_facts(path)


def _choose(
    members: Sequence[Entry], facts: Mapping[str, ImageFacts | None], keep: str, looks: Mapping[str, Looks]
) -> tuple[Entry, dict[str, Relation]]:
    """The member to keep, and the relations to it found on the way."""
    if keep.startswith("path:"):
        preferred = [entry for entry in members if key_path(entry.key).startswith(keep[5:])]
        if preferred:
            kept, relations = _auto(preferred, facts, looks)
            return kept, ({} if len(preferred) < len(members) else relations)
        return _auto(members, facts, looks)
    if keep == "auto":
        return _auto(members, facts, looks)
    return min(members, key=lambda entry: simple_rank(entry, keep)), {}


def _auto(
    members: Sequence[Entry], facts: Mapping[str, ImageFacts | None], looks: Mapping[str, Looks]
) -> tuple[Entry, dict[str, Relation]]:
    """The original: see the module docstring."""
    ordered: list[tuple[Entry, ImageFacts]] = sorted(
        ((entry, image) for entry in members if (image := facts.get(entry.key)) is not None),
        key=lambda item: best_copy_rank(item[0]),
    )
    if not ordered:
        return min(members, key=best_copy_rank), {}
    # A member showing another inside it (a screenshot, a collage) is derived from it: the
    # original is among the others, and their frame is the reference.
    derived = composites({entry.key: looks.get(entry.key) or Looks(image) for entry, image in ordered})
    if len(derived) < len(ordered):
        ordered = [item for item in ordered if item[0].key not in derived]
    reference = ordered[0][1]
    whole: list[tuple[Entry, ImageFacts]] = []
    canvases = []
    turns = []
    # The canvas is no larger than the smallest member: enlarging a small copy would blur it
    # away from the others.
    side = min(CANVAS_SIDE, *(max(image.pixels.shape[:2]) for _, image in ordered))
    for entry, image in ordered:
        placed = canvas(image.pixels, reference.pixels, side)
        if placed is not None:
            whole.append((entry, image))
            turns.append(placed[0])
            canvases.append(placed[1])
    if not whole:
        return ordered[0][0], {}
    stack = np.stack(canvases)  # n x H x W x 3: members' whole frames on one canvas
    distance = np.array([np.abs(stack - one).mean(axis=(1, 2, 3)) for one in stack])
    score = distance.sum(axis=1) / max(1, len(whole) - 1)
    # The original is upright as most members are: a turned or mirrored copy is the exception.
    # (a tie in count, as in a pair of a picture and its mirror image, leaves both possible).
    counts = Counter(turns)
    upright = {turn for turn, count in counts.items() if count == max(counts.values())}
    # Near-ties (two members, or an original and its plain copies) go to the better file.
    best_score = float(min(score[i] for i in range(len(whole)) if turns[i] in upright))
    tied = [
        whole[i] for i in range(len(whole)) if turns[i] in upright and score[i] <= best_score * 1.05 + 0.25
    ]
    spread = {whole[i][0].key: float(score[i]) for i in range(len(whole))}
    centre = fidelity_rank(tied, spread)[0]
    # The centre's unedited copies (re-encoded, resized, identical) are the same picture: of
    # them, keep the highest-fidelity file.
    relations = {
        entry.key: relation_between(centre[0], entry, facts)
        for entry, _ in ordered
        if entry.key != centre[0].key
    }
    unedited = [centre, *((e, f) for e, f in whole if e.key != centre[0].key and relations[e.key].safe)]
    kept = fidelity_rank(unedited, spread)[0]
    return kept[0], (relations if kept[0].key == centre[0].key else {})
