"""Table-backed live trials (``dataset.simulate: table``): the real live path -- Tune searchers,
TuneBOHB + HyperBandForBOHB, the budget stopper and ledger, the MLflow callback and the report --
on NB201 in seconds, with the table's recorded validation accuracy and training seconds."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from gaea_tune.config import ConfigError, parse_config
from gaea_tune.nb201_table import SEARCH_COLUMNS, load_table
from gaea_tune.tune._budget import read_events
from search_spaces.nb201 import NB201Genotype

CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def _raw(**changes):
    raw = {
        "name": "table-live",
        "mode": "live",
        "space": {"name": "nb201"},
        "dataset": {"name": "cifar10", "simulate": "table"},
        "budget": {"device_seconds": 2400},  # about 15 evaluations of 12 epochs
        "seeds": 2,
        # six Tune runs side by side on two CPUs, each with one trial actor that it reuses
        "resources": {"cpu": 0.25, "gpu": 0},
        "methods": {
            "random": {"max_concurrent": 1},
            "rea": {"population_size": 5, "sample_size": 2, "max_concurrent": 1},
            "bohb": {"max_concurrent": 1},
        },
    }
    raw.update(changes)
    return raw


def test_records_are_the_tables_validation_columns_and_seconds():
    from gaea_tune.tune._table_trainable import table_records

    table = load_table()
    records = table_records(NB201Genotype.from_string(CELL), "cifar100", 200)
    assert [r["epoch"] for r in records] == [12, 200]
    assert records[0]["search_signal"] == table.lookup(CELL, "cifar100_val_12")
    assert records[1]["search_signal"] == table.lookup(CELL, "cifar100_val_200")
    seconds = table.lookup(CELL, "cifar10_valid_epoch_seconds")
    assert records[0]["device_seconds"] == pytest.approx(12 * seconds * 2.0)  # CIFAR-100: 2x
    assert records[1]["device_seconds"] == pytest.approx(200 * seconds * 2.0)
    # never a test column: the signal is the search split's validation accuracy
    assert all("test" not in column for column in SEARCH_COLUMNS["cifar10"][:2])
    only_12 = table_records(NB201Genotype.from_string(CELL), "cifar10", 12)
    assert [r["search_signal"] for r in only_12] == [table.lookup(CELL, "cifar10_valid_val_12")]
    with pytest.raises(ValueError, match="epochs: 13 is not a fidelity the NB201 table records"):
        table_records(NB201Genotype.from_string(CELL), "cifar10", 13)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"dataset": {"name": "cifar10", "simulate": "tables"}},
         "dataset.simulate: unknown value 'tables' (did you mean 'table'?); allowed: table"),
        ({"mode": "tabular"}, "dataset.simulate: 'table' is for live trials"),
        ({"dataset": {"name": "cifar10-subset", "simulate": "table"}},
         "dataset.name: unknown value 'cifar10-subset'"),
        ({"space": {"name": "darts"}}, "space.name: dataset.simulate: table needs 'nb201'"),
        ({"methods": {"gaea-darts": {}}}, "methods: unknown value 'gaea-darts'; allowed: random"),
        ({"methods": {"random": {"batch_size": 64}}},
         "methods.random: unknown key 'batch_size'; allowed: epochs, max_concurrent"),
        ({"methods": {"rea": {"epochs": 20}}},
         "methods.rea.epochs: 20 is not a fidelity the NB201 table records; allowed: 12, 200"),
        ({"methods": {"bohb": {"epochs": 200, "reduction_factor": 3}}},
         "methods.bohb.reduction_factor: 3 does not fit the table's two fidelities"),
    ],
)  # fmt: skip
def test_config_refuses_what_table_trials_cannot_do(changes, message):
    with pytest.raises(ConfigError) as error:
        parse_config(_raw(**changes))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_resolved_settings_say_the_trials_replay_the_table():
    from gaea_tune.resolve import resolved_settings

    config = parse_config(_raw(methods={"bohb": {"epochs": 200}}))
    bohb = resolved_settings(config)["methods"]["bohb"]
    assert bohb["training"] == {"epochs": 200, "fidelities": [12, 200], "trains": False}
    assert bohb["search"]["reduction_factor"] == 2
    assert "cifar10_valid_val_12 at 12 epochs" in bohb["search_signal"]


@pytest.mark.integration
def test_compare_runs_the_live_path_on_the_table(tmp_path, ray_local):
    from gaea_tune.report import markdown_table, write_report
    from gaea_tune.tracking import Tracker
    from gaea_tune.tune import compare

    config = parse_config(_raw(output_dir=str(tmp_path / "out"), progress_every_seconds=5))
    started = time.monotonic()
    result = compare(config, progress=lambda text: None)
    elapsed = time.monotonic() - started
    # Each search (first to last result of its Tune run) takes seconds; the rest is starting
    # Ray workers, two at a time, which staggers the six runs' starts by tens of seconds on a
    # quiet 2-core machine and by minutes on a loaded one, so the whole gets a hang guard only.
    spans = {}
    for path in (Path(result["run_dir"]) / "events").glob("*.jsonl"):
        times = [e["time"] for e in read_events(path) if e["kind"] == "result"]
        spans[path.stem] = round(max(times) - min(times), 1)
    assert len(spans) == 6 and max(spans.values()) < 60, f"the searches took {spans} s"
    assert elapsed < 400, f"the table-backed comparison took {elapsed:.0f} s"
    tracker = Tracker(result["tracking_uri"], config.name)
    summary = write_report(tracker, Path(result["workdir"]) / "report", result["parent_run_id"])

    # summary.json: what the report wrote, complete and JSON-valid
    written = json.loads((Path(result["workdir"]) / "report" / "summary.json").read_text())
    assert written["methods"].keys() == summary["methods"].keys() == {"random", "rea", "bohb"}
    assert written["mode"] == "live" and written["ground_truth_column"] == "cifar10_test_200"
    assert written["device_kind"] == "simulated"  # table seconds, not this machine's
    table_md = markdown_table(summary)
    assert "simulated-hours spent" in table_md and "machine:" not in table_md
    assert not written["failed_methods"]
    table = load_table()
    budget = config.budget_device_seconds
    dearest = float(table.column("cifar10_valid_epoch_seconds").max()) * 12
    for label, entry in written["methods"].items():
        assert [s["seed"] for s in entry["seeds"]] == [0, 1], label
        for seed in entry["seeds"]:
            assert seed["status"] == "finished", (label, seed)
            # budgets met by the budget stopper: used, and overrun by at most one report
            assert budget / 2 < seed["spent_device_seconds"] <= budget + dearest, (label, seed)
            assert seed["trials"] >= 5
            # ground truth from the table, for the incumbent chosen by the validation signal
            truth = table.lookup(seed["genotype"], "cifar10_test_200")
            assert seed["ground_truth"]["cifar10_test_200"] == truth
            assert seed["search_signal"] == table.lookup(seed["genotype"], "cifar10_valid_val_12")
            assert seed["curve"][-1][1] == truth and seed["curve"][-1][0] <= budget + dearest
    for label in ("random", "rea", "bohb"):
        assert isinstance(summary["statistics"], dict) and summary["methods"][label]["mean"] > 80

    # the MLflow run tree: comparison > method x seed > trial
    runs = tracker.client.search_runs([tracker.experiment_id], max_results=5000)
    by_id = {r.info.run_id: r for r in runs}
    levels = [r.data.tags.get("gaea.level") for r in runs]
    assert levels.count("comparison") == 1 and levels.count("method") == 3 * 2
    methods = [r for r in runs if r.data.tags.get("gaea.level") == "method"]
    assert {r.data.tags["mlflow.parentRunId"] for r in methods} == {result["parent_run_id"]}
    trials = [r for r in runs if r.data.tags.get("gaea.level") == "trial"]
    assert trials and all(
        by_id[r.data.tags["mlflow.parentRunId"]].data.tags["gaea.level"] == "method" for r in trials
    )
    for method in methods:
        children = [t for t in trials if t.data.tags["mlflow.parentRunId"] == method.info.run_id]
        assert len(children) == int(method.data.metrics["trials"]), method.data.tags
        assert all(t.data.tags.get("genotype") for t in children)
        assert method.data.metrics["spent_device_seconds"] <= budget + dearest
    assert {r.info.status for r in runs} == {"FINISHED"}
    # the table's seconds are what the trials reported: every trial's device-seconds is a
    # recorded training cost of its genotype
    trial = trials[0]
    seconds = trial.data.metrics["device_seconds"]
    assert seconds == pytest.approx(
        table.training_cost(
            trial.data.tags["genotype"], int(trial.data.metrics["epoch"]), "cifar10"
        )
    )


def test_the_registry_and_the_trainable_agree_on_epochs():
    """What ``config`` accepts as a table-backed trial's epochs is what the trainable runs."""
    from gaea_tune.registry import METHODS, TableFidelity
    from gaea_tune.tune._table_trainable import fidelities

    good, bad = TableFidelity().examples()
    for value in [*good, *bad]:
        try:
            METHODS["random"].validate("m", "live", {"epochs": value}, simulate="table")
            registry = True
        except ValueError:
            registry = False
        try:
            fidelities(value)
            runtime = True
        except (ValueError, TypeError):
            runtime = False
        assert registry == runtime, value
    assert good and bad


