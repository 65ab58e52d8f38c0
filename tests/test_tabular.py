"""Tabular (simulated) NB201 search: budget, costs, ground truth, seeds, the CLI."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from gaea_tune.baselines import simulate, simulate_many, summarize, tabular_benchmark
from gaea_tune.nb201_table import load_table


def test_search_stays_within_budget_and_reports_the_incumbents_ground_truth():
    table = load_table()
    result = simulate("random", "cifar10", 12000, seed=0)
    assert 0 < result.spent <= 12000
    assert result.evaluations > 10
    assert result.test_accuracy == table.lookup(result.incumbent, "cifar10_test_200")
    assert result.signal == table.lookup(result.incumbent, "cifar10_valid_val_12")
    assert result.fidelity == 12
    assert result.curve[-1] == (pytest.approx(result.curve[-1][0]), result.test_accuracy)
    assert [s for s, _ in result.curve] == sorted(s for s, _ in result.curve)


def test_search_stops_when_the_next_evaluation_would_not_fit():
    # Re-run the same seed with a budget that just fits the evaluations it made: same result.
    full = simulate("rea", "cifar10", 3000, seed=4)
    exact = simulate("rea", "cifar10", full.spent, seed=4)
    assert (exact.evaluations, exact.incumbent) == (full.evaluations, full.incumbent)
    shorter = simulate("rea", "cifar10", full.spent - 1e-6, seed=4)
    assert shorter.evaluations == full.evaluations - 1


def test_costs_scale_with_the_dataset_factor():
    c10, c100, imnet = (tabular_benchmark(d) for d in ("cifar10", "cifar100", "ImageNet16-120"))
    assert np.allclose(c100.epoch_seconds, 2 * c10.epoch_seconds)
    assert np.allclose(imnet.epoch_seconds, 6.068 * c10.epoch_seconds)
    a = simulate("random", "cifar10", 12000, seed=1)
    b = simulate("random", "cifar100", 24000, seed=1)
    assert a.evaluations == b.evaluations  # same cells drawn, twice the price, twice the budget
    assert b.test_accuracy == load_table().lookup(b.incumbent, "cifar100_test_200")


@pytest.mark.parametrize("method", ["random", "rea", "bohb", "tpe"])
def test_simulation_is_reproducible_from_its_seed(method):
    budget = 3000 if method in ("bohb", "tpe") else 12000
    first = simulate(method, "cifar10", budget, seed=11)
    again = simulate(method, "cifar10", budget, seed=11)
    assert (first.incumbent, first.evaluations, first.curve) == (
        again.incumbent,
        again.evaluations,
        again.curve,
    )


def test_bohb_uses_the_tables_fidelities():
    table_style = simulate("bohb", "cifar10", 12000, seed=0)
    paper_style = simulate("bohb", "cifar10", 12000, seed=0, style="paper")
    assert table_style.fidelity == 200  # its incumbent comes from the top fidelity
    assert table_style.signal == load_table().lookup(table_style.incumbent, "cifar10_valid_val_200")
    assert paper_style.fidelity == 12
    # The table fixes the fidelities: asking for others is refused before any search.
    with pytest.raises(ValueError, match="bohb: unknown key 'min_fidelity'; allowed: eta"):
        simulate("bohb", "cifar10", 12000, seed=0, min_fidelity=50, max_fidelity=200)


def test_searches_beat_a_random_cell_and_rea_beats_random_on_average():
    # A random cell averages about 87 on cifar10_test_200; the table's best is its maximum.
    best = load_table().best("cifar10_test_200")[1]
    rs = summarize(simulate_many("random", "cifar10", 12000, range(60)))
    rea = summarize(simulate_many("rea", "cifar10", 12000, range(60)))
    assert 92.5 < rs["mean"] < rea["mean"] < best


def test_invalid_inputs_name_the_bad_value():
    with pytest.raises(ValueError, match="unknown method 'darts'; allowed: random, rea, bohb, tpe"):
        simulate("darts", "cifar10", 12000, seed=0)
    with pytest.raises(ValueError, match="unknown tabular dataset 'mnist'; allowed: cifar10"):
        simulate("random", "mnist", 12000, seed=0)
    with pytest.raises(ValueError, match="budget_seconds must be > 0, got -5"):
        simulate("random", "cifar10", -5, seed=0)
    with pytest.raises(ValueError, match="too small for a single evaluation"):
        simulate("random", "cifar10", 1.0, seed=0)
    with pytest.raises(
        ValueError, match="bohb.style: unknown value 'fancy'; allowed: table, paper"
    ):
        simulate("bohb", "cifar10", 12000, seed=0, style="fancy")
    with pytest.raises(
        ValueError,
        match="sample_size: 3 is above population_size=2; allowed: sample_size <= population_size",
    ):
        simulate("rea", "cifar10", 12000, seed=0, population_size=2, sample_size=3)


def _parse(argv):
    from gaea_tune.commands import tabular

    parser = argparse.ArgumentParser()
    tabular.add_parser(parser.add_subparsers(dest="command"))
    return tabular, parser.parse_args(["tabular", *argv])


def test_command_prints_mean_and_std_per_method_and_dataset(capsys, tmp_path):
    config = tmp_path / "tab.yaml"
    config.write_text(
        "seeds: 4\ndatasets: {cifar10: 12000, cifar100: 24000}\n"
        "methods: {random: {}, rea-small: {method: rea, population_size: 5, sample_size: 2}}\n"
    )
    module, args = _parse([str(config), "--no-ray", "--seeds", "3", "--json", str(tmp_path / "s")])
    assert module.run(args) == 0
    out = capsys.readouterr().out
    expected = summarize(simulate_many("rea", "cifar100", 24000, range(3), population_size=5,
                                       sample_size=2))  # fmt: skip
    assert f"{expected['mean']:.2f} +- {expected['std']:.2f}" in out
    assert sum(line.startswith(("random ", "rea-small ")) for line in out.splitlines()) == 4
    assert "wall time per method: random" in out
    assert (tmp_path / "s").exists()


def test_command_rejects_bad_configs(capsys, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("seeds: 2\ndatasets: {cifar10: 12000}\nmethods: {anneal: {}}\n")
    module, args = _parse([str(config), "--no-ray"])
    assert module.run(args) == 2
    assert "method 'anneal' of 'anneal' is unknown" in capsys.readouterr().out
    config.write_text("seeds: 2\ndatasets: {cifar10: 0}\nmethods: {random: {}}\n")
    assert module.run(args) == 2
    assert "budget of 'cifar10' must be > 0" in capsys.readouterr().out
    config.write_text("seeds: 2\ndatasets: {cifar10: 100}\nmethods: {random: {}}\n")
    module, args = _parse([str(config), "--no-ray", "--methods", "rea"])
    assert module.run(args) == 2
    assert "['rea'] not in the config" in capsys.readouterr().out


def test_shipped_config_is_valid():
    from gaea_tune.commands.tabular import load_tabular_config

    config = load_tabular_config("tune_configs/nb201_tabular.yaml")
    assert config["datasets"]["cifar10"] == 12000
    assert set(config["methods"]) >= {"random", "rea", "bohb"}


@pytest.fixture(scope="module")
def ray_two_cpus():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.integration
def test_ray_spreads_seeds_and_matches_the_plain_loop(ray_two_cpus):
    from gaea_tune.tune._tabular import run_seeds

    seeds = list(range(9))
    spread = run_seeds("rea", "cifar10", 12000, seeds, population_size=10, sample_size=3)
    plain = simulate_many("rea", "cifar10", 12000, seeds, population_size=10, sample_size=3)
    assert [r.seed for r in spread] == seeds
    assert [(r.incumbent, r.test_accuracy) for r in spread] == [
        (r.incumbent, r.test_accuracy) for r in plain
    ]
