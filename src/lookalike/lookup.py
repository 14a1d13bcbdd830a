"""Searching an index for images or hex hashes: the shared logic behind `lookalike search` and
the HTTP service's `/v1/search` (and so the web page).

Queries are hashed in parallel; all queries that rank by the same algorithm are answered by one
batch search (`k` nearest or every match within a radius), or judged as one batch by a matcher
rule/preset (`Index.match_many`), beside which `nearest_not_matching` lists the closest images the
rule did not accept; every image found reports its distance per hash and which hashes agreed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from lookalike.algorithms import parse_spec
from lookalike.algorithms.equalized import PHASH_EQ_REGIONS
from lookalike.errors import ImageError, LookalikeError
from lookalike.hash import Hash
from lookalike.index.base import Entry, Index
from lookalike.local.features import LocalFeatures, LocalWanted, local_features_available
from lookalike.matcher import Matcher, Verdict, default_index_hashes
from lookalike.pipeline import hash_files
from lookalike.regions import RelativeBox
from lookalike.search.bits import popcount

if TYPE_CHECKING:
    from lookalike.local.verify import Alignment

NOT_VERIFIED = "similar, not verified as a copy: the hashes agree, the keypoints do not"
HEX_QUERY = re.compile(r"^(?:(?P<algorithm>[a-z_0-9]+(?::\d+)?)=)?(?P<hex>[0-9a-fA-F]{4,})$")
NAMED_QUERY = re.compile(r"^(?P<algorithm>[a-z_0-9]+(?::\d+)?)=(?P<hex>.*)$")


@dataclass
class Query:
    """One thing to search for: an image (hashed here) or a hex hash of one algorithm."""

    text: str
    hashes: dict[str, Hash] = field(default_factory=dict)
    error: str | None = None
    local: tuple[LocalFeatures | None, LocalFeatures | None] | None = None  # an image's keypoints
    size: tuple[int, int] | None = None  # an image's width and height
    regions: tuple[RelativeBox, ...] = ()  # the pictures inside it (HashResult.regions)


@dataclass(frozen=True)
class Found:
    """One indexed image found for a query: its key, display path, distance per hash, the hashes
    that agreed (see `agreed_hashes`) and its display name (an upload's file name), if any."""

    key: str
    path: str
    distances: Mapping[str, int]
    agreed: tuple[str, ...] = ()
    name: str | None = None
    # where one picture lies in the other, found by local features (`where_found`) or by the
    # hash of a picture inside the query (`where_region`)
    where: Mapping[str, object] | None = None
    # True: keypoints verify a copy; False: the hashes accepted a picture whose keypoints do not
    # agree (similar, not shown to be a copy); None: not checked (no local features on a side,
    # or the stored image is a small picture inside the query, below the keypoints' scales).
    verified: bool | None = None


def search_algorithms(text: str | None, stored: Mapping[str, int]) -> list[str]:
    """The algorithms to compare (the first one ranks): as asked, else what the index holds."""
    if text:
        return [parse_spec(name).key for name in text.split(",") if name.strip()]
    preferred = [name for name in ("pdq", *default_index_hashes()) if name in stored]
    names = list(dict.fromkeys(preferred)) or sorted(stored)
    if not names:
        raise LookalikeError("the index is empty: add images first (lookalike index add DIR)")
    return names


def query_algorithms(names: Sequence[str], stored: Mapping[str, int]) -> list[str]:
    """What a query image is hashed with, on every surface: `names` and every other hash the index
    stores that a query can use, as `index add` hashed the stored images (in fast mode the set
    decides the decode scale), so a query's bits agree with the same file's indexed ones. Multi-hash
    algorithms (crop-resistant segments) are left out: no query path reads them."""
    chosen = []
    for name in dict.fromkeys([*names, *stored]):
        try:
            spec = parse_spec(name)
        except LookalikeError:
            continue  # stored under a name lookalike cannot compute (an imported list)
        if not spec.algorithm.multi:
            chosen.append(name)
    return chosen


def with_query_algorithms(names: list[str], queries: Sequence[Query], stored: Mapping[str, int]) -> list[str]:
    """`names` plus the stored algorithms of queries that hold none of `names` (a hex query such
    as `dhash=<hex>`), so that such a query ranks by its own hash."""
    extra = [
        name
        for query in queries
        if not any(name in query.hashes for name in names)
        for name in query.hashes
        if name in stored
    ]
    return list(dict.fromkeys([*names, *extra]))


def parse_queries(
    items: Sequence[str],
    names: list[str],
    dihedral: bool,
    workers: int | None,
    hash_with: Sequence[str] | None = None,
) -> list[Query]:
    """Queries from command-line words: existing files are hashed (in parallel, with `hash_with`,
    default `names`), the rest parsed as hex."""
    queries = [Query(text) for text in items]
    images: dict[str, Query] = {}
    for query in queries:
        found = None if os.path.exists(query.text) else HEX_QUERY.match(query.text.strip())
        if found is None:
            named = None if os.path.exists(query.text) else NAMED_QUERY.match(query.text.strip())
            if named is not None:  # `phash=xyz`: a hash query with a bad hash, not a missing file
                query.error = f"not a hash: {named['hex']!r} is not hexadecimal (0-9, a-f), 4 digits or more"
                continue
            images[query.text] = query
            continue
        algorithm = found["algorithm"] or ("pdq" if len(found["hex"]) == 64 else names[0])
        try:
            spec = parse_spec(algorithm)
            query.hashes[spec.key] = Hash.from_hex(found["hex"], spec.nbits)
        except LookalikeError as exc:
            query.error = str(exc)
    if images:
        algorithms = list(hash_with or names)
        local: LocalWanted = "query" if local_features_available() else False  # a search's keypoints
        found_files = hash_files(list(images), algorithms, workers=workers, dihedral=dihedral, local=local)
        for path, result in found_files:
            if isinstance(result, ImageError):
                images[path].error = result.reason
            else:
                images[path].hashes = {
                    name: value for name, value in result.items() if isinstance(value, Hash)
                }
                images[path].local = (result.local, result.local_mirrored) if local else None
                images[path].size = (result.width, result.height)
                images[path].regions = result.regions
    return queries


def search_queries(
    index: Index,
    queries: list[Query],
    names: list[str],
    k: int,
    max_distance: int | None,
    preset: str | None,
    dihedral: bool,
) -> list[list[Found]]:
    """The matches of each query, best first (queries with an error get none): the images a
    matcher `preset` (or rule) accepts, else every image within `max_distance` of the ranking
    hash (the first of `names` the query has), else its `k` nearest."""
    if preset is not None:
        return _rule_matches(index, queries, Matcher.parse(preset), dihedral)
    return _nearest(index, queries, names, k, max_distance, dihedral, None)


def nearest_not_matching(
    index: Index, queries: list[Query], preset: str, k: int, matches: list[list[Found]]
) -> list[list[Found]]:
    """Per query, up to `k` images nearest to it that the rule does not accept (ranked by the
    first hash of the rule the index holds, with the query's variants), to show beside its
    matches: what a person checks before trusting that nothing else matched."""
    rule = Matcher.parse(preset)
    stored = index.algorithm_bits()
    names = [name for name in rule.algorithms if name in stored]
    if not names:
        return [[] for _ in queries]
    ranked_queries = [
        Query(q.text, {n: v for n, v in q.hashes.items() if n in rule.algorithms}, q.error) for q in queries
    ]
    most = max((len(found) for found in matches), default=0)
    ranked = _nearest(index, ranked_queries, names, k + most, None, True, rule)
    return [
        [item for item in found if item.key not in {m.key for m in matched}][:k]
        for found, matched in zip(ranked, matches, strict=True)
    ]


def _rule_matches(index: Index, queries: list[Query], rule: Matcher, dihedral: bool) -> list[list[Found]]:
    results: list[list[Found]] = [[] for _ in queries]
    asked = [position for position, query in enumerate(queries) if query.error is None]
    if not asked:
        return results
    # Presets are tuned with the query's variants (rotations, flips, crops) in play.
    with_variants = dihedral or any(v.variants for p in asked for v in queries[p].hashes.values())
    stored = index.algorithm_bits()
    if not any(name in stored for name in rule.algorithms):
        index.require_algorithm(rule.algorithms[0])  # a clear error naming what the index holds
    # A condition on a hash the index lacks can never hold: such query hashes are left out.
    usable = [{n: v for n, v in queries[p].hashes.items() if n in stored} for p in asked]
    local = [queries[p].local or (None, None) for p in asked]
    verdicts = index.match_many(usable, rule, dihedral=with_variants, local=local)
    entries = index.get_many(v.key for answer in verdicts for v in answer)
    stored_regions = _stored_regions(index, verdicts, rule)
    for position, answer in zip(asked, verdicts, strict=True):
        query = queries[position]
        checked = _verify_accepted(index, query, answer)
        results[position] = []
        for v in answer:
            verified = True if v.alignment is not None else _verified(checked, v.key)
            entry = entries.get(v.key)
            found = _found(v.key, entry, v.distances, query.hashes, rule)
            where = where_found(v.alignment or _part_of(checked.get(v.key)), entry, query.size)
            region = None if where is not None else matched_region(v, query.regions, rule)
            inside = None
            if where is None and region is None:
                inside = stored_region_matched(v, query.hashes, stored_regions.get(v.key), rule)
            if region is not None or inside is not None:
                chosen = region if region is not None else inside
                assert chosen is not None
                where = where_region(chosen, entry, query.size, in_stored=region is None)
                verified = None if verified is False else verified
            results[position].append(replace(found, where=where, verified=verified))
    return results


def _stored_regions(
    index: Index, verdicts: list[list[Verdict]], rule: Matcher
) -> dict[str, tuple[npt.NDArray[np.uint64], list[RelativeBox]]]:
    """Per key, the stored pictures-inside of the accepted entries that a region condition may
    have matched (`Index.stored_regions`), read once for the batch."""
    name = PHASH_EQ_REGIONS.name
    if not any(c.algorithms == (name,) for c in rule.conditions):
        return {}
    wanted = {
        v.key for answer in verdicts for v in answer if v.alignment is None and v.distances.get(name, -1) >= 0
    }
    ids = index.ids_by_key(sorted(wanted)) if wanted else {}
    found = index.stored_regions(sorted(ids.values())) if ids else {}
    return {key: found[entry] for key, entry in ids.items() if entry in found}


def matched_region(verdict: Verdict, regions: Sequence[RelativeBox], rule: Matcher) -> RelativeBox | None:
    """The picture inside the query through which the rule accepted the stored image: the
    region whose hash (a `phash_eq_regions` variant after the first) came within a condition
    on that hash alone; None when the match came another way."""
    name = PHASH_EQ_REGIONS.name
    variant = verdict.variants.get(name, 0)
    distance = verdict.distances.get(name)
    if variant < 1 or variant > len(regions) or distance is None or distance < 0:
        return None
    held = any(c.algorithms == (name,) and distance <= c.max_distance for c in rule.conditions)
    return regions[variant - 1] if held else None


def stored_region_matched(
    verdict: Verdict,
    query_hashes: Mapping[str, Hash],
    stored: tuple[npt.NDArray[np.uint64], list[RelativeBox]] | None,
    rule: Matcher,
) -> RelativeBox | None:
    """The picture inside the stored image through which the rule accepted it (the query found in
    a stored collage or screenshot): the stored region whose hash lies at the verdict's distance
    from the query's own `phash_eq_regions` hash, within a condition on that hash alone; None when
    the match came another way."""
    name = PHASH_EQ_REGIONS.name
    distance = verdict.distances.get(name)
    own = query_hashes.get(name)
    if stored is None or own is None or distance is None or distance < 0:
        return None
    if not any(c.algorithms == (name,) and distance <= c.max_distance for c in rule.conditions):
        return None
    words, boxes = stored
    if words.shape[1] * 64 != own.nbits:
        return None
    distances = popcount(words ^ own.words()[None, :]).sum(axis=1)
    nearest = int(np.argmin(distances))
    return boxes[nearest] if int(distances[nearest]) == distance else None


def where_region(
    region: RelativeBox, entry: Entry | None, query_size: tuple[int, int] | None, *, in_stored: bool = False
) -> dict[str, object]:
    """`where_found`'s answer for a stored image found as a picture inside the query (a collage's
    cell, a screenshot's photo): all of it lies at `region` of the query, upright and unmirrored
    (region hashes have no turned variants); with `in_stored` the other way round, the whole
    query lies at `region` of the stored image (the query found in a stored collage). Scale is
    stored pixels per query pixel, when both sizes are known."""
    left, top, right, bottom = region
    quad = [[left, top], [right, top], [right, bottom], [left, bottom]]
    whole = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
    query_quad, stored_quad = (whole, quad) if in_stored else (quad, whole)
    stored_size = _stored_size(entry)
    scale = None
    if stored_size is not None and query_size is not None and right > left:
        share = (right - left) * (stored_size[0] if in_stored else query_size[0])
        scale = round((share if in_stored else stored_size[0]) / (query_size[0] if in_stored else share), 4)
    return {
        "stored_region": _scaled(stored_quad, stored_size),
        "query_region": _scaled(query_quad, query_size),
        "pixels": stored_size is not None,
        "query_pixels": query_size is not None,
        "stored_relative": stored_quad,
        "query_relative": query_quad,
        "scale": scale,
        "rotation": 0.0,
        "mirrored": False,
        "inliers": 0,
        "by": "region",
        "picture_in": "stored" if in_stored else "query",  # which image holds the picture
    }


def _verified(checked: Mapping[str, Alignment | None], key: str) -> bool | None:
    return None if key not in checked else checked[key] is not None


def _part_of(alignment: Alignment | None) -> Alignment | None:
    """The alignment when one picture is a part of the other (worth saying where), else None."""
    from lookalike.candidates.stage import SAME_FRAME

    if alignment is None or min(alignment.stored_coverage, alignment.query_coverage) >= SAME_FRAME:
        return None
    return alignment


def _verify_accepted(index: Index, query: Query, answer: list[Verdict]) -> dict[str, Alignment | None]:
    """Geometric verification of the matches the hashes accepted, where both sides have enough
    local features to judge (`can_judge`): key -> its alignment, or None when the keypoints do
    not verify a copy. A look-alike (another photo of one place, a wallpaper of one style)
    passes hashes but not geometry."""
    if query.local is None or query.local[0] is None:
        return {}
    from lookalike.local.verify import MIN_INLIERS, can_judge, verify

    unverified = [v.key for v in answer if v.alignment is None]
    if not unverified:
        return {}
    ids = index.ids_by_key(unverified)
    stored = index.stored_local(np.array(sorted(ids.values()), dtype=np.int64))
    checked: dict[str, Alignment | None] = {}
    for key, entry_id in ids.items():
        features = stored.get(entry_id)
        if features is not None and can_judge(query.local[0], features[0]):
            checked[key] = verify(query.local[0], features[0], query.local[1], min_inliers=MIN_INLIERS)
    return checked


def describe_where(where: Mapping[str, object]) -> str:
    """One line for people: where the query lies in the stored image, and how it was turned."""
    by_region = where.get("by") == "region"
    in_query = by_region and where.get("picture_in", "query") == "query"
    region = where["query_region" if in_query else "stored_region"]
    assert isinstance(region, list)
    xs = [point[0] for point in region]
    ys = [point[1] for point in region]
    unit = "" if where.get("query_pixels" if in_query else "pixels") else " (relative)"
    box = f"x {min(xs):g}-{max(xs):g}, y {min(ys):g}-{max(ys):g}{unit}"
    if by_region:
        scale = "" if where["scale"] is None else f"; scale {where['scale']:g}"
        place = "the picture at {box} of the query" if in_query else "the query is the picture at {box} of it"
        return f"{place.format(box=box)}{scale}; found by that picture's hash"
    how = [f"scale {where['scale']:g}"]
    if abs(float(str(where["rotation"]))) >= 1:
        how.append(f"rotated {where['rotation']:g} degrees")
    if where.get("mirrored"):
        how.append("mirrored")
    return f"found at {box}; {', '.join(how)}; {where['inliers']} matching keypoints"


def _scaled(quad: Any, size: tuple[int, int] | None) -> list[list[float]]:
    """A relative quad (0..1) in the pixels of an image of `size`, or relative when unknown."""
    factor = (1.0, 1.0) if size is None else (float(size[0]), float(size[1]))
    digits = 2 if size is not None else 4
    return [[round(float(x) * factor[0], digits), round(float(y) * factor[1], digits)] for x, y in quad]


def _stored_size(entry: Entry | None) -> tuple[int, int] | None:
    return None if entry is None or not entry.width or not entry.height else (entry.width, entry.height)


def where_found(
    alignment: Alignment | None, entry: Entry | None, query_size: tuple[int, int] | None
) -> dict[str, object] | None:
    """Where local features found the query in a stored image, for people and JSON: the query's
    frame drawn on the stored image (in its pixels when its size is known, else relative 0..1),
    the stored frame drawn on the query, and the transform (scale, rotation, mirrored)."""
    if alignment is None:
        return None
    stored_size = _stored_size(entry)
    return {
        "stored_region": _scaled(alignment.stored_region, stored_size),
        "query_region": _scaled(alignment.query_region, query_size),
        "pixels": stored_size is not None,
        "query_pixels": query_size is not None,
        "stored_relative": _scaled(alignment.stored_region, None),  # 0..1, to draw on a thumbnail
        "query_relative": _scaled(alignment.query_region, None),
        "scale": round(alignment.scale, 4),
        "rotation": round(alignment.rotation, 2),
        "mirrored": alignment.mirrored,
        "inliers": alignment.inliers,
        "by": "keypoints",
    }


def _nearest(
    index: Index,
    queries: list[Query],
    names: list[str],
    k: int,
    max_distance: int | None,
    dihedral: bool,
    rule: Matcher | None,
) -> list[list[Found]]:
    results: list[list[Found]] = [[] for _ in queries]
    by_algorithm: dict[str, list[int]] = {}
    for position, query in enumerate(queries):
        if query.error is not None:
            continue
        ranking = next((name for name in names if name in query.hashes), None)
        if ranking is None:
            query.error = f"no hash of {', '.join(names)} to search with"
            continue
        by_algorithm.setdefault(ranking, []).append(position)
    for algorithm, positions in by_algorithm.items():
        batch = [queries[p].hashes[algorithm] for p in positions]
        use_variants = dihedral and all(h.variants for h in batch)
        if max_distance is not None:
            answers = index.range_search(batch, algorithm, max_distance, dihedral=use_variants)
        else:
            answers = index.search(batch, algorithm, k, dihedral=use_variants)
        entries = index.get_many({match.key for answer in answers for match in answer})
        for position, answer in zip(positions, answers, strict=True):
            hashes = {name: value for name, value in queries[position].hashes.items() if name in names}
            results[position] = [
                _found(
                    m.key,
                    entries.get(m.key),
                    distances_between(hashes, entries.get(m.key), dihedral),
                    hashes,
                    rule,
                )
                for m in answer
            ]
    return results


def _found(
    key: str,
    entry: Entry | None,
    distances: Mapping[str, int],
    query: Mapping[str, Hash],
    rule: Matcher | None,
) -> Found:
    stored = {} if entry is None else entry.hashes
    agreed = agreed_hashes(distances, query, stored, rule)
    return Found(key, display_path(entry, key), distances, agreed, display_name(entry))


def agreed_hashes(
    distances: Mapping[str, int], query: Mapping[str, Hash], stored: Mapping[str, Hash], rule: Matcher | None
) -> tuple[str, ...]:
    """The hashes that agreed on a pair: with a rule, those of its conditions that held (within
    their limit, quality gate passed: one such condition may not be enough for the rule); else
    each hash within its algorithm's own default distance."""
    if rule is None:
        agreed = []
        for name, distance in distances.items():
            try:
                if distance <= parse_spec(name).max_distance:
                    agreed.append(name)
            except LookalikeError:
                continue  # a combined condition ("ahash + colorhash") is not an algorithm
        return tuple(agreed)
    held: dict[str, None] = {}
    for condition in rule.conditions:
        summed = distances.get(" + ".join(condition.algorithms))
        if summed is not None and summed <= condition.max_distance and condition.quality_ok(query, stored):
            held.update(dict.fromkeys(condition.algorithms))
    return tuple(held)


def distances_between(query: Mapping[str, Hash], entry: Entry | None, dihedral: bool) -> dict[str, int]:
    if entry is None:
        return {}
    distances = {}
    for name, mine in query.items():
        theirs = entry.hashes.get(name)
        if theirs is not None and len(theirs) == len(mine):
            options = mine.variants if dihedral and mine.variants else (mine,)
            distances[name] = min(theirs - option for option in options)
    return distances


def display_path(entry: Entry | None, key: str) -> str:
    if entry is not None and entry.metadata and entry.metadata.get("path"):
        return str(entry.metadata["path"])
    return key


def display_name(entry: Entry | None) -> str | None:
    """The name an entry is shown by (an upload's original file name), if it has one: data for
    display only, never a path to open."""
    name = (entry.metadata or {}).get("name") if entry is not None else None
    return name if isinstance(name, str) and name else None
