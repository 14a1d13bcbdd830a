"""Probes of the multi-index pre-filter: which `cv` values of `m_*` a query row must read.

A hash within r of the query has, by pigeonhole over its m chunks, some chunk within the radius
`chunk_radii` gives (about r/m bits) of the query's chunk; probing every chunk value in those
Hamming balls finds every true match, and the exact distance check then drops the rest.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from lookalike.index.clickhouse.schema import prefilter_chunks
from lookalike.search.bits import ball_masks, ball_size
from lookalike.search.mih import chunk_radii

# Costs measured on chDB here (10M rows, 13-bit chunks), in units of one row of a full scan
# (~2.8 ns): a probe's range costs ~26 us, a pre-filter row ~31 ns (read apart, in 256-row
# granules, with its distance). The pre-filter pays while its probes cost less than the scan:
# up to r=12 at 10M rows, r=8 at 1M, r=3 at 100k.
PROBE_COST = 9_300
PREFILTER_ROW_COST = 11
GRANULE_ROWS = 300  # rows read past a probed value's own, on average


def prefilter_pays(probes: int, stored_rows: int, chunk_bits: int) -> bool:
    """Whether `probes` chunk values per query row cost less than scanning `stored_rows`."""
    rows_per_probe = stored_rows / (1 << chunk_bits) + GRANULE_ROWS
    return probes * (PROBE_COST + PREFILTER_ROW_COST * rows_per_probe) < stored_rows


def probes_per_row(nbits: int, radius: int, chunk_bits: int) -> int:
    """How many chunk values one query row of this radius probes."""
    chunks = prefilter_chunks(nbits, chunk_bits)
    radii = chunk_radii(len(chunks), radius)
    return sum(ball_size(chunk.width, r) for chunk, r in zip(chunks, radii, strict=True) if r >= 0)


def build_probes(
    words: npt.NDArray[np.uint64], radius: npt.NDArray[np.int64], nbits: int, chunk_bits: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(query row, cv) for every probe of every row; `cv` = chunk number * 2**chunk_bits + value."""
    chunks = prefilter_chunks(nbits, chunk_bits)
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
            probed = (centre[:, None] ^ masks[None, :]) + (number << chunk_bits)
            rows_out.append(np.repeat(rows, len(masks)))
            cvs_out.append(probed.ravel())
    if not rows_out:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy()
    return np.concatenate(rows_out), np.concatenate(cvs_out)
