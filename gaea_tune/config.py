"""Experiment configuration: YAML -> validated, frozen ``ExperimentConfig`` (fail fast, no compute).

Every error is a :class:`ConfigError` whose one-line message names the field, the bad value and
what is allowed. Nothing here starts Ray or MLflow, and nothing from a config is evaluated as code.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SPACES = ("nb201", "darts")
DATASETS = ("cifar10-subset", "cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
MODES = ("live", "tabular")
TABULAR_DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
WEIGHT_SHARING_METHODS = (
    "gaea-darts", "gaea-gdas", "gaea-pcdarts", "darts", "gdas", "pcdarts", "rsws",
)  # fmt: skip
STANDALONE_METHODS = ("random", "rea", "bohb", "tpe")
METHODS = WEIGHT_SHARING_METHODS + STANDALONE_METHODS


class ConfigError(ValueError):
    """A configuration value is invalid; the message is one line for the user."""


# --- option schemas ------------------------------------------------------------------------
# name -> (type, low, high) for numbers; (type, choices) for strings; (bool,) for flags.
_Spec = tuple

_COMMON: dict[str, _Spec] = {
    "epochs": (int, 1, 10_000),
    "batch_size": (int, 1, 65_536),
    "lr": (float, 1e-6, 10.0),
    "weight_decay": (float, 0.0, 1.0),
}
_WEIGHT_SHARING: dict[str, _Spec] = {
    **_COMMON,
    "eval_batch_size": (int, 1, 65_536),
    "lr_min": (float, 0.0, 10.0),
    "momentum": (float, 0.0, 0.999),
    "grad_clip": (float, 0.0, 1e6),
    "arch_lr": (float, 1e-8, 100.0),
    "arch_weight_decay": (float, 0.0, 1.0),
    "formulation": (str, ("erm", "bilevel")),
    "erm_joint": (bool,),
    "exclude_none": (bool,),
    "partial_k": (int, 1, 16),
    "tau_max": (float, 1e-3, 100.0),
    "tau_min": (float, 1e-3, 100.0),
    "rsws_candidates": (int, 1, 100_000),
    "genotype_from": (str, ("current", "epoch_mean")),
    "amp": (bool,),
    "channels_last": (bool,),
}
_STANDALONE: dict[str, _Spec] = {
    **_COMMON,
    "population_size": (int, 2, 100_000),
    "sample_size": (int, 1, 100_000),
    "exclude_none": (bool,),
    "reduction_factor": (int, 2, 100),
    "n_startup_trials": (int, 1, 100_000),
    "multivariate": (bool,),
    "max_concurrent": (int, 1, 1024),
}
_TABULAR: dict[str, _Spec] = {
    "population_size": (int, 2, 100_000),
    "sample_size": (int, 1, 100_000),
    "exclude_none": (bool,),
    "n_startup_trials": (int, 1, 100_000),
    "multivariate": (bool,),
    "eta": (float, 1.01, 100.0),
    "num_samples": (int, 1, 1000),
    "random_fraction": (float, 0.0, 1.0),
    "style": (str, ("table", "paper")),
}


def _did_you_mean(word: str, allowed: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(allowed), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown(field_name: str, value: Any, allowed: tuple[str, ...] | list[str]) -> ConfigError:
    return ConfigError(
        f"{field_name}: unknown value {value!r}{_did_you_mean(str(value), allowed)}; "
        f"allowed: {', '.join(allowed)}"
    )


def _check_keys(where: str, given: Mapping[str, Any], allowed: Mapping[str, Any] | tuple) -> None:
    names = list(allowed)
    for key in given:
        if key not in names:
            raise ConfigError(
                f"{where}: unknown key {key!r}{_did_you_mean(str(key), names)}; "
                f"allowed: {', '.join(names)}"
            )


def _check_value(where: str, value: Any, spec: _Spec) -> Any:
    kind = spec[0]
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if kind is str:
        if value not in spec[1]:
            raise _unknown(where, value, spec[1])
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if kind is int and not float(value).is_integer():
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    low, high = spec[1], spec[2]
    if not low <= value <= high:
        raise ConfigError(
            f"{where}: {value!r} is out of range; allowed: {low} <= {where.split('.')[-1]} <= {high}"
        )
    return kind(value)


# --- the frozen config ---------------------------------------------------------------------


@dataclass(frozen=True)
class MethodConfig:
    label: str  # unique name in the comparison (defaults to the method name)
    method: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return "weight-sharing" if self.method in WEIGHT_SHARING_METHODS else "standalone"


@dataclass(frozen=True)
class ExperimentConfig:
    name: str
    mode: str
    space: dict[str, Any]
    dataset: dict[str, Any]
    budget_device_seconds: float
    seeds: tuple[int, ...]
    methods: tuple[MethodConfig, ...]
    resources: dict[str, float]
    ray_address: str | None
    tracking_uri: str | None
    artifact_location: str | None
    output_dir: str
    storage_path: str | None
    max_failures: int
    final_retrain_epochs: int
    report_every_seconds: float
    raw: dict[str, Any]

    @property
    def device_kind(self) -> str:
        return "gpu" if self.resources["gpu"] > 0 else "cpu"


_TOP_KEYS = (
    "name", "mode", "space", "dataset", "budget", "seeds", "methods", "resources",
    "ray_address", "tracking_uri", "artifact_location", "output_dir", "storage_path",
    "max_failures", "final_retrain", "progress_every_seconds",
)  # fmt: skip
_SPACE_KEYS = {"name": None, "C": (int, 1, 1024), "N": (int, 1, 64)}
_DATASET_KEYS = {
    "name": None,
    "root": None,
    "download": (bool,),
    "seed": (int, 0, 2**31 - 1),
    "resolution": (int, 8, 1024),
    "max_train": (int, 1, 10_000_000),
    "max_valid": (int, 1, 10_000_000),
    "max_test": (int, 1, 10_000_000),
}
_BUDGET_KEYS = ("device_hours", "device_seconds")
_RESOURCE_KEYS = {"gpu": (float, 0.0, 1024.0), "cpu": (float, 0.0, 1024.0)}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (values parsed as YAML scalars, never as code)."""
    data = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set: expected key=value, got {item!r}")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set: {key!r} goes through {part!r}, which is not a mapping")
            node = child
        node[parts[-1]] = value
    return data


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(
            f"config file {str(path)!r} is not valid YAML: {error}".splitlines()[0]
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {str(path)!r} must hold a mapping, got {type(data).__name__}"
        )
    return data


