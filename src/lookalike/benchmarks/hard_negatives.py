"""Hard negatives: pairs of different photos of one place or object in the shared photo folder.

Every pair of images of two different photos is already a negative in the all-pairs evaluation;
these few are reported apart because a matcher that pairs them is easy to forgive and still wrong:
two photographers' views of the Taj Mahal are not copies of each other. Each pair was chosen by
looking at both pictures (different light, clouds, people, framing or season: two photographs,
not one photograph edited), from files whose names or credits say they show the same subject.
Pairs that only share a kind of subject (two hammers, two windmills) are not here.

Keys are paths relative to the photo folder without their extension, as `corpus.Photo.key`; a
pair whose photos are not in the folder benchmarked is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lookalike.benchmarks.corpus import Photo

_G = "gcompris-qt-data/"


@dataclass(frozen=True)
class HardNegative:
    """Two photos of one subject, taken by different people or at different times."""

    first: str
    second: str
    subject: str


HARD_NEGATIVES: tuple[HardNegative, ...] = (
    HardNegative(
        f"{_G}categorization__monuments__tajMahal", f"{_G}explore_monuments__wonders__tajMahal", "Taj Mahal"
    ),
    HardNegative(
        f"{_G}details__image__TajMahal_background",
        f"{_G}explore_monuments__wonders__tajMahal",
        "Taj Mahal, same axis",
    ),
    HardNegative(
        f"{_G}categorization__monuments__tajMahal",
        f"{_G}details__image__TajMahal_background",
        "Taj Mahal, across the pool",
    ),
    HardNegative(
        f"{_G}details__image__Neuschwanstein_background",
        f"{_G}explore_monuments__germany__neuschwansteinCastle",
        "Neuschwanstein from the same bridge",
    ),
    HardNegative(
        f"{_G}categorization__monuments__mountRushmore",
        f"{_G}explore_monuments__usa__mountRushmore",
        "Mount Rushmore",
    ),
    HardNegative(
        f"{_G}categorization__monuments__statueOfLiberty",
        f"{_G}explore_monuments__usa__statueofLiberty",
        "Statue of Liberty",
    ),
    HardNegative(
        f"{_G}categorization__monuments__christTheRedeemer",
        f"{_G}explore_monuments__wonders__christTheRedeemer",
        "Christ the Redeemer",
    ),
    HardNegative(
        f"{_G}categorization__monuments__greatWall",
        f"{_G}explore_monuments__wonders__greatWallofChina",
        "Great Wall",
    ),
    HardNegative(
        f"{_G}categorization__monuments__kutubMinar",
        f"{_G}explore_monuments__india__qutubMinar",
        "Qutub Minar",
    ),
    HardNegative(
        f"{_G}categorization__monuments__operaHouse",
        f"{_G}details__image__OperaSidney_background",
        "Sydney Opera House, day and night",
    ),
    HardNegative(
        f"{_G}details__image__Chenonceau_background",
        f"{_G}explore_monuments__france__chateaudeChenonceau",
        "Chenonceau",
    ),
    HardNegative(
        f"{_G}details__image__TourEiffel_background",
        f"{_G}explore_monuments__france__eiffelTower",
        "Eiffel Tower from the Champ de Mars",
    ),
    HardNegative(
        f"{_G}details__image__GizahPyramids_background",
        f"{_G}explore_monuments__egypt__greatPyramidOfGiza",
        "Giza pyramids",
    ),
    HardNegative("tuxtype-data/images__photo_2_3", f"{_G}explore_monuments__wonders__colosseum", "Colosseum"),
    HardNegative(
        f"{_G}categorization__renewable__windmill9",
        f"{_G}categorization__renewable__windmill14",
        "one windmill, two photos (Linda 1 and 2)",
    ),
    HardNegative(
        "scratch/basketball-court1-a", "scratch/basketball-court1-b", "one basketball court, two views"
    ),
    HardNegative("scratch/city-with-water", "scratch/city-with-water2", "Boston skyline by night and by day"),
    HardNegative("scribus-template/br2__moon", "scribus-template/cal2__moon", "the full Moon"),
    HardNegative(
        "tuxtype-data/backgrounds__0",
        "stellarium-data-nebulae/n1300",
        "galaxy NGC 1300 (Hubble and a ground telescope)",
    ),
)


def present_pairs(
    photos: Sequence[Photo], pairs: Sequence[HardNegative] = HARD_NEGATIVES
) -> list[tuple[int, int, HardNegative]]:
    """The pairs whose two photos are both in `photos`, as (index, index, pair)."""
    index_of = {photo.key: i for i, photo in enumerate(photos)}
    return [
        (index_of[pair.first], index_of[pair.second], pair)
        for pair in pairs
        if pair.first in index_of and pair.second in index_of
    ]
