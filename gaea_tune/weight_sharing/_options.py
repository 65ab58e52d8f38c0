"""Weight-sharing methods and their search options: plain Python (no torch), so configuration
validation and the runtime read the same table.

:class:`SearchOptions` carries its constraints (``_parameter_constraints``) and the
cross-option rules that depend on the space and the method (:meth:`SearchOptions.validate_params`);
the supernet trainable and ``gaea_tune.config`` both call them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from gaea_tune._constraints import Boolean, Interval, OneOf, OptionError, validate_options

FORMULATIONS = ("erm", "bilevel")
GENOTYPE_FROM = ("current", "epoch_mean")
# PC-DARTS channel proportion 1/k: 4 on the DARTS space (paper); 2 on NB201, whose cells are
# narrow (C=16 -> 8 channels per op; a CPU-scale C=8 still leaves 4).
DEFAULT_PARTIAL_K = {"darts": 4, "nb201": 2}


@dataclass(frozen=True)
class Method:
    """How a method turns its architecture parameters into supernet mixing weights.

    ``geometry``: ``"simplex"`` (GAEA: parameters are the weights, exponentiated-gradient steps),
    ``"softmax"`` (logits, Adam) or ``None`` (no architecture parameters: RS-WS).
    ``mode``: the supernet's mixed-op mode during search. ``gumbel``: GDAS sampling.
    ``edge_betas``: PC-DARTS edge normalisation weights per node.
    """

    name: str
    geometry: str | None
    mode: str
    gumbel: bool = False
    edge_betas: bool = False
    arch_lr: float = 0.1
    description: str = ""

    @property
    def has_arch(self) -> bool:
        return self.geometry is not None

    @property
    def partial(self) -> bool:
        return self.mode == "partial"


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("gaea-darts", "simplex", "weighted", arch_lr=0.1, description="GAEA + DARTS"),
        Method("gaea-gdas", "simplex", "hard", gumbel=True, arch_lr=0.1, description="GAEA + GDAS"),
        Method(
            "gaea-pcdarts", "simplex", "partial", edge_betas=True, arch_lr=0.1,
            description="GAEA + PC-DARTS (op weights and edge betas on simplices)",
        ),
        Method("darts", "softmax", "weighted", arch_lr=3e-4, description="DARTS (first order)"),
        Method("gdas", "softmax", "hard", gumbel=True, arch_lr=3e-4, description="GDAS"),
        Method(
            "pcdarts", "softmax", "partial", edge_betas=True, arch_lr=6e-4,
            description="PC-DARTS (partial channels, edge normalisation)",
        ),
        Method("rsws", None, "single", arch_lr=0.0, description="random search, weight sharing"),
    )
}  # fmt: skip


def get_method(name: str) -> Method:
    """The method called ``name`` (see :data:`METHODS`)."""
    if name not in METHODS:
        raise ValueError(f"unknown search method {name!r}; allowed: {', '.join(METHODS)}")
    return METHODS[name]


# Options that only one kind of method reads: giving them to another method is an error, not
# a silently ignored value.
_ONLY_FOR: dict[str, tuple[str, Any]] = {
    "partial_k": ("partial-channel methods", lambda m: m.partial),
    "tau_max": ("Gumbel methods", lambda m: m.gumbel),
    "tau_min": ("Gumbel methods", lambda m: m.gumbel),
    "rsws_candidates": ("rsws", lambda m: not m.has_arch),
    "arch_lr": ("methods with architecture weights", lambda m: m.has_arch),
    "arch_weight_decay": ("softmax methods", lambda m: m.geometry == "softmax"),
}


@dataclass(frozen=True)
class SearchOptions:
    """Options of one weight-sharing search (paper defaults for GAEA on NB201).

    ``arch_lr``: ``None`` takes the method's default (GAEA 0.1; DARTS/GDAS Adam 3e-4; PC-DARTS
    6e-4). At CPU scale the softmax controls barely move in a few epochs at 3e-4; raise it and
    say so when comparing. ``erm_joint``: under ERM, compute the architecture and weight
    gradients from ONE forward/backward pass and update both (a simultaneous instead of an
    alternating first-order step; about half the compute per batch). ``genotype_from``:
    ``"current"`` (paper: argmax of the final weights) or ``"epoch_mean"`` (argmax of the
    weights averaged over the epoch's architecture steps; stabler when weights are near
    uniform). ``exclude_none``: ``None`` -> True on NB201 (as GAEA), False on DARTS (whose
    parse ignores ``none``). ``partial_k``: ``None`` -> :data:`DEFAULT_PARTIAL_K`; it must
    divide ``C``. ``amp``: ``None`` -> bfloat16 autocast on CUDA, off on CPU.
    ``channels_last``: ``None`` -> NHWC activations on CUDA only; on CPU, NHWC sends small
    strided 1x1 convolutions to oneDNN kernels whose weight gradient writes out of bounds.

    Raises :class:`gaea_tune._constraints.OptionError` (a ``ValueError``) naming the option,
    the bad value and what is allowed.
    """

    # name -> constraint; the YAML validator reads this same table.
    _parameter_constraints: ClassVar[dict[str, Any]] = {
        "C": Interval(int, 1, 1024),
        "N": Interval(int, 1, 64),
        "epochs": Interval(int, 1, 10_000),
        "batch_size": Interval(int, 1, 65_536),
        "eval_batch_size": Interval(int, 1, 65_536),
        "lr": Interval(float, 1e-6, 10.0),
        "lr_min": Interval(float, 0.0, 10.0),
        "momentum": Interval(float, 0.0, 0.999),
        "weight_decay": Interval(float, 0.0, 1.0),
        "grad_clip": Interval(float, 0.0, 1e6),
        "arch_lr": Interval(float, 1e-8, 100.0, nullable=True),
        "arch_weight_decay": Interval(float, 0.0, 1.0, nullable=True),
        "formulation": OneOf(FORMULATIONS),
        "erm_joint": Boolean(),
        "exclude_none": Boolean(nullable=True),
        "partial_k": Interval(int, 1, 64, nullable=True),
        "tau_max": Interval(float, 1e-3, 100.0),
        "tau_min": Interval(float, 1e-3, 100.0),
        "rsws_candidates": Interval(int, 1, 100_000),
        "genotype_from": OneOf(GENOTYPE_FROM),
        "amp": Boolean(nullable=True),
        "channels_last": Boolean(nullable=True),
    }

    C: int = 16
    N: int = 5
    epochs: int = 25
    batch_size: int = 64
    eval_batch_size: int = 256
    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    arch_lr: float | None = None
    arch_weight_decay: float | None = None
    formulation: str = "erm"
    erm_joint: bool = False
    exclude_none: bool | None = None
    partial_k: int | None = None
    tau_max: float = 10.0
    tau_min: float = 0.1
    rsws_candidates: int = 10
    genotype_from: str = "current"
    amp: bool | None = None
    channels_last: bool | None = None

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        checked = validate_options("search", values, self._parameter_constraints)
        for name, value in checked.items():  # cast ints given for floats
            object.__setattr__(self, name, value)
        if self.tau_min > self.tau_max:
            raise OptionError(
                f"search.tau_min: {self.tau_min!r} is above tau_max={self.tau_max!r}; "
                "allowed: tau_min <= tau_max"
            )

    @classmethod
    def validate_params(
        cls,
        where: str,
        options: dict[str, Any],
        *,
        space: str | None = None,
        method: str | None = None,
    ) -> dict[str, Any]:
        """Check ``options`` (a subset of the fields) for ``method`` on ``space``.

        Besides each value's range: an option only one kind of method reads is refused for the
        others, and PC-DARTS's ``partial_k`` (or the space's default) must divide ``C``.
        Returns the checked values; raises :class:`OptionError` with ``where.key`` in it.
        """
        checked = validate_options(where, options, cls._parameter_constraints)
        if method is not None:
            m = get_method(method)
            for key in checked:
                if key in _ONLY_FOR and not _ONLY_FOR[key][1](m):
                    raise OptionError(
                        f"{where}.{key}: method {m.name!r} does not use it; it applies to "
                        f"{_ONLY_FOR[key][0]} only: "
                        + ", ".join(n for n, x in METHODS.items() if _ONLY_FOR[key][1](x))
                    )
            if m.partial:
                C = int(checked.get("C", cls.C))
                k = checked.get("partial_k") or DEFAULT_PARTIAL_K.get(space or "", 4)
                if C % k:
                    divisors = [d for d in range(1, C + 1) if C % d == 0]
                    raise OptionError(
                        f"{where}.partial_k: {k} does not divide C={C} (ops would get C/k "
                        f"channels); allowed: a divisor of C: {', '.join(map(str, divisors))}"
                    )
        tau_max = checked.get("tau_max", cls.tau_max)
        tau_min = checked.get("tau_min", cls.tau_min)
        if tau_min > tau_max:
            raise OptionError(
                f"{where}.tau_min: {tau_min!r} is above tau_max={tau_max!r}; "
                "allowed: tau_min <= tau_max"
            )
        return checked

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SearchOptions:
        """Options from a mapping; unknown keys are an error."""
        return cls(**validate_options("search", values, cls._parameter_constraints))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