@pytest.mark.integration
def test_two_fidelity_bohb_promotes_trials_to_the_200_epoch_record(tmp_path, ray_local):
    from gaea_tune.tune import compare

    raw = _raw(output_dir=str(tmp_path / "out"), seeds=[0], budget={"device_seconds": 6000},
               methods={"bohb": {"epochs": 200, "max_concurrent": 1}})  # fmt: skip
    config = parse_config(raw)
    result = compare(config, progress=lambda text: None)
    (outcome,) = result["outcomes"]
    assert outcome["status"] == "finished"
    events = [
        json.loads(line)
        for line in (Path(result["run_dir"]) / "events" / "bohb-seed0.jsonl")
        .read_text()
        .splitlines()
        if line
    ]
    results = [e for e in events if e["kind"] == "result"]
    epochs = {e["epoch"] for e in results}
    assert epochs == {12, 200}, epochs  # both recorded fidelities, and only those
    table = load_table()
    for event in results:  # the signal at each fidelity is that fidelity's validation record
        column = "cifar10_valid_val_12" if event["epoch"] == 12 else "cifar10_valid_val_200"
        assert event["search_signal"] == table.lookup(event["genotype"], column)
    promoted = {e["trial_id"] for e in results if e["epoch"] == 200} & {
        e["trial_id"] for e in results if e["epoch"] == 12
    }
    assert promoted, "no trial was paused at 12 epochs and resumed to 200"
    dearest = float(table.column("cifar10_valid_epoch_seconds").max()) * 200
    assert outcome["spent_device_seconds"] <= 6000 + dearest
    # BOHB's incumbent: the best among the results at the largest fidelity reached
    top = [e for e in results if e["epoch"] == 200]
    assert outcome["search_signal"] == max(e["search_signal"] for e in top)
