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

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.util import RegExp

from gaea_tune._constraints import OptionError
from gaea_tune.datasets import DATASETS, search_signal_error
from gaea_tune.datasets import TABULAR_DATASETS as _TABULAR_DATASETS
from gaea_tune.protocols import resolve_retrain
from gaea_tune.registry import (
    METHODS as METHOD_REGISTRY,
)
from gaea_tune.registry import (
    SIMULATE,
    STANDALONE_METHODS,
    WEIGHT_SHARING_METHODS,
    methods_for,
)
from search_spaces import SPACE_NAMES

SPACES = SPACE_NAMES  # the catalogue in search_spaces (read without importing torch)

MODES = ("live", "tabular")
# cells per proxy-fidelity calibration (`calibrate --cells`, `compare --calibrate-cells`): the
# default, and the fewest a rank correlation is computed from
CALIBRATION_CELLS = 20
MIN_CALIBRATION_CELLS = 3
TABULAR_DATASETS = _TABULAR_DATASETS  # gaea_tune.datasets: entries with ``tabular=True``
METHODS = WEIGHT_SHARING_METHODS + STANDALONE_METHODS


class ConfigError(OptionError):
    """A configuration value is invalid; the message is one line for the user."""


# A spec is (type, low, high) for numbers, (type, choices) for strings, (bool,) for flags.
# Method options are not listed here: they come from the method registry (gaea_tune.registry),
# which reads them off the classes that consume them.
_Spec = tuple


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
    final_retrain: dict[str, Any]  # the resolved protocol (gaea_tune.protocols)
    report_every_seconds: float
    raw: dict[str, Any]
    # precision / memory format / cuDNN for every trainable; None = auto
    # (gaea_tune.weight_sharing.default_numerics: on with CUDA; on CPU NHWC where the space
    # trains faster in it)
    numerics: dict[str, Any] = field(
        default_factory=lambda: {"amp": None, "channels_last": None, "cudnn_benchmark": None}
    )

    @property
    def device_kind(self) -> str:
        return "gpu" if self.resources["gpu"] > 0 else "cpu"

    @property
    def budget_unit(self) -> str:
        """What the budget's seconds are: "simulated" (the NB201 table's recorded seconds, in
        tabular mode and with table-backed trials), else the device kind ("gpu" or "cpu")."""
        if self.mode == "tabular" or self.dataset.get("simulate"):
            return "simulated"
        return self.device_kind


_TOP_KEYS = (
    "name", "mode", "space", "dataset", "budget", "seeds", "methods", "resources",
    "ray_address", "tracking_uri", "artifact_location", "output_dir", "storage_path",
    "max_failures", "final_retrain", "progress_every_seconds", "numerics",
)  # fmt: skip
_SPACE_KEYS = {"name": None, "C": (int, 1, 1024), "N": (int, 1, 64), "exclude_none": (bool,)}
_DATASET_KEYS = {
    "name": None,
    "root": None,
    "download": (bool,),
    "seed": (int, 0, 2**31 - 1),
    "resolution": (int, 8, 1024),
    "max_train": (int, 1, 10_000_000),
    "max_valid": (int, 1, 10_000_000),
    "max_test": (int, 1, 10_000_000),
    # live trials replay the NB201 table instead of training (gaea_tune.tune._table_trainable)
    "simulate": (str, SIMULATE),
}
_BUDGET_KEYS = ("device_hours", "device_seconds")
_NUMERICS_KEYS = {"amp": (bool,), "channels_last": (bool,), "cudnn_benchmark": (bool,)}
# Settings every method of a comparison shares, refused per method: key -> where to set it.
_COMPARISON_LEVEL = {
    "exclude_none": ("space.exclude_none", "the candidate-op set is one per comparison, so that "
                     "every method searches the same space"),
    "amp": ("numerics.amp", "precision is one per comparison, for both families"),
    "channels_last": ("numerics.channels_last", "the memory format is one per comparison, for "
                      "both families"),
    "C": ("space.C", "the network's channel width is one per comparison"),
    "N": ("space.N", "the network's cells per stage are one per comparison"),
}  # fmt: skip
_RESOURCE_KEYS = {"gpu": (float, 0.0, 1024.0), "cpu": (float, 0.0, 1024.0)}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


