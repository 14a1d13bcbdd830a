"""De-duplication: a duplicate's journey from matching pairs to the copy kept and the rest acted on.

pairs.py        pairs of stored images a matcher rule accepts (the candidate stage's output)
grouping.py     pairs -> groups (connected components, or star-shaped with `strict`)
fidelity.py     what one member is as a file: pixels, lossless or JPEG quality, EXIF, enlarged or not
relations.py    what a member is to the kept copy (identical, resized, rotated, cropped, edited, ...)
best_copy.py    which member of a group to keep (the original, or `--keep` rules)
describe.py     groups verified on their files: the copy to keep first, relations, tiers
collection.py   a folder or an index de-duplicated end to end (`lookalike dupes`, the demo)
actions.py      move, delete or hard-link the copies not kept (dry run first, logged)
report.py       the review page (one offline HTML file)
"""

from lookalike.dedupe.grouping import Group

__all__ = ["Group"]
