"""The matcher's candidate stage: which stored images are worth judging for a query.

    hashes (query variants)  ->  candidates (keys.py, tables.py)  ->  verdicts (judge.py)

A rule like `near-duplicate` accepts pairs whose 256-bit hashes are up to 56 bits apart, under any
of a query's rotations, flips, crops and trims. Exact search at that radius reads most of a large
index, so the default nominates candidates by short exact keys cut from the hash's most stable
bits (`keys.py`), stored in sorted tables (`tables.py`); the rule then judges every candidate on
every hash it names, vectorised over whole batches (`judge.py`). The exact plan (range searches at
the rule's radii) stays selectable; docs/candidates.md measures how many of its matches the keys
find.
"""
