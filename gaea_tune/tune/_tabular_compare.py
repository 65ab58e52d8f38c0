"""The comparison in tabular mode: simulated searches on the NB201 table, logged like live ones."""

from __future__ import annotations

from typing import Any

from gaea_tune.config import ExperimentConfig
from gaea_tune.resolve import flatten, method_options, resolved_settings
from gaea_tune.tracking import Tracker
from gaea_tune.tune._compare import _connect, _log_outcome, run_key
from gaea_tune.tune._outcome import nb201_ground_truth


def run_tabular(
    config: ExperimentConfig,
    tracker: Tracker,
    parent_run_id: str,
    invocation: str,
    address: str | None,
) -> list[dict[str, Any]]:
    """Every method x seed as a simulated search; each a child run of the comparison."""
    from gaea_tune.tune._tabular import run_seeds

    _connect(address)

    dataset = config.dataset["name"]
    primary = {"cifar10": "cifar10_test_200", "cifar100": "cifar100_test_200",
               "ImageNet16-120": "imagenet16_test_200"}[dataset]  # fmt: skip
    outcomes = []
    resolved = resolved_settings(config)["methods"]
    for method in config.methods:
        results = run_seeds(
            method.method, dataset, config.budget_device_seconds, list(config.seeds),
            **method_options(config, method),
        )  # fmt: skip
        for result in results:
            name = f"{method.label}-seed{result.seed}"
            run_id = tracker.start_run(
                name=name,
                key=run_key(config.name, invocation, method.label, result.seed),
                parent_run_id=parent_run_id,
                tags={"gaea.level": "method", "gaea.method": method.label,
                      "gaea.seed": str(result.seed), "gaea.family": "standalone"},
            )  # fmt: skip
            tracker.log_params(run_id, {"method": method.method, "seed": result.seed,
                                        "budget_device_seconds": config.budget_device_seconds,
                                        **{f"option.{k}": v for k, v in method.options.items()}})  # fmt: skip
            tracker.log_params(run_id, flatten(resolved[method.label], "resolved."))
            outcome = {
                "status": "finished",
                "failure": None,
                "label": method.label,
                "method": method.method,
                "family": "standalone",
                "seed": result.seed,
                "budget_device_seconds": config.budget_device_seconds,
                "spent_device_seconds": result.spent,
                "trials": result.evaluations,
                "failed_trials": {},
                "genotype": result.incumbent,
                "search_signal": result.signal,
                "ground_truth": nb201_ground_truth(result.incumbent, primary),
                "ground_truth_column": primary,
                "curve": [[float(s), float(v)] for s, v in result.curve],
            }
            _log_outcome(tracker, run_id, outcome)
            outcomes.append(outcome)
    return outcomes
