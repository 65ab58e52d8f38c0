"""What a comparison will actually run: every setting of every method with its defaults filled in.

``gaea-tune validate FILE --show`` prints :func:`resolved_settings` as YAML, and ``compare`` logs
the same settings as parameters on each method's MLflow run (and the whole as
``resolved.json`` on the comparison run), so a protocol can be checked before a GPU-hour is
spent and read back afterwards. Nothing here starts Ray or MLflow.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from gaea_tune.config import ExperimentConfig, MethodConfig


def storage_folder(config: ExperimentConfig) -> str:
    """The comparison's Ray Tune storage folder, absolute (a URI as given): ``storage_path``,
    else ``OUTPUT_DIR/ray``; each invocation writes a sub-folder of it."""
    workdir = Path(config.output_dir).expanduser().resolve()
    storage = config.storage_path or str(workdir / "ray")
    return storage if "://" in storage else str(Path(storage).expanduser().resolve())


def method_options(config: ExperimentConfig, method: MethodConfig) -> dict[str, Any]:
    """A method's options plus the comparison-level settings every method obeys: the candidate
    op set (``space.exclude_none``), so both families search the same space."""
    options = dict(method.options)
    exclude_none = bool(config.space.get("exclude_none", False))
    if method.family == "weight-sharing" or config.space["name"] == "nb201":
        options["exclude_none"] = exclude_none  # DARTS-space genotypes never hold `none`
    if method.family == "weight-sharing":  # the standalone trainable reads config["numerics"]
        for key in ("amp", "channels_last"):
            options[key] = config.numerics.get(key)
    return options


def resolve_numerics(numerics: dict[str, Any] | None, on_gpu: bool, space: str) -> dict[str, bool]:
    """``numerics`` with ``None`` (auto) resolved by the one rule both families read
    (:func:`gaea_tune.weight_sharing.default_numerics`): bf16 autocast and cuDNN autotuning
    with CUDA only; channels_last with CUDA, and on the CPU where ``space`` trains faster in
    it (NB201: yes; DARTS: no)."""
    from gaea_tune.weight_sharing import default_numerics

    auto = default_numerics("cuda" if on_gpu else "cpu", space)
    given = dict(numerics or {})
    return {key: auto[key] if given.get(key) is None else bool(given[key]) for key in auto}


def precision(amp: bool) -> str:
    """How a trainable computes under ``numerics.amp``, in the words every report uses."""
    return "bfloat16 autocast" if amp else "float32"


def _final_retrain(config: ExperimentConfig, numerics: dict[str, bool]) -> dict[str, Any] | None:
    """The retrain protocol, the numerics it trains in (the comparison's) and when it runs."""
    if not config.final_retrain_epochs:
        return None
    from gaea_tune.datasets import ground_truth_column

    column = ground_truth_column(config.space["name"], config.dataset["name"])
    runs = (
        f"never here: the NB201 table gives the ground truth ({column})"
        if column
        else "for each incumbent, after its search: no table gives ground truth here"
    )
    return {
        **config.final_retrain,
        "precision": precision(numerics["amp"]),
        "channels_last": numerics["channels_last"],
        "runs": runs,
    }


def _signature_defaults(cls: type, keys: Any) -> dict[str, Any]:
    params = inspect.signature(cls.__init__).parameters
    return {k: params[k].default for k in keys if k in params}


def _weight_sharing(config: ExperimentConfig, method: MethodConfig) -> dict[str, Any]:
    from gaea_tune.weight_sharing import SearchOptions, get_method
    from gaea_tune.weight_sharing._options import _ONLY_FOR

    space = config.space["name"]
    given = {**method_options(config, method), "C": config.space["C"], "N": config.space["N"]}
    settings = SearchOptions.from_dict(given).resolve(method.method, space)
    if "epochs" not in method.options:  # the supernet trainable plans the length from the budget
        settings["epochs"] = "from the budget: as many as the first epoch's cost affords"
        if settings.get("lr_cosine_epochs") == SearchOptions.epochs:
            settings["lr_cosine_epochs"] = "the planned epochs"
    numerics = resolve_numerics(config.numerics, config.device_kind == "gpu", space)
    settings["cudnn_benchmark"] = numerics["cudnn_benchmark"]
    m = get_method(method.method)
    for key, (_, applies) in _ONLY_FOR.items():  # settings this method never reads
        if key in settings and not applies(m):
            settings[key] = None
    if settings["formulation"] != "erm":
        settings["erm_arch_batch"] = settings["erm_joint"] = None
    for key in ("amp", "channels_last"):  # None: the device's and space's default
        if settings.get(key) is None:
            settings[key] = numerics[key]
    settings["precision"] = precision(bool(settings.get("amp")))
    arch = settings.get("arch_lr") is not None
    bilevel = settings["formulation"] == "bilevel"
    weights_on = "train+valid" if settings.get("erm_data") == "train+valid" else "train"
    settings["data"] = {
        "weights": weights_on,
        "architecture": ("valid" if bilevel else weights_on) if arch else None,
        "search_signal": "valid",
    }
    return settings


def _standalone(config: ExperimentConfig, method: MethodConfig) -> dict[str, Any]:
    from gaea_tune.baselines._options import (
        LIVE_BOHB_ETA,
        TRAINING_DEFAULTS,
        live_search_constraints,
        tabular_constraints,
    )
    from gaea_tune.baselines._registry import SEARCHERS

    options = method_options(config, method)
    cls = SEARCHERS[method.method]
    if config.mode == "tabular":
        from gaea_tune.baselines._tabular import tabular_options

        keys = tabular_constraints(method.method)
        search = {**_signature_defaults(cls, keys), **tabular_options(method.method, options)}
        signal = "the NB201 table's 12-epoch validation accuracy"
        cost = "12 x the table's recorded epoch seconds per evaluation"
        if method.method == "bohb":
            search["style"] = options.get("style") or "table"
            if search.get("eta") is None:
                search["eta"] = search["max_fidelity"] / search["min_fidelity"]
            if search.get("fixed_fidelity") is None:
                signal = "the table's validation accuracy at the job's fidelity (12 or 200 epochs)"
                cost = "the job's fidelity x the table's recorded epoch seconds"
        return {"search": search, "search_signal": signal, "cost": cost}
    keys = live_search_constraints(method.method)
    search = _signature_defaults(cls, keys)
    if method.method == "bohb":
        search["reduction_factor"] = LIVE_BOHB_ETA
        search["fidelity"] = "epochs (HyperBandForBOHB, max_t = epochs)"
    if config.dataset.get("simulate") == "table":
        return _table_backed(config, method, options, search, keys)
    search.update({k: v for k, v in options.items() if k in keys})
    training = {k: options.get(k, v) for k, v in TRAINING_DEFAULTS.items()}
    training.update(optimizer="SGD, Nesterov momentum 0.9, cosine lr over the trial's epochs")
    numerics = resolve_numerics(config.numerics, config.device_kind == "gpu", config.space["name"])
    return {
        "training": training,
        "search": search,
        "max_concurrent": options.get("max_concurrent"),
        "precision": precision(numerics["amp"]),
        "channels_last": numerics["channels_last"],
        "cudnn_benchmark": numerics["cudnn_benchmark"],
        "data": {"weights": "train", "search_signal": "valid"},
    }


def _table_backed(
    config: ExperimentConfig,
    method: MethodConfig,
    options: dict[str, Any],
    search: dict[str, Any],
    keys: Any,
) -> dict[str, Any]:
    """A standalone method whose live trials replay the NB201 table (``dataset.simulate``)."""
    from gaea_tune.baselines._options import LIVE_BOHB_ETA
    from gaea_tune.nb201_table import SEARCH_COLUMNS
    from gaea_tune.registry import TABLE_FIDELITIES

    epochs = int(options.get("epochs", TABLE_FIDELITIES[0]))
    steps = [f for f in TABLE_FIDELITIES if f <= epochs]
    columns = dict(zip(TABLE_FIDELITIES, SEARCH_COLUMNS[config.dataset["name"]][:2]))
    if method.method == "bohb":
        search["reduction_factor"] = 2 if len(steps) == 2 else LIVE_BOHB_ETA
        search["fidelity"] = (
            "the table's recorded fidelities (HyperBandForBOHB over training_iteration: "
            + ", ".join(f"{i} = {f} epochs" for i, f in enumerate(steps, start=1))
            + ")"
        )
    search.update({k: v for k, v in options.items() if k in keys})
    return {
        "training": {"epochs": epochs, "fidelities": steps, "trains": False},
        "search": search,
        "max_concurrent": options.get("max_concurrent"),
        "search_signal": "the NB201 table's validation accuracy: "
        + ", ".join(f"{columns[f]} at {f} epochs" for f in steps),
        "cost": "the table's recorded training seconds (f epochs x the recorded epoch seconds)",
        "data": {"weights": None, "search_signal": "the table's validation columns"},
    }


def resolved_settings(config: ExperimentConfig) -> dict[str, Any]:
    """``{"comparison": {...}, "methods": {label: {...}}}`` with every default filled in."""
    from gaea_tune.datasets import dataset_info

    space = dict(config.space)
    try:
        from search_spaces import get_space

        space["candidate_ops"] = list(
            get_space(space["name"]).candidate_ops(bool(space.get("exclude_none", False)))
        )
    except ImportError:  # pragma: no cover - search_spaces ships with the package
        pass
    info = dataset_info(config.dataset["name"])
    numerics = resolve_numerics(config.numerics, config.device_kind == "gpu", config.space["name"])
    comparison = {
        "mode": config.mode,
        "space": space,
        "dataset": {
            **config.dataset,
            "splits": info.describe(),
            "ground_truth": list(info.ground_truth),
        },  # fmt: skip
        "budget_device_seconds": config.budget_device_seconds,
        "device_kind": config.device_kind,
        "seeds": list(config.seeds),
        "resources": dict(config.resources),
        "numerics": numerics,
        "max_failures": config.max_failures,
        "final_retrain": _final_retrain(config, numerics),
    }
    methods = {}
    for method in config.methods:
        body = (
            _weight_sharing(config, method)
            if method.family == "weight-sharing"
            else _standalone(config, method)
        )
        methods[method.label] = {"method": method.method, "family": method.family, **body}
    return {"comparison": comparison, "methods": methods}


def flatten(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (for MLflow parameters)."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out