# --- YAML 1.2 (core schema) reading --------------------------------------------------------
# Plain scalars resolve as in the YAML 1.2 core schema: only true/false are booleans (yes, no,
# on, off are strings), 3e-4 and .5 are floats, 1_000 and 2024-01-01 are strings. The only tags
# accepted are the core ones; anything else (``!!python/object`` included) is an error, so
# nothing in a file is ever turned into code or objects.
_CORE_SCALARS = (
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+0123456789."),
    ),
    # no merge keys (`<<: *defaults`): they are YAML 1.1; a `<<` key is refused (_StrictConstructor)
)
_CORE_RESOLVERS: dict[str, list[tuple[str, Any]]] = {}
for _tag, _pattern, _first in _CORE_SCALARS:
    for _char in _first:
        _CORE_RESOLVERS.setdefault(_char, []).append((_tag, RegExp(_pattern)))
del _tag, _pattern, _first, _char
_CORE_TAGS = {
    f"tag:yaml.org,2002:{t}" for t in ("null", "bool", "int", "float", "str", "seq", "map")
}


class _CoreResolver(VersionedResolver):
    """Always the YAML 1.2 core schema, whatever ``%YAML`` directive a file carries."""

    @property
    def versioned_resolver(self) -> dict[str, list[tuple[str, Any]]]:
        return _CORE_RESOLVERS

    @property
    def processing_version(self) -> tuple[int, int]:
        return (1, 2)


class _YamlProblem(Exception):
    """One problem with a YAML text, as a one-line ``message``.

    ``syntax`` is true when the text is not YAML at all (the parser's complaint, with its line
    and column); false when it is YAML this loader refuses (duplicate key, tag, recursion).
    """

    def __init__(self, message: str, syntax: bool = False) -> None:
        super().__init__(message)
        self.message, self.syntax = message, syntax


_MISSING = object()


class _StrictConstructor(SafeConstructor):
    """Safe constructor that refuses duplicate keys (naming both lines), non-core tags and YAML
    1.1 merge keys (``<<``)."""

    def flatten_mapping(self, node: Any) -> Any:
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or (
                isinstance(key_node, ScalarNode) and key_node.value == "<<"
            ):
                raise _YamlProblem(
                    f"unknown key '<<' at {_position(key_node.start_mark)} (YAML merge keys are "
                    "YAML 1.1, not 1.2); write the keys out, or use an alias (*name) for a whole "
                    "mapping"
                )

    def check_mapping_key(
        self, node: Any, key_node: Any, mapping: Any, key: Any, value: Any
    ) -> bool:
        if key not in mapping:
            return True
        first = next(
            (
                k
                for k, _ in node.value
                if k is not key_node and self.constructed_objects.get(k, _MISSING) == key
            ),
            None,
        )
        message = f"duplicate key {key!r} at line {key_node.start_mark.line + 1}"
        if first is not None:
            message += f" (first at line {first.start_mark.line + 1})"
        raise _YamlProblem(message)

    def refuse_tag(self, node: Any) -> Any:
        tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
        raise _YamlProblem(
            f"tag {tag!r} at {_position(node.start_mark)} is not allowed; "
            "values are plain YAML 1.2 (strings, numbers, true/false, null, lists, mappings)"
        )


