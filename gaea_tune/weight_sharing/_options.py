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
GENOTYPE_FROM = ("current", "epoch_mean", "best_valid")
ERM_ARCH_BATCHES = ("own", "shared")
ERM_DATA = ("train+valid", "train")
# PC-DARTS channel proportion 1/k: 4 on the DARTS space (paper); 2 on NB201, whose cells are
# narrow (C=16 -> 8 channels per op; a CPU-scale C=8 still leaves 4).
DEFAULT_PARTIAL_K = {"darts": 4, "nb201": 2}


def default_numerics(device_type: str, space: Any) -> dict[str, bool]:
    """What ``None`` (auto) means for each comparison-level numerics setting (``amp``,
    ``channels_last``, ``cudnn_benchmark``) on a ``device_type`` ("cuda", "cpu", ...) and a
    search ``space`` (a name or a space object): bfloat16 autocast and cuDNN autotuning with
    CUDA only; channels_last (NHWC) with CUDA, and on other devices where the space trains
    faster in it (its ``channels_last_on_cpu``, measured with ``scripts/bench_supernet.py``;
    NCHW for a space that does not say). Both families of a comparison read this one rule.
    Raises ValueError for an unknown space name."""
    if isinstance(space, str):
        from search_spaces import get_space

        space = get_space(space)
    cuda = device_type == "cuda"
    nhwc = cuda or bool(getattr(space, "channels_last_on_cpu", False))
    return {"amp": cuda, "channels_last": nhwc, "cudnn_benchmark": cuda}


@dataclass(frozen=True)
class Method:
    """How a method turns its architecture parameters into supernet mixing weights, and the
    defaults its reference code runs with.

    ``geometry``: ``"simplex"`` (GAEA: parameters are the weights, exponentiated-gradient steps),
    ``"softmax"`` (logits, Adam) or ``None`` (no architecture parameters: RS-WS).
    ``mode``: the supernet's mixed-op mode during search. ``gumbel``: GDAS sampling.
    ``edge_betas``: PC-DARTS edge normalisation weights per node.
    ``arch_lr``: the architecture step size. ``arch_warmup_epochs``: epochs of weight training
    before the first architecture step. ``entropic_reg``: weight of GAEA's entropic regulariser
    (simplex methods). ``cosine_epochs``: length of the weight-lr cosine in epochs (``None``: the
    run's epochs). ``bilevel_genotype``: the ``genotype_from`` a bilevel search defaults to.
    """

    name: str
    geometry: str | None
    mode: str
    gumbel: bool = False
    edge_betas: bool = False
    arch_lr: float = 0.1
    arch_warmup_epochs: int = 0
    entropic_reg: float = 0.0
    cosine_epochs: int | None = None
    bilevel_genotype: str = "current"
    description: str = ""

    @property
    def has_arch(self) -> bool:
        return self.geometry is not None

    @property
    def partial(self) -> bool:
        return self.mode == "partial"

    @property
    def is_gaea(self) -> bool:
        return self.geometry == "simplex"


