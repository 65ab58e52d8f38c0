"""``gaea-tune search FILE``: one weight-sharing search as a Ray Tune trial, logged to MLflow.

The YAML file (see ``tune_configs/search_*.yaml``)::

    name: search-nb201            # MLflow experiment (default "gaea-search")
    space: nb201                  # nb201 | darts
    method: gaea-darts            # gaea-darts gaea-gdas gaea-pcdarts darts gdas pcdarts rsws
    seed: 0
    dataset: {name: cifar10-subset, resolution: 16, max_train: 2000, max_valid: 1000}
    resources: {cpu: 2, gpu: 0}
    search: {C: 8, N: 1, epochs: 10, formulation: erm, arch_lr: 0.1}   # SearchOptions fields
    output_dir: ./gaea-runs       # Ray results and the default MLflow store (SQLite)
    tracking_uri: null            # an MLflow server instead of the local store
    max_failures: 1               # retries of the trial, each from its last checkpoint
    budget_device_seconds: null   # stop after the epoch that reaches this spend
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ALLOWED_KEYS = (
    "name", "space", "method", "seed", "dataset", "resources", "search", "output_dir",
    "tracking_uri", "artifact_location", "max_failures", "budget_device_seconds",
)  # fmt: skip


class SearchConfigError(ValueError):
    """The search YAML is invalid."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search", help="run one weight-sharing search (GAEA, DARTS, GDAS, PC-DARTS, RS-WS)"
    )
    parser.add_argument("file", metavar="FILE", help="search YAML (see tune_configs/search_*.yaml)")
    parser.add_argument("--output-dir", help="override output_dir")
    parser.add_argument("--tracking-uri", help="override tracking_uri")
    parser.add_argument("--epochs", type=int, help="override search.epochs")
    parser.set_defaults(command="search")