def _position(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


for _tag in [t for t in SafeConstructor.yaml_constructors if t not in _CORE_TAGS]:
    _StrictConstructor.add_constructor(_tag, _StrictConstructor.refuse_tag)
del _tag


def _plain(value: Any, active: set[int] | None = None) -> Any:
    """A copy made only of dict, list, str, int, float, bool and None."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    active = set() if active is None else active
    if id(value) in active:
        raise _YamlProblem("a recursive alias (a collection inside itself) is not allowed")
    active.add(id(value))
    try:
        if type(value) is dict:
            out: Any = {}
            for key, item in value.items():
                if key is not None and type(key) not in (str, int, float, bool):
                    raise _YamlProblem(f"mapping keys must be plain scalars, got {key!r}")
                out[key] = _plain(item, active)
            return out
        if type(value) is list:
            return [_plain(item, active) for item in value]
    finally:
        active.discard(id(value))
    raise _YamlProblem(f"unsupported value {value!r} of type {type(value).__name__}")


def _parse_yaml(text: str) -> Any:
    """Parse one YAML 1.2 document into plain Python values; raises ``_YamlProblem``."""
    yaml = YAML(typ="safe", pure=True)
    yaml.Resolver = _CoreResolver
    yaml.Constructor = _StrictConstructor
    try:
        return _plain(yaml.load(text))
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        message = str(error.problem or error.context or "invalid YAML")
        if mark is not None:
            message += f" at {_position(mark)}"
        if error.context and error.problem:
            message += f" ({error.context}"
            if error.context_mark is not None:
                message += f" from {_position(error.context_mark)}"
            message += ")"
        raise _YamlProblem(message, syntax=True) from None
    except YAMLError as error:
        raise _YamlProblem(" ".join(str(error).split()), syntax=True) from None


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (values parsed as YAML 1.2 scalars, never as code).
    ``methods.LABEL.OPTION=null`` removes the option, so its default applies."""
    data = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set: expected key=value, got {item!r}")
        try:
            value = _parse_yaml(text) if text.strip() else None
        except _YamlProblem as problem:
            if not problem.syntax:
                raise ConfigError(f"--set {key.strip()}: {problem.message}") from None
            value = text  # not YAML (an unclosed bracket, say): the text as it is
        _set_path(data, key, value, "--set")
    return data


def _set_path(data: dict[str, Any], key: str, value: Any, where: str) -> None:
    """``data["a"]["b"] = value`` for ``key="a.b"``, creating mappings on the way."""
    node = data
    parts = key.strip().split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{where}: {key!r} goes through {part!r}, which is not a mapping")
        node = child
    if value is None and len(parts) == 3 and parts[0] == "methods":
        node.pop(parts[-1], None)  # a method option set to null: unset, its default applies
    else:
        node[parts[-1]] = value


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML 1.2 file holding a mapping; duplicate keys and tags are errors."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"config file {str(path)!r} is not UTF-8 text (byte {error.start})"
        ) from None
    except OSError as error:
        raise ConfigError(f"config file {str(path)!r} cannot be read ({error.strerror})") from None
    try:
        data = _parse_yaml(text)
    except _YamlProblem as problem:
        what = " is not valid YAML:" if problem.syntax else ":"
        raise ConfigError(f"config file {str(path)!r}{what} {problem.message}") from None
    if data is None:
        raise ConfigError(f"config file {str(path)!r} is empty; expected a mapping of settings")
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {str(path)!r} must hold a mapping, got {type(data).__name__}"
        )
    return data


def load_config(
    path: str | os.PathLike[str],
    overrides: list[str] | Mapping[str, Any] | None = None,
) -> ExperimentConfig:
    """Read, override and validate a YAML experiment file.

    ``overrides``: ``["key.sub=value", ...]`` (as ``--set``: values parsed as YAML 1.2 scalars)
    or a mapping ``{"key.sub": value}`` whose values are used as given (a mapping value
    replaces the whole section). Either way a method option set to null
    (``methods.LABEL.OPTION``) is removed, so its default applies. Raises
    :class:`ConfigError` with a one-line message.
    """
    raw = load_yaml(path)
    if isinstance(overrides, Mapping):
        return parse_config(_apply_mapping(raw, overrides))
    return parse_config(apply_overrides(raw, list(overrides or [])))


