"""The table backend (``mode: tabular``): simulated searches on the NB201 table, logged like
live ones -- each method x seed a child MLflow run of the comparison, with the same
:class:`~gaea_tune.tune._outcome.Outcome`."""

from __future__ import annotations

from typing import Any

from gaea_tune.config import ExperimentConfig
from gaea_tune.resolve import method_options, resolved_settings
from gaea_tune.tracking import Tracker
from gaea_tune.tune._backend import RunContext, log_outcome, open_method_run
from gaea_tune.tune._outcome import Outcome, ground_truth_column, nb201_ground_truth


class TableBackend:
    """Every method x seed as a plain-loop simulated search, spread over local processes or
    a Ray cluster (:func:`gaea_tune.tune._tabular.run_studies`)."""

    def prepare(self, config: ExperimentConfig, address: str | None, tracking_uri: str) -> None:
        """Nothing to check: the table is bundled and the searches need one CPU."""

    def run(self, context: RunContext, tracker: Tracker) -> list[dict[str, Any]]:
        return run_tabular(
            context.config, tracker, context.parent_run_id, context.invocation, context.address,
            progress=context.progress,
        )  # fmt: skip


def run_tabular(
    config: ExperimentConfig,
    tracker: Tracker,
    parent_run_id: str,
    invocation: str,
    address: str | None,
    progress: Any = None,
) -> list[dict[str, Any]]:
    """Every method x seed as a simulated search; each a child run of the comparison."""
    from gaea_tune.tune._tabular import Study, run_studies

    dataset = config.dataset["name"]
    primary = ground_truth_column("nb201", dataset)
    outcomes = []
    resolved = resolved_settings(config)["methods"]
    studies = [
        Study(method.label, method.method, dataset, config.budget_device_seconds,
              list(config.seeds), method_options(config, method))
        for method in config.methods
    ]  # fmt: skip
    # Ray only for a cluster (or one already running); on one machine a local process pool.
    everything = run_studies(studies, address=address)
    for number, (method, results) in enumerate(zip(config.methods, everything), start=1):
        for result in results:
            run_id = open_method_run(
                tracker, config, method, result.seed, invocation, parent_run_id, resolved
            )
            outcome = Outcome(
                label=method.label,
                method=method.method,
                family=method.family,
                seed=result.seed,
                budget_device_seconds=config.budget_device_seconds,
                spent_device_seconds=result.spent,
                trials=result.evaluations,
                genotype=result.incumbent,
                search_signal=result.signal,
                ground_truth=nb201_ground_truth(result.incumbent, primary),
                ground_truth_column=primary,
                curve=[[float(s), float(v)] for s, v in result.curve],
            )
            log_outcome(tracker, run_id, outcome)
            outcomes.append(outcome.to_dict())
        if progress is not None:
            progress(
                f"method {number}/{len(config.methods)} {method.label}: "
                f"{len(results)} simulated searches"
            )
    return outcomes
