"""Defects from a user review of config validation: each bad input is a one-line ConfigError
naming the field, the bad value and what is allowed, and exit status 2 from the CLI."""

from __future__ import annotations

import copy

import pytest

from gaea_tune.cli import main
from gaea_tune.config import ConfigError, apply_overrides, load_yaml, parse_config
from gaea_tune.registry import METHODS

RAW = {
    "name": "tiny",
    "space": {"name": "nb201", "C": 4, "N": 1},
    "budget": {"device_seconds": 30},
    "resources": {"gpu": 0, "cpu": 1},
    "methods": {"gaea-darts": {"epochs": 2}, "rea": {"epochs": 1}, "random": {"epochs": 1}},
}


def _error(overrides: list[str]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(apply_overrides(copy.deepcopy(RAW), overrides))
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("value, shown", [("5", "5"), ("[1, 2]", "[1, 2]"), ("x", "'x'")])
def test_method_options_that_are_not_a_mapping_are_a_one_line_error(value, shown):
    message = _error([f"methods.rea={value}"])
    assert message.startswith(
        f"methods.rea: expected a mapping of options (or nothing), got {shown}"
    )
    assert "allowed:" in message


def test_method_with_no_options_is_still_fine():
    config = parse_config(apply_overrides(copy.deepcopy(RAW), ["methods.rea="]))
    assert next(m for m in config.methods if m.label == "rea").options == {}


@pytest.mark.parametrize("method", ["gaea-darts", "random"])
@pytest.mark.parametrize("key, value", [("C", 1000), ("N", 7)])
def test_space_width_and_depth_are_refused_per_method(method, key, value):
    message = _error([f"methods.{method}.{key}={value}"])
    assert message.startswith(f"methods.{method}.{key}: {value} is not a per-method option")
    assert message.endswith(f"set space.{key} instead")


@pytest.mark.parametrize("key", ["C", "N"])
def test_registry_refuses_space_width_and_depth_for_weight_sharing(key):
    with pytest.raises(
        ValueError, match=rf"^m\.{key}: 3 is not a method option; .*set space\.{key}"
    ):
        METHODS["gaea-darts"].validate("m", "live", {key: 3}, space="nb201", C=8)


@pytest.mark.parametrize("method", ["gaea-darts", "rea"])
def test_unknown_key_lists_only_keys_a_method_may_set(method):
    message = _error([f"methods.{method}.bogus=1"])
    assert message.startswith(f"methods.{method}: unknown key 'bogus'; allowed: epochs, ")
    allowed = message.split("allowed: ", 1)[1].split(", ")
    for refused in ("C", "N", "exclude_none", "amp", "channels_last"):
        assert refused not in allowed


@pytest.mark.parametrize("gpu", ["1.5", "2.25", "10.1"])
def test_gpu_must_be_a_fraction_below_one_or_a_whole_number(gpu):
    message = _error([f"resources.gpu={gpu}"])
    assert message.startswith(f"resources.gpu: {float(gpu)!r} ")
    assert message.endswith("allowed: 0, a fraction in (0, 1), or a whole number")


@pytest.mark.parametrize("gpu", ["0", "0.25", "0.999", "1", "1.0", "2", "8"])
def test_gpu_fractions_and_whole_numbers_are_accepted(gpu):
    config = parse_config(apply_overrides(copy.deepcopy(RAW), [f"resources.gpu={gpu}"]))
    assert config.resources["gpu"] == float(gpu)


def test_yaml_merge_key_is_refused(tmp_path):
    path = tmp_path / "merge.yaml"
    path.write_text("name: tiny\nspace:\n  <<: {name: x}\n")
    with pytest.raises(ConfigError) as caught:
        load_yaml(path)
    assert str(caught.value) == (
        f"config file {str(path)!r}: unknown key '<<' at line 3, column 3 (YAML merge keys are "
        "YAML 1.1, not 1.2); write the keys out, or use an alias (*name) for a whole mapping"
    )


def test_yaml_merge_key_in_a_set_value_is_refused():
    with pytest.raises(ConfigError, match=r"^--set space: unknown key '<<' at line 1"):
        apply_overrides(copy.deepcopy(RAW), ["space={<<: {name: x}}"])


@pytest.mark.parametrize(
    "override",
    ["methods.rea=5", "methods.gaea-darts.C=1000", "resources.gpu=1.5", "methods.gaea-darts.N=7"],
)
def test_cli_exits_2_with_one_line(tmp_path, capsys, override):
    path = tmp_path / "c.yaml"
    path.write_text(
        "name: tiny\nspace: {name: nb201, C: 4, N: 1}\nbudget: {device_seconds: 30}\n"
        f"output_dir: {tmp_path / 'out'}\n"
        "methods: {gaea-darts: {epochs: 2}, rea: {epochs: 1}}\n"
    )
    assert main(["validate", str(path), "--set", override]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gaea-tune: error: ") and "\n" not in err
    assert override.split("=")[0] in err
    assert not (tmp_path / "out").exists()


def test_budget_unit_says_what_the_seconds_are(capsys):
    from gaea_tune.cli import main
    from gaea_tune.config import load_config

    assert load_config("tune_configs/quickstart.yaml").budget_unit == "cpu"
    assert load_config("tune_configs/nb201_tabular_compare.yaml").budget_unit == "simulated"
    live_table = load_config("tune_configs/nb201_tabular_live.yaml")
    assert live_table.budget_unit == "simulated" and live_table.device_kind == "cpu"
    assert main(["validate", "tune_configs/nb201_tabular.yaml"]) == 0
    out = capsys.readouterr().out
    assert "seeds 0..499 (500 seeds)" in out and "12000 simulated-seconds per method" in out
