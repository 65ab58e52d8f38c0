"""Tabular (simulated) NB201 search: budget, costs, ground truth, seeds, the CLI."""

from __future__ import annotations

import argparse
import json

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
    config = tmp_path / "tab.yaml"  # the compare dialect (mode: tabular is implied here)
    config.write_text(
        f"name: tab\noutput_dir: {tmp_path}\ndataset: {{name: cifar10}}\n"
        "budget: {device_seconds: 12000}\nseeds: 4\n"
        "methods: {random: {}, rea-small: {method: rea, population_size: 5, sample_size: 2}}\n"
    )
    module, args = _parse([str(config), "--no-ray", "--seeds", "3", "--json", str(tmp_path / "s"),
                           "--datasets", "cifar10", "cifar100"])  # fmt: skip
    assert module.run(args) == 0
    out = capsys.readouterr().out
    expected = summarize(simulate_many("rea", "cifar100", 24000, range(3), population_size=5,
                                       sample_size=2))  # fmt: skip
    assert f"{expected['mean']:.2f} +- {expected['std']:.2f}" in out
    assert sum(line.startswith(("random ", "rea-small ")) for line in out.splitlines()) == 4
    assert "for all 4 method x dataset studies of 3 seeds at once (inline, 1 worker); " in out
    summary = json.loads((tmp_path / "s").read_text())
    assert summary["executor"] == "inline" and summary["workers"] == 1
    per_seed = summary["rows"][0]["per_seed"]
    assert [r["seed"] for r in per_seed] == [0, 1, 2] and summary["rows"][0]["runs"] == 3
    assert summary["rows"][0]["mean"] == pytest.approx(
        np.mean([r["test_accuracy"] for r in per_seed])
    )
    assert set(summary["search_cpu_seconds"]) == {"random", "rea-small"}
    assert [(r["method"], r["dataset"]) for r in summary["rows"]] == [
        ("random", "cifar10"), ("random", "cifar100"), ("rea-small", "cifar10"),
        ("rea-small", "cifar100")]  # fmt: skip


def test_command_rejects_bad_configs(capsys, tmp_path):
    config = tmp_path / "bad.yaml"
    head = f"name: bad\noutput_dir: {tmp_path}\ndataset: {{name: cifar10}}\nseeds: 2\n"
    config.write_text(head + "budget: {device_seconds: 12000}\nmethods: {anneal: {}}\n")
    module, args = _parse([str(config), "--no-ray"])
    assert module.run(args) == 2
    assert "methods: unknown value 'anneal'" in capsys.readouterr().out
    config.write_text(head + "budget: {device_seconds: 0}\nmethods: {random: {}}\n")
    assert module.run(args) == 2
    assert "budget.device_seconds: must be a positive number, got 0" in capsys.readouterr().out
    config.write_text(head + "budget: {device_seconds: 100}\nmethods: {random: {}}\n")
    module, args = _parse([str(config), "--no-ray", "--methods", "rea"])
    assert module.run(args) == 2
    assert "--methods: rea not in the config; allowed: random" in capsys.readouterr().out
    module, args = _parse([str(config), "--no-ray", "--address", "10.0.0.1:6379"])
    assert module.run(args) == 2
    assert (
        "--address '10.0.0.1:6379' runs the searches on a Ray cluster; not with --executor "
        "inline" in capsys.readouterr().out
    )
    module, args = _parse([str(config), "--no-ray", "--datasets", "mnist"])
    assert module.run(args) == 2
    assert "--datasets: unknown value 'mnist'; allowed: cifar10" in capsys.readouterr().out
    module, args = _parse([str(config), "--set", "mode=live"])
    assert module.run(args) == 2
    assert "mode: 'live': the tabular command runs simulated searches" in capsys.readouterr().out
    # a --json path that cannot be written: refused before any search runs
    module, args = _parse([str(config), "--no-ray", "--json", str(tmp_path / "no" / "s.json")])
    assert module.run(args) == 2
    assert "--json: cannot write" in capsys.readouterr().out
    module, args = _parse([str(config), "--no-ray", "--json", str(tmp_path)])
    assert module.run(args) == 2
    assert "is a folder; give a file path, e.g. study.json" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # argparse: not allowed with each other
        _parse([str(config), "--no-ray", "--executor", "ray"])
    # a budget below one evaluation: one line, no traceback
    config.write_text(head + "budget: {device_seconds: 1}\nmethods: {rea: {}}\n")
    module, args = _parse([str(config), "--no-ray"])
    assert module.run(args) == 2
    (line,) = capsys.readouterr().out.strip().splitlines()
    assert line.startswith(
        "gaea-tune tabular: error: rea on cifar10: budget_seconds=1.0 is too small"
    )


