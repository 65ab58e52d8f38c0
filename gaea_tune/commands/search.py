"""``gaea-tune search FILE``: one weight-sharing search as a Ray Tune trial, logged to MLflow.

FILE is an experiment YAML in the same dialect as ``compare`` (see ``tune_configs/search_*.yaml``)
and takes the same ``--set`` overrides; the search runs one weight-sharing method of it
(``--method LABEL``; default: the only one) for one seed (``--seed``; default: the first),
with the same trainable config ``compare`` would give it, and stops at the budget::

    name: search-nb201                       # MLflow experiment
    space: {name: nb201, C: 8, N: 1}
    dataset: {name: cifar10-subset, resolution: 16, max_train: 2000, max_valid: 1000}
    budget: {device_hours: 1}                # the search stops after the epoch that reaches it
    seeds: [0]
    resources: {cpu: 2, gpu: 0}
    methods:
      gaea-darts: {epochs: 10, formulation: erm, arch_lr: 0.1}

``--output-dir``, ``--tracking-uri`` and ``--epochs`` are shorthands for ``--set output_dir=...``,
``--set tracking_uri=...`` and ``--set methods.LABEL.epochs=...``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from gaea_tune.commands._common import add_config_arguments


class SearchConfigError(ValueError):
    """The search YAML is invalid, or names no weight-sharing method to run."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search", help="run one weight-sharing search (GAEA, DARTS, GDAS, PC-DARTS, RS-WS)"
    )
    add_config_arguments(parser)
    parser.add_argument("--method", metavar="LABEL", help="the weight-sharing method to run")
    parser.add_argument("--seed", type=int, help="the seed (default: the config's first)")
    parser.add_argument("--output-dir", help="override output_dir")
    parser.add_argument("--tracking-uri", help="override tracking_uri")
    parser.add_argument("--epochs", type=int, help="override methods.LABEL.epochs")
    parser.set_defaults(command="search")


def load_search_config(
    path: str | Path,
    overrides: list[str] | None = None,
    method: str | None = None,
    epochs: int | None = None,
) -> tuple[Any, Any]:
    """(ExperimentConfig, MethodConfig) of the search: the compare dialect, validated the same
    way, plus the choice of one weight-sharing method. Raises :class:`SearchConfigError`."""
    from gaea_tune.config import ConfigError, load_config

    overrides = list(overrides or [])
    try:
        config = load_config(path, overrides)
        chosen = _choose(config, method)
        if epochs is not None:
            config = load_config(path, [*overrides, f"methods.{chosen.label}.epochs={epochs}"])
            chosen = _choose(config, chosen.label)
    except ConfigError as error:
        raise SearchConfigError(str(error)) from None
    return config, chosen


def _choose(config: Any, label: str | None) -> Any:
    from gaea_tune.config import ConfigError

    searches = [m for m in config.methods if m.family == "weight-sharing"]
    labels = ", ".join(m.label for m in searches) or "none"
    if config.mode != "live":
        raise ConfigError(
            f"mode: {config.mode!r}: a weight-sharing search trains a supernet; allowed: live"
        )
    if label is not None:
        found = [m for m in config.methods if m.label == label]
        if not found or found[0].family != "weight-sharing":
            raise ConfigError(
                f"--method: {label!r} is not a weight-sharing method of the config; "
                f"allowed: {labels}"
            )
        return found[0]
    if len(searches) != 1:
        raise ConfigError(
            f"methods: {len(searches)} weight-sharing methods in the config; pick one with "
            f"--method LABEL; allowed: {labels}"
        )
    return searches[0]


def run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.output_dir is not None:
        overrides.append(f"output_dir={args.output_dir}")
    if args.tracking_uri is not None:
        overrides.append(f"tracking_uri={args.tracking_uri}")
    if args.seed is not None:
        overrides.append(f"seeds=[{int(args.seed)}]")
    try:
        config, method = load_search_config(args.file, overrides, args.method, args.epochs)
    except SearchConfigError as error:
        print(f"gaea-tune: error: {error}", file=sys.stderr)
        return 2
    from gaea_tune.config import ConfigError
    from gaea_tune.tracking import Tracker, TrackingError, check_experiment_usable
    from gaea_tune.tune._backend import tracking_settings
    from gaea_tune.tune._live import supernet_config

    seed = config.seeds[0]  # --seed: checked as `seeds` is, before anything is made
    workdir = Path(config.output_dir).expanduser().resolve()
    uri, artifacts = tracking_settings(config, workdir)
    try:
        check_experiment_usable(uri, config.name)  # a deleted experiment: refused before Ray
        workdir.mkdir(parents=True, exist_ok=True)
        tracker = Tracker(uri, config.name, artifacts)
    except (ConfigError, TrackingError) as error:
        print(f"gaea-tune: error: {error}", file=sys.stderr)
        return 2
    trainable = supernet_config(config, method, seed)
    trainable["budget_device_seconds"] = config.budget_device_seconds  # no stopper: stop here
    return _search(config, method, seed, trainable, tracker, uri, artifacts, workdir)


def _search(
    config: Any,
    method: Any,
    seed: int,
    trainable: dict[str, Any],
    tracker: Any,
    uri: str,
    artifacts: str | None,
    workdir: Path,
) -> int:
    from gaea_tune._progress import Progress
    from gaea_tune.resolve import flatten
    from gaea_tune.tune._mlflow_callback import MLflowTrialLogger
    from gaea_tune.tune._progress import EpochProgress
    from gaea_tune.tune._supernet_trainable import run_search
    from gaea_tune.weight_sharing import SearchOptions

    options = {k: v for k, v in trainable.items() if k in SearchOptions._parameter_constraints}
    resolved = SearchOptions.from_dict(options).resolve(method.method, config.space["name"])
    label = f"{method.label}-{resolved['formulation']}-seed{seed}"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    key = f"{config.name}/search/{label}/{stamp}"
    run_id = tracker.start_run(
        name=label, key=key,
        tags={"gaea.level": "method", "gaea.method": method.label, "gaea.family": method.family},
    )  # fmt: skip
    tracker.log_params(run_id, flatten(trainable))
    logger = MLflowTrialLogger(uri, config.name, artifacts, run_id, key,
                               tags={"gaea.method": method.label})  # fmt: skip
    bar = Progress(total=trainable.get("epochs"), desc=label, unit="epoch")  # None: from budget
    try:
        results = run_search(
            trainable,
            storage_path=str(workdir / "ray"),
            name=f"{config.name}-{label}-{stamp}",
            callbacks=[logger, EpochProgress(bar)],
            max_failures=config.max_failures,
        )
    except Exception as error:  # the trial's failure, reported on the run and the console
        bar.close()
        tracker.set_tags(run_id, {"gaea.failure": str(error)[:4000]})
        tracker.end_run(run_id, "FAILED")
        print(f"gaea-tune: search failed: {error}", file=sys.stderr)
        return 1
    bar.close()
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