def load_config(
    path: str | os.PathLike[str], overrides: list[str] | None = None
) -> ExperimentConfig:
    """Read, override and validate a YAML experiment file."""
    return parse_config(apply_overrides(load_yaml(path), overrides or []))


def parse_config(raw: dict[str, Any]) -> ExperimentConfig:
    """Validate a raw mapping into an :class:`ExperimentConfig`."""
    _check_keys("config", raw, _TOP_KEYS)
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"name: {name!r} is not a valid experiment name; allowed: 1-100 letters, digits, '_', '-', '.'"
        )
    mode = raw.get("mode", "live")
    if mode not in MODES:
        raise _unknown("mode", mode, MODES)

    space = _parse_section(
        "space", raw.get("space") or {}, _SPACE_KEYS, {"name": "nb201", "C": 16, "N": 5}
    )
    if space["name"] not in SPACES:
        raise _unknown("space.name", space["name"], SPACES)

    dataset = _parse_section(
        "dataset", raw.get("dataset") or {}, _DATASET_KEYS,
        {"name": "cifar10-subset", "root": None, "download": False, "seed": 0},
    )  # fmt: skip
    if dataset["name"] not in DATASETS:
        raise _unknown("dataset.name", dataset["name"], DATASETS)
    if dataset["root"] is not None and not isinstance(dataset["root"], str):
        raise ConfigError(f"dataset.root: expected a folder path, got {dataset['root']!r}")
    if mode == "tabular":
        if space["name"] != "nb201":
            raise ConfigError(f"space.name: tabular mode needs 'nb201', got {space['name']!r}")
        if dataset["name"] not in TABULAR_DATASETS:
            raise _unknown("dataset.name", dataset["name"], TABULAR_DATASETS)
    elif dataset["name"] != "cifar10-subset" and not dataset["download"]:
        _require_dataset_files(dataset)

    budget = _parse_budget(raw.get("budget"))
    seeds = _parse_seeds(raw.get("seeds", [0]))
    resources = _parse_section(
        "resources", raw.get("resources") or {}, _RESOURCE_KEYS, {"gpu": 0.0, "cpu": 1.0}
    )
    if resources["gpu"] == 0 and resources["cpu"] == 0:
        raise ConfigError("resources: a trial needs gpu > 0 or cpu > 0, got gpu=0, cpu=0")
    methods = _parse_methods(raw.get("methods"), mode)

    output_dir = raw.get("output_dir") or f"gaea-runs/{name}"
    if not isinstance(output_dir, str):
        raise ConfigError(f"output_dir: expected a folder path, got {output_dir!r}")
    _require_writable("output_dir", output_dir)
    storage_path = raw.get("storage_path")
    if storage_path is not None and not isinstance(storage_path, str):
        raise ConfigError(f"storage_path: expected a folder path or URI, got {storage_path!r}")
    for key in ("ray_address", "tracking_uri", "artifact_location"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise ConfigError(f"{key}: expected a string, got {raw[key]!r}")
    tracking_uri = raw.get("tracking_uri")
    if tracking_uri is not None and not re.match(
        r"^(sqlite|https?|postgresql|mysql|databricks|file)[:+]", tracking_uri
    ):
        raise ConfigError(
            f"tracking_uri: unsupported {tracking_uri!r}; allowed: sqlite:///PATH, http(s)://HOST:PORT, "
            "postgresql://..., mysql://..."
        )
    max_failures = _check_value("max_failures", raw.get("max_failures", 2), (int, 0, 100))
    final = raw.get("final_retrain") or {}
    if not isinstance(final, dict):
        raise ConfigError(f"final_retrain: expected a mapping like {{epochs: 20}}, got {final!r}")
    _check_keys("final_retrain", final, ("epochs",))
    retrain_epochs = _check_value("final_retrain.epochs", final.get("epochs", 0), (int, 0, 10_000))
    progress = _check_value(
        "progress_every_seconds", raw.get("progress_every_seconds", 10), (float, 0.5, 3600.0)
    )
    return ExperimentConfig(
        name=name,
        mode=mode,
        space=space,
        dataset=dataset,
        budget_device_seconds=budget,
        seeds=seeds,
        methods=methods,
        resources=resources,
        ray_address=raw.get("ray_address"),
        tracking_uri=tracking_uri,
        artifact_location=raw.get("artifact_location"),
        output_dir=output_dir,
        storage_path=storage_path,
        max_failures=max_failures,
        final_retrain_epochs=retrain_epochs,
        report_every_seconds=progress,
        raw=copy.deepcopy(raw),
    )


def _parse_section(
    where: str, given: Any, schema: Mapping[str, Any], defaults: Mapping[str, Any]
) -> dict[str, Any]:
    if not isinstance(given, dict):
        raise ConfigError(f"{where}: expected a mapping, got {given!r}")
    _check_keys(where, given, schema)
    values = {**defaults, **given}
    for key, spec in schema.items():
        if spec is not None and values.get(key) is not None:
            values[key] = _check_value(f"{where}.{key}", values[key], spec)
    return values


def _parse_budget(budget: Any) -> float:
    if not isinstance(budget, dict) or not budget:
        raise ConfigError(f"budget: expected a mapping like {{device_hours: 0.05}}, got {budget!r}")
    _check_keys("budget", budget, _BUDGET_KEYS)
    if len(budget) != 1:
        raise ConfigError(
            f"budget: give exactly one of device_hours or device_seconds, got {budget!r}"
        )
    key, value = next(iter(budget.items()))
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 < value < float("inf")
    ):
        raise ConfigError(f"budget.{key}: must be a positive number, got {value!r}")
    seconds = float(value) * (3600.0 if key == "device_hours" else 1.0)
    if seconds < 1.0:
        raise ConfigError(
            f"budget.{key}: {value!r} is under one device-second; allowed: >= 1 second"
        )
    return seconds