def test_command_runs_a_method_named_twice_once(capsys, tmp_path):
    config = tmp_path / "tab.yaml"
    config.write_text(f"name: tab\noutput_dir: {tmp_path}\ndataset: {{name: cifar10}}\n"
                      "budget: {device_seconds: 12000}\nseeds: 2\nmethods: {rea: {}}\n")  # fmt: skip
    module, args = _parse([str(config), "--no-ray", "--methods", "rea", "rea"])
    assert module.run(args) == 0
    assert sum(line.startswith("rea ") for line in capsys.readouterr().out.splitlines()) == 1


def test_shipped_config_is_valid():
    from gaea_tune.commands.tabular import dataset_budgets, load_tabular_config

    config = load_tabular_config("tune_configs/nb201_tabular.yaml")
    assert config.dataset["name"] == "cifar10" and config.budget_device_seconds == 12000
    assert {m.label for m in config.methods} >= {"random", "rea", "bohb"}
    budgets = dataset_budgets(config, ["cifar10", "cifar100", "ImageNet16-120"])
    assert budgets == pytest.approx({"cifar10": 12000, "cifar100": 24000, "ImageNet16-120": 72816})


@pytest.fixture(scope="module")
def ray_two_cpus():
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _plain(study):
    return simulate_many(study.method, study.dataset, study.budget_seconds, study.seeds,
                         **study.options)  # fmt: skip


def _two_studies():
    from gaea_tune.tune._tabular import Study

    return [
        Study("rea", "rea", "cifar10", 12000, list(range(9)), {"population_size": 10,
                                                               "sample_size": 3}),
        Study("bohb-paper", "bohb", "cifar100", 24000, [4, 1, 3], {"style": "paper"}),
    ]  # fmt: skip


def _same(a, b):
    return [(r.seed, r.incumbent, r.test_accuracy, r.curve) for r in a] == [
        (r.seed, r.incumbent, r.test_accuracy, r.curve) for r in b
    ]


@pytest.mark.integration
def test_ray_spreads_the_studies_and_matches_the_plain_loop(ray_two_cpus, monkeypatch):
    import ray

    from gaea_tune.tune import _tabular

    # The first seed of each study here, then Ray (already running) takes the rest, however cheap.
    monkeypatch.setattr(_tabular, "RAY_RUNNING_PAYS_SECONDS", 0.0)
    remote_calls = []
    real_remote = ray.remote
    monkeypatch.setattr(
        ray, "remote", lambda *a, **k: remote_calls.append(k) or real_remote(*a, **k)
    )
    studies = _two_studies()
    counted = []
    where = {}
    spread = _tabular.run_studies(
        studies, on_chunk=lambda study, n: counted.append((study, n)), where=where
    )
    assert remote_calls == [{"num_cpus": 1}] and where == {"executor": "ray", "workers": 2}
    for study, results in zip(studies, spread):
        assert _same(results, _plain(study))
        assert sum(n for s, n in counted if s is study) == len(study.seeds)


@pytest.mark.integration
def test_a_local_process_pool_runs_the_studies_and_matches_the_plain_loop(monkeypatch):
    import ray

    from gaea_tune.tune import _tabular

    def no_ray(*args, **kwargs):
        raise AssertionError("Ray was used on one machine")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as if no Ray ran in this process
    monkeypatch.setattr(ray, "init", no_ray)
    monkeypatch.setattr(ray, "remote", no_ray)
    monkeypatch.setattr(_tabular, "POOL_PAYS_SECONDS", 0.0)
    monkeypatch.setattr(_tabular, "usable_cpus", lambda: 2)  # a pool even on a 1-CPU runner
    started = []
    real_pool = _tabular._pool_chunks
    monkeypatch.setattr(_tabular, "_pool_chunks", lambda *a: started.append(1) or real_pool(*a))
    studies = _two_studies()
    counted = []
    where = {}
    pooled = _tabular.run_studies(
        studies, on_chunk=lambda study, n: counted.append((study, n)), where=where
    )
    assert started == [1] and where == {"executor": "pool", "workers": 2}
    for study, results in zip(studies, pooled):
        assert _same(results, _plain(study))
        assert sum(n for s, n in counted if s is study) == len(study.seeds)