def load_search_config(path: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read and validate a search YAML; returns it with defaults filled in."""
    from gaea_tune.config import ConfigError, load_yaml

    file = Path(path)
    try:
        raw = load_yaml(file)
    except ConfigError as error:
        raise SearchConfigError(str(error)) from None
    unknown = sorted(set(raw) - set(ALLOWED_KEYS))
    if unknown:
        raise SearchConfigError(
            f"{file}: unknown keys {unknown}; allowed: {', '.join(ALLOWED_KEYS)}"
        )
    for key in ("space", "method"):
        if key not in raw:
            raise SearchConfigError(f"{file}: missing required key {key!r}")
    config = {
        "name": "gaea-search",
        "seed": 0,
        "dataset": {"name": "cifar10-subset"},
        "resources": {"cpu": 1, "gpu": 0},
        "search": {},
        "output_dir": "./gaea-runs",
        "tracking_uri": None,
        "artifact_location": None,
        "max_failures": 1,
        "budget_device_seconds": None,
        **raw,
    }
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key == "epochs":
            config["search"] = {**(config["search"] or {}), "epochs": value}
        else:
            config[key] = value
    if not isinstance(config["search"], dict):
        raise SearchConfigError(f"{file}: 'search' must be a mapping of search options")
    mf = config["max_failures"]
    if isinstance(mf, bool) or not isinstance(mf, int) or mf < 0:
        raise SearchConfigError(f"{file}: max_failures must be an int >= 0, got {mf!r}")
    from gaea_tune.tune._supernet_trainable import split_config

    try:
        split_config(trainable_config(config))
    except ValueError as error:
        raise SearchConfigError(f"{file}: {error}") from None
    return config


def trainable_config(config: dict[str, Any]) -> dict[str, Any]:
    """The flat config :func:`supernet_trainable` takes."""
    out = {
        "space": config["space"],
        "method": config["method"],
        "seed": config["seed"],
        "dataset": config["dataset"],
        "resources": config["resources"],
        **config["search"],
    }
    if config.get("budget_device_seconds") is not None:
        out["budget_device_seconds"] = config["budget_device_seconds"]
    return out


def run(args: argparse.Namespace) -> int:
    overrides = {"output_dir": args.output_dir, "tracking_uri": args.tracking_uri,
                 "epochs": args.epochs}  # fmt: skip
    try:
        config = load_search_config(args.file, overrides)
    except SearchConfigError as error:
        print(f"gaea-tune: error: {error}", file=sys.stderr)
        return 2
    from gaea_tune.config import ConfigError
    from gaea_tune.tracking import Tracker, TrackingError, check_experiment_usable, default_tracking
    from gaea_tune.tune._mlflow_callback import MLflowTrialLogger
    from gaea_tune.tune._supernet_trainable import run_search

    workdir = Path(config["output_dir"]).expanduser().resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if config["tracking_uri"]:
        uri, artifacts = config["tracking_uri"], config["artifact_location"]
    else:
        uri, artifacts = default_tracking(workdir)
        artifacts = config["artifact_location"] or artifacts
    try:
        check_experiment_usable(uri, config["name"])  # a deleted experiment: refused before Ray
        tracker = Tracker(uri, config["name"], artifacts)
    except (ConfigError, TrackingError) as error:
        print(f"gaea-tune: error: {error}", file=sys.stderr)
        return 2
    from gaea_tune.weight_sharing import SearchOptions

    resolved = SearchOptions.from_dict(dict(config["search"])).resolve(
        config["method"], config["space"]
    )
    label = f"{config['method']}-{resolved['formulation']}-seed{config['seed']}"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    key = f"{config['name']}/search/{label}/{stamp}"
    run_id = tracker.start_run(
        name=label, key=key,
        tags={"gaea.level": "method", "gaea.method": config["method"], "gaea.family": "weight-sharing"},
    )  # fmt: skip
    tracker.log_params(run_id, {k: v for k, v in config.items() if k != "name"})
    logger = MLflowTrialLogger(uri, config["name"], artifacts, run_id, key,
                               tags={"gaea.method": config["method"]})  # fmt: skip
    try:
        results = run_search(
            trainable_config(config),
            storage_path=str(workdir / "ray"),
            name=f"{config['name']}-{label}-{stamp}",
            callbacks=[logger],
            max_failures=config["max_failures"],
        )
    except Exception as error:  # the trial's failure, reported on the run and the console
        tracker.set_tags(run_id, {"gaea.failure": str(error)[:4000]})
        tracker.end_run(run_id, "FAILED")
        print(f"gaea-tune: search failed: {error}", file=sys.stderr)
        return 1
    _log_outcome(tracker, run_id, results)
    tracker.end_run(run_id, "FINISHED")
    _print_summary(results, tracker.ui_url())
    return 0


_CURVE_KEYS = ("epoch", "train_loss", "train_acc", "valid_acc", "search_signal", "entropy",
               "device_seconds")  # fmt: skip


def _log_outcome(tracker: Any, run_id: str, results: list[dict[str, Any]]) -> None:
    if not results:
        return
    for item in results:
        metrics = {k: v for k, v in item.items() if k in _CURVE_KEYS or k.startswith("nb201_")}
        tracker.log_metrics(run_id, metrics, step=int(item["epoch"]))
    final = results[-1]
    tracker.set_tags(run_id, {"genotype": final["genotype"]})
    tracker.log_text(run_id, final["genotype"] + "\n", "genotype.txt")
    history = [
        {k: item.get(k) for k in ("epoch", "genotype", "entropy", "arch_weights", "edge_weights")
         if k in item}
        for item in results
    ]  # fmt: skip
    tracker.log_json(run_id, history, "arch_weights_history.json")


def _print_summary(results: list[dict[str, Any]], url: str) -> None:
    print(
        f"{'epoch':>5} {'loss':>7} {'train%':>7} {'valid%':>7} {'entropy':>8} {'dev-s':>8}  genotype"
    )
    for r in results:
        print(
            f"{r['epoch']:>5} {r['train_loss']:>7.3f} {r['train_acc']:>7.2f} {r['valid_acc']:>7.2f} "
            f"{r['entropy']:>8.4f} {r['device_seconds']:>8.1f}  {r['genotype']}"
        )
    if results and "nb201_cifar10_test_200" in results[-1]:
        print(f"final genotype NB201 cifar10_test_200: {results[-1]['nb201_cifar10_test_200']:.2f} "
              "(monitor only)")  # fmt: skip
    print(f"MLflow runs: {url}")
