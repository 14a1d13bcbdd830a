"""Benchmarks that ship with the package, so `lookalike bench ...` runs them on any folder of photos.

`transforms` is the registry of edits applied to photos; `metrics` turns distances into recall at a
fixed precision; `accuracy` runs the whole measurement.
"""