def _apply_mapping(raw: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(raw)
    for key, value in overrides.items():
        if not isinstance(key, str) or not key.strip():
            raise ConfigError(f"overrides: keys must be dotted field names, got {key!r}")
        _set_path(data, key, copy.deepcopy(value), "overrides")
    return data


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
        "space",
        raw.get("space") or {},
        _SPACE_KEYS,
        {"name": "nb201", "C": 16, "N": 5, "exclude_none": False},
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
    simulate = dataset.get("simulate")
    if simulate is not None and mode == "tabular":
        raise ConfigError(
            f"dataset.simulate: {simulate!r} is for live trials (mode: live); tabular mode "
            "always reads the table; allowed: null"
        )
    if mode == "tabular" or simulate == "table":
        where = "tabular mode" if mode == "tabular" else "dataset.simulate: table"
        if space["name"] != "nb201":
            raise ConfigError(f"space.name: {where} needs 'nb201', got {space['name']!r}")
        if dataset["name"] not in TABULAR_DATASETS:
            raise _unknown("dataset.name", dataset["name"], TABULAR_DATASETS)
    else:
        no_signal = search_signal_error(dataset["name"])
        if no_signal:
            raise ConfigError(f"dataset.name: {no_signal}")
        if dataset["name"] != "cifar10-subset" and not dataset["download"]:
            _require_dataset_files(dataset)

    budget = _parse_budget(raw.get("budget"))
    seeds = _parse_seeds(raw.get("seeds", [0]))
    resources = _parse_section(
        "resources", raw.get("resources") or {}, _RESOURCE_KEYS, {"gpu": 0.0, "cpu": 1.0}
    )
    gpu = resources["gpu"]
    if gpu > 1 and not float(gpu).is_integer():
        raise ConfigError(
            f"resources.gpu: {gpu!r} GPUs per trial is neither a fraction below 1 nor a whole "
            "number (Ray shares a GPU only in fractions); allowed: 0, a fraction in (0, 1), or a "
            "whole number"
        )
    if resources["gpu"] == 0 and resources["cpu"] == 0:
        raise ConfigError("resources: a trial needs gpu > 0 or cpu > 0, got gpu=0, cpu=0")
    methods = _parse_methods(raw.get("methods"), mode, space, simulate)

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
    try:
        protocol = resolve_retrain(final, space["name"])
    except OptionError as error:
        raise ConfigError(str(error)) from None
    retrain_epochs = protocol.epochs
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
        final_retrain=protocol.to_dict(),
        report_every_seconds=progress,
        raw=copy.deepcopy(raw),
        numerics=_parse_section(
            "numerics",
            raw.get("numerics") or {},
            _NUMERICS_KEYS,
            {"amp": None, "channels_last": None, "cudnn_benchmark": None},
        ),  # fmt: skip
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


def _parse_methods(
    methods: Any, mode: str, space: dict[str, Any], simulate: str | None = None
) -> tuple[MethodConfig, ...]:
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
    allowed_methods = methods_for(mode, simulate)
    for label, options in methods.items():
        if not isinstance(label, str) or not _NAME.match(label):
            raise ConfigError(
                f"methods: {label!r} is not a valid label; allowed: letters, digits, '_', '-', '.'"
            )
        if options is not None and not isinstance(options, dict):
            raise ConfigError(
                f"methods.{label}: expected a mapping of options (or nothing), got {options!r}; "
                f"allowed: e.g. {{epochs: 3}} or {{}}"
            )
        options = dict(options or {})
        method = options.pop("method", label)
        for key, (where, why) in _COMPARISON_LEVEL.items():
            if key in options:
                raise ConfigError(
                    f"methods.{label}.{key}: {options[key]!r} is not a per-method option: {why}; "
                    f"set {where} instead"
                )
        if not isinstance(method, str) or method not in allowed_methods:
            where = f"methods.{label}.method" if method != label else "methods"
            raise _unknown(where, method, allowed_methods)
        try:
            # unknown keys, listing only what a method may set (not the comparison-level keys)
            allowed = METHOD_REGISTRY[method].constraints(mode, simulate)
            _check_keys(
                f"methods.{label}", options, [k for k in allowed if k not in _COMPARISON_LEVEL]
            )
            checked = METHOD_REGISTRY[method].validate(
                f"methods.{label}", mode, options, space=space["name"], C=space["C"],
                simulate=simulate,
            )  # fmt: skip
        except OptionError as error:
            raise ConfigError(str(error)) from None
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
