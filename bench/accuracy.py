"""Accuracy benchmark: recall at 99.9% / 99.99% precision per transform family, lookalike vs peers.

    python bench/accuracy.py --photos ../shared/photos --out docs/accuracy

A thin wrapper over `lookalike bench accuracy` (same options); see docs/accuracy.md.
"""

from __future__ import annotations

import sys

from lookalike.cli.app import main

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "bench", "accuracy", *sys.argv[1:]]
    main()