def test_run_studies_stays_in_process_when_no_worker_would_pay(monkeypatch):
    import ray

    from gaea_tune.tune import _tabular

    def refused(*args, **kwargs):
        raise AssertionError("a worker was started although it would not pay")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refused)
    monkeypatch.setattr(ray, "remote", refused)
    monkeypatch.setattr(_tabular, "_pool_chunks", refused)
    monkeypatch.setattr(_tabular, "POOL_PAYS_SECONDS", 1e9)
    monkeypatch.setattr(_tabular, "RAY_START_PAYS_SECONDS", 1e9)
    monkeypatch.setattr(_tabular, "RAY_RUNNING_PAYS_SECONDS", 1e9)
    results = _tabular.run_seeds("rea", "cifar10", 12000, [5, 2, 7], population_size=10)
    plain = simulate_many("rea", "cifar10", 12000, [5, 2, 7], population_size=10)
    assert _same(results, plain)
    studies = _two_studies()
    for executor in ("auto", "inline"):
        for study, got in zip(studies, _tabular.run_studies(studies, executor=executor)):
            assert _same(got, _plain(study))


def test_run_studies_refuses_bad_input_before_any_search(monkeypatch):
    from gaea_tune.baselines import _tabular as searches
    from gaea_tune.tune import _tabular

    monkeypatch.setattr(searches, "_search", lambda *a: pytest.fail("a search ran"))
    study = _two_studies()[0]
    with pytest.raises(ValueError, match="chunks_per_cpu must be an integer >= 1, got 0"):
        _tabular.run_studies([study], chunks_per_cpu=0)
    with pytest.raises(ValueError, match="executor: unknown value 'threads'; allowed: auto, "):
        _tabular.run_studies([study], executor="threads")
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    with pytest.raises(ValueError, match="--address 127.0.0.1:1: nothing answers at 127.0.0.1:1"):
        _tabular.run_studies([study], address="127.0.0.1:1")
    bad = _tabular.Study("x", "rea", "cifar10", 12000, [1], {"population_size": 0})
    with pytest.raises(ValueError, match="population_size"):
        _tabular.run_studies([study, bad])
    with pytest.raises(ValueError, match="seeds must not be empty"):
        _tabular.run_studies([_tabular.Study("x", "rea", "cifar10", 12000, [])])
    with pytest.raises(ValueError, match="budget_seconds must be > 0, got 0"):
        _tabular.run_studies([_tabular.Study("x", "rea", "cifar10", 0, [1])])


# ---------------------------------------------------------------- speed paths keep the results


def _ask_tell(searcher, steps):
    bench = tabular_benchmark("cifar10")
    asked = []
    for _ in range(steps):
        proposal = searcher.ask()
        asked.append((str(proposal.genotype), proposal.fidelity))
        fidelity = proposal.fidelity or 12
        searcher.tell(proposal, float(bench.signal[fidelity][proposal.genotype.index]))
    return asked


@pytest.mark.parametrize("method", ["bohb", "tpe"])
def test_a_session_gives_the_same_proposals_and_leaves_the_global_rng_alone(method):
    from gaea_tune.baselines import make_searcher
    from search_spaces.nb201 import NB201Space

    options = {"num_samples": 4, "random_fraction": 0.0} if method == "bohb" else {}
    plain = _ask_tell(make_searcher(method, NB201Space(), 3, **options), 40)
    np.random.seed(123)
    outside = np.random.get_state()[1].copy()
    searcher = make_searcher(method, NB201Space(), 3, **options)
    with searcher.session():
        with searcher.session():  # re-entrant
            first = _ask_tell(searcher, 25)
        state = searcher.state_dict()
        rest = _ask_tell(searcher, 15)
    assert first + rest == plain
    assert np.array_equal(np.random.get_state()[1], outside)
    # A state taken inside a session resumes (outside one) where that search stood.
    resumed = make_searcher(method, NB201Space(), 3, **options)
    resumed.load_state_dict(state)
    assert _ask_tell(resumed, 15) == rest
    assert np.array_equal(np.random.get_state()[1], outside)


