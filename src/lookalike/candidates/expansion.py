"""Second-hop candidates of a duplicate search: two images that each pair with a third.

The candidate keys miss about one accepted pair in a hundred, and nine in ten of those are two
edited copies of one photo (a crop and a captioned copy), each close to the original but with
no key of the low DCT block left in common. Both copies pair with their original, so the pairs
a search has found nominate the pairs it missed: every two partners of one image are judged
against each other, by the same rule. A hub (an image with more partners than `HUB_PARTNERS`)
nominates nothing: its partners are grouped through it anyway, and its pairs would grow with
the square of its partners.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Ids = npt.NDArray[np.int64]
HUB_PARTNERS = 256  # an image with more partners nominates none of their pairs
PATHS_PER_BLOCK = 8_000_000  # two-step paths gathered at once (about 100 MB of sparse products)


def second_hop_pairs(first: Ids, second: Ids, hub_partners: int = HUB_PARTNERS) -> tuple[Ids, Ids]:
    """The unordered pairs (a < b) of entries that share a partner in the pairs (first[i],
    second[i]) but are not a pair themselves, through partners with at most `hub_partners`
    partners. Each pair once, sorted."""
    from scipy.sparse import csr_matrix

    empty = np.zeros(0, dtype=np.int64)
    if not len(first):
        return empty, empty.copy()
    labels, inverse = np.unique(np.concatenate([first, second]), return_inverse=True)
    a, b = inverse[: len(first)], inverse[len(first) :]
    size = len(labels)
    ones = np.ones(2 * len(a), dtype=np.int32)
    links = csr_matrix((ones, (np.concatenate([a, b]), np.concatenate([b, a]))), shape=(size, size))
    links.sum_duplicates()
    links.data[:] = 1
    partners = np.diff(links.indptr)
    hubless = np.flatnonzero(partners <= hub_partners)
    through = links[:, hubless]  # links to images that are no hub
    paths = np.cumsum(through @ partners[hubless])  # two-step paths from each image, at most
    found_a: list[Ids] = []
    found_b: list[Ids] = []
    start = 0
    while start < size:
        done = paths[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(paths, done + PATHS_PER_BLOCK, side="right")))
        reach = (through[start:stop] @ through.T).tocoo()
        rows = reach.row.astype(np.int64) + start
        cols = reach.col.astype(np.int64)
        later = cols > rows
        rows, cols = rows[later], cols[later]
        known = np.asarray(links[rows, cols]).ravel() > 0 if len(rows) else np.zeros(0, dtype=bool)
        found_a.append(rows[~known])
        found_b.append(cols[~known])
        start = stop
    rows, cols = np.concatenate(found_a), np.concatenate(found_b)
    one, other = labels[rows], labels[cols]
    low, high = np.minimum(one, other), np.maximum(one, other)
    order = np.lexsort((high, low))
    return low[order], high[order]


def both_ways(first: Ids, second: Ids) -> tuple[Ids, Ids]:
    """(query id, stored id) for each pair in both directions, sorted by query: a duplicate
    search accepts a pair when either image's variants accept the other."""
    queries = np.concatenate([first, second])
    stored = np.concatenate([second, first])
    order = np.lexsort((stored, queries))
    return queries[order], stored[order]
