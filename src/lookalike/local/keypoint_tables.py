"""Stored keypoints in memory for retrieval: their descriptor keys, and beside each a signature.

A key is 24 bits of a 256-bit descriptor; at a million stored images each key is held by about
seven keypoints, most of them by chance, and a query's chance meetings then weigh as much as its
true ones. Each stored keypoint also keeps 64 other bits of its descriptor (its signature,
`retrieval.descriptor_signatures`), so that a meeting counts only where the two descriptors also
agree there (Hamming embedding): a chance meeting almost never does, the same point seen again
mostly does. The key tables name a keypoint as `image id << KEYPOINT_BITS | its number in the
image`, and the signatures are held per image in keypoint order, so a meeting finds its signature
with one read and the signatures cost 8 bytes a keypoint, not 8 per table row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lookalike.candidates.tables import KeyTables, WordStore
from lookalike.local.features import STORED_KEYPOINTS
from lookalike.local.retrieval import DESCRIPTOR_LAYOUT, descriptor_signatures

Ids = npt.NDArray[np.int64]
Signatures = npt.NDArray[np.uint64]

KEYPOINT_BITS = max(1, (STORED_KEYPOINTS - 1).bit_length())  # a keypoint's number in its image
# a row's id is what the (table, key) bits leave of 64: 31 bits of image id at three 24-bit tables
ROW_ID_BITS = KeyTables.free_id_bits(DESCRIPTOR_LAYOUT)


def keypoint_numbers(owners: Ids) -> Ids:
    """Each keypoint's number within its image, the keypoints of an image consecutive in
    `owners`; an image named in two runs is refused (its numbers would collide)."""
    if not len(owners):
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate([[True], owners[1:] != owners[:-1]]))
    if len(np.unique(owners[starts])) != len(starts):
        raise ValueError("each image's keypoints must be consecutive")
    lengths = np.diff(np.concatenate([starts, [len(owners)]]))
    numbers: Ids = np.arange(len(owners), dtype=np.int64) - np.repeat(starts, lengths)
    if int(numbers.max()) >= STORED_KEYPOINTS:
        raise ValueError(f"an image holds at most {STORED_KEYPOINTS} stored keypoints")
    return numbers


class KeypointTables:
    """Key tables over every stored keypoint's descriptor, and each keypoint's signature."""

    def __init__(self, keys: KeyTables | None = None, signatures: WordStore | None = None) -> None:
        self.keys = keys or KeyTables(DESCRIPTOR_LAYOUT, ROW_ID_BITS, KEYPOINT_BITS)
        self.signatures = signatures or WordStore(64 * STORED_KEYPOINTS)

    def nbytes(self) -> int:
        return self.keys.nbytes() + self.signatures.nbytes()

    def add(self, owners: Ids, words: npt.NDArray[np.uint64]) -> None:
        """Add images' keypoints: the image of each (an image's keypoints consecutive, and removed
        first if it was held) and its descriptor words (`retrieval.descriptor_words`)."""
        self.add_keys(owners, DESCRIPTOR_LAYOUT.keys(words), descriptor_signatures(words))

    def add_keys(self, owners: Ids, keys: npt.NDArray[np.uint32], signatures: Signatures) -> None:
        """`add` from the descriptors' keys and signatures."""
        if not len(owners):
            return
        if int(owners.min()) < 0 or int(owners.max()) >> (ROW_ID_BITS - KEYPOINT_BITS):
            raise ValueError(f"image ids must fit in {ROW_ID_BITS - KEYPOINT_BITS} bits")
        numbers = keypoint_numbers(owners)
        self.keys.add_keys((owners << KEYPOINT_BITS) | numbers, keys)
        images = np.unique(owners)
        held = np.zeros((len(images), STORED_KEYPOINTS), dtype=np.uint64)
        held[np.searchsorted(images, owners), numbers] = signatures
        self.signatures.upsert(images, held)

    def remove(self, ids: Ids) -> None:
        """Forget every keypoint of these images."""
        self.keys.remove(ids)
        self.signatures.remove(ids)

    def probe_keys(
        self, keys: npt.NDArray[np.uint32], tables: Ids, limit: int | None = None
    ) -> tuple[Ids, Ids, Signatures]:
        """(probe, image id, signature) of every stored keypoint meeting a probe
        (`KeyTables.probe_keys`, whose `limit` counts keypoints)."""
        probes, rows = self.keys.probe_keys(keys, tables, limit)
        images = rows >> KEYPOINT_BITS
        # every image the key tables hold has its signatures: add and remove change both
        signatures = self.signatures.words_at(images, rows & ((1 << KEYPOINT_BITS) - 1), held=True)
        return probes, images, signatures

    def save(self, folder: Path, meta: dict[str, Any]) -> None:
        self.keys.save(folder / "keys", meta)
        self.signatures.save(folder / "signatures", meta)

    @classmethod
    def load(cls, folder: Path) -> tuple[KeypointTables, dict[str, Any]] | None:
        """A snapshot, or None (absent, or its parts from different generations)."""
        keys = KeyTables.load(folder / "keys", DESCRIPTOR_LAYOUT, ROW_ID_BITS, KEYPOINT_BITS)
        signatures = WordStore.load(folder / "signatures", 64 * STORED_KEYPOINTS)
        if keys is None or signatures is None or keys[1].get("rev") != signatures[1].get("rev"):
            return None
        return cls(keys[0], signatures[0]), keys[1]