def test_param_decoder_matches_decode_and_its_errors():
    from gaea_tune.baselines import decode, encode
    from gaea_tune.baselines._params import ParamDecoder
    from search_spaces.nb201 import NB201Space

    space = NB201Space()
    decoder = ParamDecoder(space, max_cached=2)
    for text in ("|none~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|none~2|",
                 "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|",
                 "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|none~2|"):  # fmt: skip
        params = encode(space, text)
        assert decoder(params) == decode(space, params) == space.parse(text)
    bad = dict(params, edge_1_0="conv_7x7")
    with pytest.raises(ValueError, match="parameter 'edge_1_0' got 'conv_7x7'"):
        decoder(bad)
    with pytest.raises(ValueError, match=r"parameters \['edge_3_2'\] missing"):
        decoder({k: v for k, v in params.items() if k != "edge_3_2"})


def _bench_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "bench_tabular.py"
    spec = importlib.util.spec_from_file_location("bench_tabular", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("label", "seeds"), [("random", 8), ("rea", 8), ("bohb-paper", 2), ("bohb", 1), ("tpe", 2)]
)
def test_the_benchmarks_bare_library_loops_find_our_incumbents(label, seeds):
    # The speed ratio in scripts/bench_tabular.py is only fair if its bare loops do the same
    # work: seeded as our searchers seed the libraries, they must end on the same cells.
    from search_spaces.nb201 import NB201Genotype

    bench = _bench_script()
    method, options = bench.METHODS[label]
    ours = simulate_many(method, "cifar10", 12000, range(seeds), **options)
    bare = bench.bare_loop(label, bench._Table("cifar10"), range(seeds), 12000)
    assert [NB201Genotype.from_string(r.incumbent).index for r in ours] == bare


def test_the_benchmark_study_runs_all_methods_at_once(monkeypatch, capsys, tmp_path):
    module = _bench_script()
    out = tmp_path / "bench.json"
    argv = ["bench_tabular.py", "--seeds", "3", "--no-bench", "--methods", "random", "rea",
            "--executor", "inline", "--json", str(out)]  # fmt: skip
    monkeypatch.setattr("sys.argv", argv)
    module.main()
    printed = capsys.readouterr().out
    assert "study wall time, all methods at once (inline, 1 worker(s)): " in printed
    report = json.loads(out.read_text())
    assert [row["method"] for row in report["study"]] == ["random", "rea"]
    assert report["study_where"] == {"executor": "inline", "workers": 1}
    plain = summarize(simulate_many("rea", "cifar10", 12000, range(3), population_size=10,
                                    sample_size=3))  # fmt: skip
    assert report["study"][1]["mean"] == pytest.approx(plain["mean"])


@pytest.mark.integration
def test_command_runs_the_study_in_a_pool_or_on_ray(ray_two_cpus, tmp_path, capsys):
    config = tmp_path / "tab.yaml"
    config.write_text(
        f"name: tab\noutput_dir: {tmp_path}\ndataset: {{name: cifar10}}\n"
        "budget: {device_seconds: 12000}\nseeds: 4\n"
        "methods: {rea: {population_size: 5, sample_size: 2}, paper: {method: bohb, style: paper}}\n"
    )
    expected = summarize(simulate_many("rea", "cifar10", 12000, range(4), population_size=5,
                                       sample_size=2))  # fmt: skip
    from gaea_tune._local_pool import usable_cpus

    for executor, workers in (("pool", usable_cpus()), ("ray", 2)):
        out = tmp_path / f"{executor}.json"
        module, args = _parse([str(config), "--executor", executor, "--json", str(out)])
        assert module.run(args) == 0
        printed = capsys.readouterr().out
        assert f"({executor}, {workers} worker" in printed
        summary = json.loads(out.read_text())
        assert summary["executor"] == executor and summary["workers"] == workers
        assert summary["rows"][0]["mean"] == pytest.approx(expected["mean"])


def test_chunks_go_longest_first_and_cover_every_seed_once():
    from gaea_tune.tune._tabular import _jobs

    rest = [list(range(10)), [20, 21, 22], []]
    jobs = _jobs(rest, per_search=[0.01, 1.0, 9.0], count=4)
    costs = [[0.01, 1.0][i] * len(chunk) for i, chunk in jobs]
    assert costs == sorted(costs, reverse=True)
    assert [i for i, _ in jobs[:3]] == [1, 1, 1]  # the expensive study's chunks first
    assert sorted(s for i, chunk in jobs if i == 0 for s in chunk) == list(range(10))
    assert sorted(s for i, chunk in jobs if i == 1 for s in chunk) == [20, 21, 22]
    assert len([1 for i, _ in jobs if i == 0]) == 4
