"""Hash algorithms: pure functions from pixels to bits, registered by name (see `registry`)."""

from lookalike.algorithms import (  # noqa: F401  (importing registers each family)
    average,
    color,
    crop_resistant,
    difference,
    equalized,
    pdq,
    perceptual,
    wavelet,
)
from lookalike.algorithms.registry import (
    Algorithm,
    HashSpec,
    HashValue,
    algorithm_names,
    get_algorithm,
    parse_spec,
    parse_specs,
)

__all__ = [
    "Algorithm",
    "HashSpec",
    "HashValue",
    "algorithm_names",
    "get_algorithm",
    "parse_spec",
    "parse_specs",
]
