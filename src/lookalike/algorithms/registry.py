"""Hash algorithms by name: what each computes, how long its hash is, and how to compare it.

An `Algorithm` carries everything the rest of lookalike needs to know, so the pipeline, the index
and the matcher never special-case one: its bit length, the working resolution it needs in fast
mode, its dihedral (rotation/flip) variants, whether it has a quality score (and below which
quality its hashes are unreliable), and its default "same picture" threshold. A `HashSpec` is an
algorithm with its size parameter, written `"phash"` or `"phash:16"` (hash size, or colorhash's
bin bits, after a colon).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lookalike.errors import UnknownAlgorithmError
from lookalike.hash import Hash, MultiHash

if TYPE_CHECKING:
    from lookalike.candidates.keys import KeyLayout
    from lookalike.prepare import ImageView

HashValue = Hash | MultiHash
ComputeFn = Callable[["ImageView", int], HashValue]
DihedralFn = Callable[["ImageView", int], list[Hash]]


@dataclass(frozen=True)
class Algorithm:
    """A registered hash algorithm."""

    name: str
    summary: str
    param_name: str  # "hash_size" or "binbits"
    default_param: int
    valid_params: Callable[[int], bool]
    nbits: Callable[[int], int]  # bit length for a parameter (nominal for whash_db4 on tiny images)
    compute: ComputeFn
    working_side: Callable[[int], int]  # shorter side the fast-mode working image keeps
    max_distance: Callable[[int], int]  # default "same picture" threshold
    dihedral: DihedralFn | None = None
    has_quality: bool = False
    min_quality: int = 0  # hashes whose quality is below this are flagged unreliable (lookalike.quality)
    multi: bool = False  # returns a MultiHash (crop-resistant)
    aliases: tuple[str, ...] = field(default_factory=tuple)
    # Raised whenever the algorithm's output changes, so caches keyed on it are not reused.
    revision: int = 1
    # Candidate keys (lookalike.candidates): how short exact keys are cut from a hash of a given
    # parameter (None: the hash is short enough for exact search), and the family whose key
    # tables hold its stored hashes: algorithms of one family share bit geometry, so a query
    # hash of any of them may meet a stored hash of another (a trimmed copy, an untrimmed one).
    candidate_layout: Callable[[int], KeyLayout | None] | None = None
    candidate_family: str | None = None
    # Whether a query's own hash is compared with the stored hashes' variants too (the pictures
    # inside a stored composite: lookalike.candidates.stored_variants), not only the query's
    # variants with the stored hash.
    stored_variants_searched: bool = False

    def __reduce__(self) -> tuple[Callable[[str], Algorithm], tuple[str]]:
        # Algorithms hold functions; across processes they travel by name.
        return (get_algorithm, (self.name,))


@dataclass(frozen=True)
class HashSpec:
    """An algorithm with its parameter; `key` is its canonical name ("phash", "phash:16")."""

    algorithm: Algorithm
    param: int

    @property
    def key(self) -> str:
        if self.param == self.algorithm.default_param:
            return self.algorithm.name
        return f"{self.algorithm.name}:{self.param}"

    @property
    def nbits(self) -> int:
        return self.algorithm.nbits(self.param)

    @property
    def working_side(self) -> int:
        return self.algorithm.working_side(self.param)

    @property
    def max_distance(self) -> int:
        return self.algorithm.max_distance(self.param)

    def compute(self, view: ImageView) -> HashValue:
        return self.algorithm.compute(view, self.param)

    @property
    def candidate_layout(self) -> KeyLayout | None:
        """How candidate keys are cut from this hash, or None (exact search serves it)."""
        make = self.algorithm.candidate_layout
        return None if make is None else make(self.param)

    @property
    def candidate_family(self) -> str | None:
        """The key tables this hash is stored in (None without a layout)."""
        if self.candidate_layout is None:
            return None
        family = self.algorithm.candidate_family or self.algorithm.name
        return family if self.param == self.algorithm.default_param else f"{family}:{self.param}"

    def dihedral(self, view: ImageView) -> list[Hash]:
        if self.algorithm.dihedral is None:
            raise UnknownAlgorithmError(f"{self.key} has no dihedral variants")
        return self.algorithm.dihedral(view, self.param)

    def __str__(self) -> str:
        return self.key


_REGISTRY: dict[str, Algorithm] = {}


def register(algorithm: Algorithm) -> Algorithm:
    for name in (algorithm.name, *algorithm.aliases):
        if name in _REGISTRY:
            raise ValueError(f"algorithm {name!r} is registered twice")
        _REGISTRY[name] = algorithm
    return algorithm


def algorithm_names() -> list[str]:
    """Canonical names of every registered algorithm, in registration order."""
    seen: dict[str, None] = {}
    for algorithm in _REGISTRY.values():
        seen[algorithm.name] = None
    return list(seen)


def get_algorithm(name: str) -> Algorithm:
    try:
        return _REGISTRY[name.strip().lower()]
    except KeyError:
        known = ", ".join(algorithm_names())
        raise UnknownAlgorithmError(f"unknown hash algorithm {name!r}; known: {known}") from None


def parse_spec(text: str | HashSpec) -> HashSpec:
    """Parse "phash", "phash:16" or "colorhash:4" into a HashSpec."""
    if isinstance(text, HashSpec):
        return text
    name, _, param_text = text.strip().partition(":")
    algorithm = get_algorithm(name)
    if not param_text:
        return HashSpec(algorithm, algorithm.default_param)
    try:
        param = int(param_text)
    except ValueError:
        raise UnknownAlgorithmError(f"{text!r}: {algorithm.param_name} must be an integer") from None
    if not algorithm.valid_params(param):
        raise UnknownAlgorithmError(f"{text!r}: {algorithm.param_name}={param} is not supported")
    return HashSpec(algorithm, param)


def parse_specs(texts: str | Iterable[str | HashSpec]) -> list[HashSpec]:
    """Parse a comma-separated string or a list of names, dropping repeats."""
    items: Iterable[str | HashSpec] = (
        [part for part in texts.split(",") if part.strip()] if isinstance(texts, str) else texts
    )
    specs: dict[str, HashSpec] = {}
    for item in items:
        spec = parse_spec(item)
        specs.setdefault(spec.key, spec)
    if not specs:
        raise UnknownAlgorithmError("no hash algorithm was requested")
    return list(specs.values())