def _parse_seeds(seeds: Any) -> tuple[int, ...]:
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if not 1 <= seeds <= 10_000:
            raise ConfigError(f"seeds: a count must be in [1, 10000], got {seeds!r}")
        return tuple(range(seeds))
    if not isinstance(seeds, list) or not seeds:
        raise ConfigError(f"seeds: expected a count or a non-empty list of integers, got {seeds!r}")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
            raise ConfigError(f"seeds: each seed must be an integer in [0, 2**31), got {seed!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds: duplicates in {seeds!r}")
    return tuple(seeds)


def _parse_methods(methods: Any, mode: str) -> tuple[MethodConfig, ...]:
    if isinstance(methods, list):
        methods = (
            {m: {} for m in methods if isinstance(m, str)}
            if all(isinstance(m, str) for m in methods)
            else methods
        )
    if not isinstance(methods, dict) or not methods:
        raise ConfigError(
            f"methods: expected a non-empty mapping of method -> options, got {methods!r}"
        )
    parsed = []
    allowed_methods = STANDALONE_METHODS if mode == "tabular" else METHODS
    for label, options in methods.items():
        options = dict(options or {})
        if not isinstance(label, str) or not _NAME.match(label):
            raise ConfigError(
                f"methods: {label!r} is not a valid label; allowed: letters, digits, '_', '-', '.'"
            )
        method = options.pop("method", label)
        if method not in allowed_methods:
            where = f"methods.{label}.method" if method != label else "methods"
            raise _unknown(where, method, allowed_methods)
        if mode == "tabular":
            schema = _TABULAR
        elif method in WEIGHT_SHARING_METHODS:
            schema = _WEIGHT_SHARING
        else:
            schema = _STANDALONE
        _check_keys(f"methods.{label}", options, schema)
        checked = {
            k: _check_value(f"methods.{label}.{k}", v, schema[k]) for k, v in options.items()
        }
        sample, population = checked.get("sample_size", 3), checked.get("population_size", 10)
        if method == "rea" and sample > population:
            raise ConfigError(
                f"methods.{label}: sample_size <= population_size must hold, got "
                f"sample_size={sample}, population_size={population}"
            )
        parsed.append(MethodConfig(label=label, method=method, options=checked))
    return tuple(parsed)


def _require_dataset_files(dataset: dict[str, Any]) -> None:
    root = dataset.get("root")
    if dataset["name"] == "ImageNet16-120" and (
        root is None or not Path(root).expanduser().exists()
    ):
        raise ConfigError(
            f"dataset.root: {root!r} does not exist for dataset 'ImageNet16-120', which cannot be "
            "downloaded; point it at the folder with NB201's ImageNet16 files"
        )
    if root is None or not Path(root).expanduser().exists():
        raise ConfigError(
            f"dataset.root: {root!r} does not exist for dataset {dataset['name']!r}; "
            "point it at the data or set dataset.download: true (--set dataset.download=true)"
        )


def _require_writable(where: str, folder: str) -> None:
    path = Path(folder).expanduser().resolve()
    probe = path
    while not probe.exists():
        probe = probe.parent
    try:
        if not probe.is_dir():
            raise OSError(f"{probe} is not a folder")
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError:
        raise ConfigError(f"{where}: {folder!r} is not writable (checked {str(probe)!r})") from None
