"""Probes of the multi-index pre-filter: which `cv` values of `m_*` a query row must read.

A hash within r of the query has, by pigeonhole over its m chunks, some chunk within the radius
`chunk_radii` gives (about r/m bits) of the query's chunk; probing every chunk value in those
Hamming balls finds every true match, and the exact distance check then drops the rest.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from lookalike.index.clickhouse.schema import CHUNK_BITS, prefilter_chunks
from lookalike.search.bits import ball_masks, ball_size
from lookalike.search.mih import chunk_radii

MAX_PROBES_PER_ROW = 1024  # past this a full scan is as cheap as the scattered reads


def probes_per_row(nbits: int, radius: int) -> int:
    """How many chunk values one query row of this radius probes."""
    chunks = prefilter_chunks(nbits)
    radii = chunk_radii(len(chunks), radius)
    return sum(ball_size(chunk.width, r) for chunk, r in zip(chunks, radii, strict=True) if r >= 0)


def build_probes(
    words: npt.NDArray[np.uint64], radius: npt.NDArray[np.int64], nbits: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(query row, cv) for every probe of every row; `cv` = chunk number * 2**16 + chunk value."""
    chunks = prefilter_chunks(nbits)
    rows_out: list[npt.NDArray[np.int64]] = []
    cvs_out: list[npt.NDArray[np.int64]] = []
    for value in np.unique(radius).tolist():
        rows = np.flatnonzero(radius == value)
        radii = chunk_radii(len(chunks), int(value))
        for number, (chunk, chunk_radius) in enumerate(zip(chunks, radii, strict=True)):
            if chunk_radius < 0:
                continue
            masks = ball_masks(chunk.width, chunk_radius).astype(np.int64)
            centre = chunk.values(words[rows])
            probed = (centre[:, None] ^ masks[None, :]) + (number << CHUNK_BITS)
            rows_out.append(np.repeat(rows, len(masks)))
            cvs_out.append(probed.ravel())
    if not rows_out:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy()
    return np.concatenate(rows_out), np.concatenate(cvs_out)
