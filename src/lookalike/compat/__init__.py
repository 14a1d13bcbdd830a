"""Drop-in replacements for other libraries' APIs (see `lookalike.compat.imagehash`)."""
