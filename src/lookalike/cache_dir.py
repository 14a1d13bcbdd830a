"""Where lookalike keeps what it can compute again: the hash cache and tables built once per machine."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_DIR_VARIABLE = "LOOKALIKE_CACHE_DIR"


def default_cache_dir() -> Path:
    """$LOOKALIKE_CACHE_DIR, else $XDG_CACHE_HOME/lookalike, else ~/.cache/lookalike."""
    folder = os.environ.get(CACHE_DIR_VARIABLE)
    if folder:
        return Path(folder)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lookalike"