# References (commit 1604615 of liamcli/gaea_release; f46486e of D-X-Y/AutoDL-Projects, whose
# NB201 algorithms GAEA's NB201 code runs through its fork liamcli/AutoDL-Projects; b74702f of
# yuhuixu1993/PC-DARTS):
# - GAEA (all three): cosine weight lr over ``run.scheduler_epochs: 50`` (gaea_release
#   configs/cnn/config.yaml line 26, read by cnn/train_utils.py lines 186-189), and the genotype
#   of the epoch with the best supernet validation accuracy when bilevel (cnn/train_search.py
#   lines 160-170 and 186-195; single-level keeps the final one).
# - GAEA-DARTS: arch lr 0.1, no regulariser (configs/cnn/search_method/edarts/
#   method_edarts_space_nasbench201.yaml lines 7 and 10).
# - GAEA-GDAS: arch lr 0.01, tau 10 -> 0.1, 50 warm-up epochs, entropic regulariser 0.01
#   (configs/cnn/search_method/egdas/method_egdas_space_nasbench201.yaml lines 7-12; used in
#   cnn/architect/architect_egdas.py lines 31-37, 102 and 134-144).
# - GAEA-PC-DARTS: op and edge lr 0.1, no regulariser, no warm-up (configs/cnn/search_method/
#   eedarts/method_eedarts_space_pcdarts.yaml lines 8-12; cnn/architect/architect_edarts.py has
#   no warm-up).
# - DARTS / GDAS: Adam 3e-4 (AutoDL-Projects scripts-search/NAS-Bench-201-algos/DARTS-V1.sh and
#   GDAS.sh line 42; tau 10 -> 0.1 in GDAS.sh line 41).
# - PC-DARTS: Adam 6e-4 and architecture steps from epoch 15 (PC-DARTS train_search.py lines 43
#   and 156).
METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "gaea-darts", "simplex", "weighted", arch_lr=0.1, cosine_epochs=50,
            bilevel_genotype="best_valid", description="GAEA + DARTS",
        ),
        Method(
            "gaea-gdas", "simplex", "hard", gumbel=True, arch_lr=0.01, arch_warmup_epochs=50,
            entropic_reg=0.01, cosine_epochs=50, bilevel_genotype="best_valid",
            description="GAEA + GDAS",
        ),
        Method(
            "gaea-pcdarts", "simplex", "partial", edge_betas=True, arch_lr=0.1,
            cosine_epochs=50, bilevel_genotype="best_valid",
            description="GAEA + PC-DARTS (op weights and edge betas on simplices)",
        ),
        Method("darts", "softmax", "weighted", arch_lr=3e-4, description="DARTS (first order)"),
        Method("gdas", "softmax", "hard", gumbel=True, arch_lr=3e-4, description="GDAS"),
        Method(
            "pcdarts", "softmax", "partial", edge_betas=True, arch_lr=6e-4,
            arch_warmup_epochs=15,
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


def _as_method(method: str | Method) -> Method:
    return get_method(method) if isinstance(method, str) else method


def default_formulation(method: str | Method, space: str | None) -> str:
    """The formulation ``method``'s own code uses on ``space``.

    Bilevel for DARTS (quark0/darts cnn/train_search.py line 147: the architecture step takes
    the held-out batch), GDAS (AutoDL-Projects exps/NAS-Bench-201-algos/GDAS.py lines 64-69),
    PC-DARTS (PC-DARTS train_search.py lines 102-105 and 147) and GAEA on the DARTS space
    (gaea_release README.md line 22: ``search.single_level=false``). Single-level (ERM) only
    for GAEA on NB201, the variant the GAEA paper reports as best there. RS-WS has no
    architecture step: its formulation is ``"erm"`` and nothing reads it.
    """
    m = _as_method(method)
    if not m.has_arch:
        return "erm"
    if m.is_gaea and space == "nb201":
        return "erm"
    return "bilevel"


def default_lr_min(method: str | Method, space: str | None) -> float:
    """The floor of the weight-lr cosine: 0 for PC-DARTS and GAEA-PC-DARTS on the DARTS space
    (PC-DARTS train_search.py line 26; gaea_release configs/cnn/mode/search_pcdarts.yaml line
    7), 0.001 otherwise (gaea_release configs/cnn/mode/search_nasbench201.yaml line 7, the
    NB201 algorithms' configs/nas-benchmark/algos/*.config ``eta_min``, quark0/darts
    cnn/train_search.py line 25)."""
    m = _as_method(method)
    return 0.0 if (m.partial and space == "darts") else 0.001


# Options that only one kind of method reads: giving them to another method is an error, not
# a silently ignored value.
_ONLY_FOR: dict[str, tuple[str, Any]] = {
    "partial_k": ("partial-channel methods", lambda m: m.partial),
    "tau_max": ("Gumbel methods", lambda m: m.gumbel),
    "tau_min": ("Gumbel methods", lambda m: m.gumbel),
    "rsws_candidates": ("rsws", lambda m: not m.has_arch),
    "rsws_candidate_batches": ("rsws", lambda m: not m.has_arch),
    "arch_lr": ("methods with architecture weights", lambda m: m.has_arch),
    "arch_weight_decay": ("softmax methods", lambda m: m.geometry == "softmax"),
    "arch_warmup_epochs": ("methods with architecture weights", lambda m: m.has_arch),
    "entropic_reg": ("GAEA (simplex) methods", lambda m: m.is_gaea),
    "erm_arch_batch": ("methods with architecture weights", lambda m: m.has_arch),
    "erm_data": ("methods with architecture weights", lambda m: m.has_arch),
}


@dataclass(frozen=True)
class SearchOptions:
    """Options of one weight-sharing search.

    A ``None`` takes the default of the method (and space) as its reference code has it;
    :meth:`resolve` lists what will actually run. The shared defaults (C=16, N=5, 25 epochs,
    batch 64, weight lr 0.025, momentum 0.9, weight decay 3e-4, gradient clip 5) are GAEA's
    on NB201.

    - ``formulation``: ``"erm"`` (single level: weights and architecture both train on the
      training data) or ``"bilevel"`` (architecture steps on the held-out split); ``None`` ->
      :func:`default_formulation` (bilevel for DARTS, GDAS, PC-DARTS and GAEA on the DARTS
      space; ERM for GAEA on NB201).
    - ``erm_arch_batch``: under ERM, ``"own"`` draws every architecture step's batch from its
      own loader over the training data, in its own order (GAEA: gaea_release
      cnn/train_search.py line 241 with cnn/train_utils.py lines 231-246); ``"shared"`` reuses
      the weight step's batch. ``None`` -> ``"own"``, or ``"shared"`` with ``erm_joint``.
    - ``erm_data``: under ERM, ``"train+valid"`` trains the weights and the architecture on
      every training image the dataset has, its held-out valid part included when that part
      comes from the training set (``cifar10-valid``: all 50k, as GAEA's single level does:
      gaea_release cnn/train_utils.py lines 231-246); ``"train"`` keeps them to the train
      split (a cleaner search signal, not GAEA's setting). ``None`` -> ``"train+valid"``. The
      valid split still gives the supernet's monitored accuracy, which ERM never selects by.
    - ``erm_joint``: under ERM, compute the architecture and weight gradients from ONE
      forward/backward pass on the weight batch and update both (a simultaneous instead of an
      alternating first-order step; about half the compute per batch). A cheaper variant.
    - ``arch_lr``: ``None`` -> the method's (GAEA-DARTS / GAEA-PC-DARTS 0.1, GAEA-GDAS 0.01,
      DARTS / GDAS Adam 3e-4, PC-DARTS 6e-4). At CPU scale the softmax controls barely move in
      a few epochs at 3e-4; raise it and say so when comparing.
    - ``arch_weight_decay``: Adam's weight decay on the logits (softmax methods); ``None`` ->
      1e-3.
    - ``entropic_reg``: GAEA's regulariser ``entropic_reg * sum(theta * log(K * theta))`` (the
      KL divergence of each edge's weights from uniform) added to the architecture loss;
      ``None`` -> 0.01 for GAEA-GDAS, 0 for the other GAEA methods.
    - ``arch_warmup_epochs``: epochs of weight training before the first architecture step;
      ``None`` -> 15 for PC-DARTS, 50 for GAEA-GDAS, 0 otherwise. Must leave at least one
      epoch with architecture steps.
    - ``tau_max`` / ``tau_min``: GDAS's Gumbel temperature, linear from ``tau_max`` at the
      first architecture epoch to ``tau_min`` (see :func:`gumbel_tau`).
    - ``lr_min``: the weight-lr cosine's floor; ``None`` -> :func:`default_lr_min`.
    - ``lr_cosine_epochs``: length of the weight-lr cosine in epochs; ``None`` -> 50 for GAEA
      methods (GAEA's ``run.scheduler_epochs``, so a 25-epoch NB201 run ends half-way down the
      cosine), the run's ``epochs`` otherwise. Must be at least ``epochs``.
    - ``rsws_candidates``: random architectures RS-WS ranks after every epoch (NB201's
      RANDOM-NAS: 100); ``rsws_candidate_batches``: validation batches each candidate is
      scored on (RANDOM-NAS: 1; 0: the whole validation split).
    - ``genotype_from``: ``"current"`` (argmax of the final weights), ``"epoch_mean"`` (argmax
      of the weights averaged over the epoch's architecture steps; stabler when weights are
      near uniform) or ``"best_valid"`` (the genotype of the epoch whose supernet validation
      accuracy is highest so far); ``None`` -> ``"best_valid"`` for bilevel GAEA, else
      ``"current"``.
    - ``exclude_none``: ``None`` -> True on NB201 (as GAEA), False on DARTS (whose parse
      ignores ``none``). ``partial_k``: ``None`` -> :data:`DEFAULT_PARTIAL_K`; it must divide
      ``C``. ``amp`` and ``channels_last``: ``None`` -> :func:`default_numerics` of the device
      and space (bfloat16 autocast on CUDA only; NHWC on CUDA, and on the CPU where the
      space trains faster in it).

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
        "lr_min": Interval(float, 0.0, 10.0, nullable=True),
        "lr_cosine_epochs": Interval(int, 1, 10_000, nullable=True),
        "momentum": Interval(float, 0.0, 0.999),
        "weight_decay": Interval(float, 0.0, 1.0),
        "grad_clip": Interval(float, 0.0, 1e6),
        "arch_lr": Interval(float, 1e-8, 100.0, nullable=True),
        "arch_weight_decay": Interval(float, 0.0, 1.0, nullable=True),
        "entropic_reg": Interval(float, 0.0, 100.0, nullable=True),
        "arch_warmup_epochs": Interval(int, 0, 10_000, nullable=True),
        "formulation": OneOf(FORMULATIONS, nullable=True),
        "erm_arch_batch": OneOf(ERM_ARCH_BATCHES, nullable=True),
        "erm_data": OneOf(ERM_DATA, nullable=True),
        "erm_joint": Boolean(),
        "exclude_none": Boolean(nullable=True),
        "partial_k": Interval(int, 1, 64, nullable=True),
        "tau_max": Interval(float, 1e-3, 100.0),
        "tau_min": Interval(float, 1e-3, 100.0),
        "rsws_candidates": Interval(int, 1, 100_000),
        "rsws_candidate_batches": Interval(int, 0, 100_000),
        "genotype_from": OneOf(GENOTYPE_FROM, nullable=True),
        "amp": Boolean(nullable=True),
        "channels_last": Boolean(nullable=True),
    }

    C: int = 16
    N: int = 5
    epochs: int = 25
    batch_size: int = 64
    eval_batch_size: int = 256
    lr: float = 0.025
    lr_min: float | None = None
    lr_cosine_epochs: int | None = None
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    arch_lr: float | None = None
    arch_weight_decay: float | None = None
    entropic_reg: float | None = None
    arch_warmup_epochs: int | None = None
    formulation: str | None = None
    erm_arch_batch: str | None = None
    erm_data: str | None = None
    erm_joint: bool = False
    exclude_none: bool | None = None
    partial_k: int | None = None
    tau_max: float = 10.0
    tau_min: float = 0.1
    rsws_candidates: int = 100
    rsws_candidate_batches: int = 1
    genotype_from: str | None = None
    amp: bool | None = None
    channels_last: bool | None = None

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        checked = validate_options("search", values, self._parameter_constraints)
        for name, value in checked.items():  # cast ints given for floats
            object.__setattr__(self, name, value)
        _check_cross("search", checked)

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
        others, PC-DARTS's ``partial_k`` (or the space's default) must divide ``C``, and the
        architecture warm-up (given or the method's) must leave an epoch of architecture steps.
        Returns the checked values; raises :class:`OptionError` with ``where.key`` in it.
        """
        checked = validate_options(where, options, cls._parameter_constraints)
        merged = {f.name: f.default for f in fields(cls)}
        merged.update(checked)
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
                C = int(merged["C"])
                k = merged["partial_k"] or DEFAULT_PARTIAL_K.get(space or "", 4)
                if C % k:
                    divisors = [d for d in range(1, C + 1) if C % d == 0]
                    raise OptionError(
                        f"{where}.partial_k: {k} does not divide C={C} (ops would get C/k "
                        f"channels); allowed: a divisor of C: {', '.join(map(str, divisors))}"
                    )
            check_warmup(where, m, merged["arch_warmup_epochs"], merged["epochs"])
        _check_cross(where, merged)
        return checked

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SearchOptions:
        """Options from a mapping; unknown keys are an error."""
        return cls(**validate_options("search", values, cls._parameter_constraints))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def resolve(self, method: str | Method, space: str | None) -> dict[str, Any]:
        """Every option with the method's and space's defaults filled in: what will run.

        ``amp`` and ``channels_last`` stay ``None`` where they depend on the device; the
        architecture options are ``None`` for a method without architecture weights.
        """
        m = _as_method(method)
        out = self.to_dict()
        formulation = self.formulation or default_formulation(m, space)
        out["formulation"] = formulation
        out["lr_min"] = default_lr_min(m, space) if self.lr_min is None else self.lr_min
        if self.lr_cosine_epochs is not None:
            out["lr_cosine_epochs"] = self.lr_cosine_epochs
        elif m.cosine_epochs is not None:  # GAEA: a fixed period; a longer run stretches it
            out["lr_cosine_epochs"] = max(m.cosine_epochs, self.epochs)
        else:
            out["lr_cosine_epochs"] = self.epochs
        if self.exclude_none is None:
            out["exclude_none"] = space == "nb201"
        if m.partial:
            out["partial_k"] = self.partial_k or DEFAULT_PARTIAL_K.get(space or "", 4)
        if self.genotype_from is None:
            bilevel = m.has_arch and formulation == "bilevel"
            out["genotype_from"] = m.bilevel_genotype if bilevel else "current"
        if not m.has_arch:
            for key in ("arch_lr", "arch_weight_decay", "entropic_reg", "arch_warmup_epochs",
                        "erm_arch_batch", "erm_data"):  # fmt: skip
                out[key] = None
            return out
        out["arch_lr"] = m.arch_lr if self.arch_lr is None else self.arch_lr
        if m.geometry == "softmax":
            out["arch_weight_decay"] = (
                1e-3 if self.arch_weight_decay is None else self.arch_weight_decay
            )
            out["entropic_reg"] = None
        else:
            out["arch_weight_decay"] = None
            out["entropic_reg"] = m.entropic_reg if self.entropic_reg is None else self.entropic_reg
        out["arch_warmup_epochs"] = (
            m.arch_warmup_epochs if self.arch_warmup_epochs is None else self.arch_warmup_epochs
        )
        if self.erm_arch_batch is None:
            out["erm_arch_batch"] = "shared" if self.erm_joint else "own"
        if formulation != "erm":
            out["erm_data"] = None
        elif self.erm_data is None:
            out["erm_data"] = "train+valid"
        return out


def check_warmup(where: str, method: Method, warmup: int | None, epochs: int) -> None:
    """An architecture warm-up must leave at least one epoch of architecture steps."""
    if not method.has_arch:
        return
    given = warmup is not None
    warmup = method.arch_warmup_epochs if warmup is None else warmup
    if warmup >= epochs:
        origin = "" if given else f" ({method.name}'s default, from its reference code)"
        raise OptionError(
            f"{where}.arch_warmup_epochs: {warmup}{origin} leaves no architecture step in "
            f"{epochs} epochs; allowed: arch_warmup_epochs < epochs (raise epochs or set a "
            "shorter arch_warmup_epochs)"
        )


def _check_cross(where: str, values: dict[str, Any]) -> None:
    """Rules between options that hold for every method and space."""
    if values["tau_min"] > values["tau_max"]:
        raise OptionError(
            f"{where}.tau_min: {values['tau_min']!r} is above tau_max={values['tau_max']!r}; "
            "allowed: tau_min <= tau_max"
        )
    cosine = values["lr_cosine_epochs"]
    if cosine is not None and cosine < values["epochs"]:
        raise OptionError(
            f"{where}.lr_cosine_epochs: {cosine!r} is below epochs={values['epochs']!r}; "
            "allowed: lr_cosine_epochs >= epochs"
        )
    if values["erm_joint"] and values["erm_arch_batch"] == "own":
        raise OptionError(
            f"{where}.erm_arch_batch: 'own' contradicts erm_joint=true (one pass on the weight "
            "batch); allowed: shared or null with erm_joint"
        )
