"""PDQ's Jarosz downsampling (box filters that approximate a tent, then centre sampling), float32-exact.

Meta's reference blurs the luma with box filters along rows, then along columns, twice (two box
passes make a tent), and keeps the pixels nearest the centres of a 64x64 grid. Each box filter
keeps a running float32 sum (add the entering pixel, subtract the leaving one, divide by the
current window length), and the rounding of that running sum sets the last bits of every output.
To be bit-exact with the reference this module repeats those float32 steps in the same order, one
vectorised step per position along the filtered axis for all lines at once.

Fast mode hashes a reduced image (JPEG decoded at 1/8 scale, or box-reduced). Blurring that small
image would change the windows and the sample centres; `jarosz_downsample_blocks` instead applies
the full-resolution blur-and-sample, as weights on block means, so fast hashes stay near exact ones.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Float32Array = npt.NDArray[np.float32]
BandWeights = tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]


def jarosz_window(old_size: int, new_size: int) -> int:
    """Box length per pass: half of old/new, rounded up (two passes cover a whole output cell)."""
    return (old_size + 2 * new_size - 1) // (2 * new_size)


def sample_centres(old_size: int, new_size: int) -> list[int]:
    """The input index nearest each output cell's centre, as the reference's decimation picks it."""
    return [int(((index + 0.5) * old_size) / new_size) for index in range(new_size)]


def box_filter_axis0(lines: Float32Array, window: int, keep: Sequence[int] | None = None) -> Float32Array:
    """Box-filter each column of `lines` along axis 0 exactly as the reference's `box1DFloat`.

    The window is centred (half = (window + 2) // 2 samples up to and including the current one)
    and shrinks at both ends, so the output has as many positions as the input. `keep` (ascending,
    repeats allowed) returns only those output positions, and stops once the last is known.
    """
    length = lines.shape[0]
    half = (window + 2) // 2
    if keep is None:
        return _box_filter_positions(lines, window, half, list(range(length)))
    # Positions may repeat (an image smaller than the output grid); compute each once.
    unique = sorted(set(keep))
    filtered = _box_filter_positions(lines, window, half, unique)
    return np.ascontiguousarray(filtered[np.searchsorted(unique, keep)])


def _box_filter_positions(lines: Float32Array, window: int, half: int, wanted: list[int]) -> Float32Array:
    """`box_filter_axis0` for distinct sorted output positions `wanted`."""
    length = lines.shape[0]
    slot = np.full(length, -1)
    slot[wanted] = np.arange(len(wanted))
    last_wanted = wanted[-1] if wanted else -1
    out = np.empty((len(wanted), *lines.shape[1:]), dtype=np.float32)
    total = np.zeros(lines.shape[1:], dtype=np.float32)
    count = 0
    position = 0  # output position being written
    entering = 0  # next sample added to the window
    leaving = 0  # next sample dropped from the window

    def emit() -> bool:
        nonlocal position
        if slot[position] >= 0:
            np.divide(total, np.float32(count), out=out[slot[position]])
        position += 1
        return position > last_wanted

    for _ in range(half - 1):  # fill the first half window; nothing written yet
        np.add(total, lines[entering], out=total)
        entering += 1
        count += 1
    for _ in range(window - half + 1):  # growing window at the start
        np.add(total, lines[entering], out=total)
        entering += 1
        count += 1
        if emit():
            return out
    for _ in range(length - window):  # full window sliding: add, then subtract, then divide
        np.add(total, lines[entering], out=total)
        np.subtract(total, lines[leaving], out=total)
        entering += 1
        leaving += 1
        if emit():
            return out
    for _ in range(half - 1):  # shrinking window at the end
        np.subtract(total, lines[leaving], out=total)
        leaving += 1
        count -= 1
        if emit():
            return out
    return out


def jarosz_downsample(luma: Float32Array, size: int = 64) -> Float32Array:
    """Blur `luma` (rows x columns) with two row-then-column box passes and sample size x size.

    Bit-identical to the reference's `jaroszFilterFloat` (2 passes) followed by `decimateFloat`.
    Lines are transposed before each filter so that it runs along axis 0 (contiguous vectors);
    the last two filters only produce the rows and columns that the sampling keeps.
    """
    rows, cols = luma.shape
    along_rows = jarosz_window(cols, size)
    along_cols = jarosz_window(rows, size)
    image = np.asarray(luma, dtype=np.float32)
    image = box_filter_axis0(np.ascontiguousarray(image.T), along_rows)  # (cols, rows)
    image = box_filter_axis0(np.ascontiguousarray(image.T), along_cols)  # (rows, cols)
    image = box_filter_axis0(np.ascontiguousarray(image.T), along_rows, sample_centres(cols, size))
    return box_filter_axis0(np.ascontiguousarray(image.T), along_cols, sample_centres(rows, size))


def _box_span(position: int, length: int, window: int) -> tuple[int, int]:
    """First and last input index the reference's box filter averages for one output position."""
    half = (window + 2) // 2
    return max(0, position - (window - half)), min(length - 1, position + half - 1)


@functools.lru_cache(maxsize=128)
def jarosz_block_weights(full_size: int, factor: int, size: int = 64) -> BandWeights:
    """The reference's blur-and-sample along one axis, as weights on `factor`-pixel block means.

    Two box passes followed by sampling are one linear map of each full-resolution line; summing
    its weights over each block gives the map for block means (exact for constant blocks). Each
    output uses a short run of consecutive blocks, so the map is kept as a band: output i is
    `sum(weights[i] * blocks[first[i] : first[i] + band])`.
    """
    window = jarosz_window(full_size, size)
    dense = np.zeros((size, full_size))
    for row, centre in enumerate(sample_centres(full_size, size)):
        first, last = _box_span(centre, full_size, window)
        for middle in range(first, last + 1):
            lo, hi = _box_span(middle, full_size, window)
            dense[row, lo : hi + 1] += 1.0 / ((last - first + 1) * (hi - lo + 1))
    blocks = np.add.reduceat(dense, np.arange(0, full_size, factor), axis=1)
    used = blocks != 0
    first_block = used.argmax(axis=1)
    last_block = blocks.shape[1] - 1 - used[:, ::-1].argmax(axis=1)
    band = int((last_block - first_block).max()) + 1
    first_block = np.minimum(first_block, blocks.shape[1] - band)
    columns = first_block[:, None] + np.arange(band)
    return first_block, np.take_along_axis(blocks, columns, axis=1)


def _apply_band(weights: BandWeights, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Band weights applied along axis 0 of `values` (no BLAS: small products, no thread start-up)."""
    first_block, band_weights = weights
    rows = first_block[:, None] + np.arange(band_weights.shape[1])
    return np.asarray(np.einsum("ik,ikj->ij", band_weights, values[rows]))


def jarosz_downsample_blocks(
    block_means: Float32Array, full_shape: tuple[int, int], factor: int, size: int = 64
) -> Float32Array:
    """`jarosz_downsample` of a full-resolution image, estimated from its factor x factor block means.

    For fast mode: a JPEG decoded at 1/8 scale or an image box-reduced by `factor` still gets the
    reference's blur windows and sample centres at full resolution, so the hash stays close to the
    exact one (float64 arithmetic here, so not bit-exact).
    """
    rows, cols = full_shape
    values = np.asarray(block_means, dtype=np.float64)
    sampled_rows = _apply_band(jarosz_block_weights(rows, factor, size), values)
    sampled = _apply_band(jarosz_block_weights(cols, factor, size), np.ascontiguousarray(sampled_rows.T)).T
    return np.ascontiguousarray(sampled, dtype=np.float32)
