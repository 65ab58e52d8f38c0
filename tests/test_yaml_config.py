"""Config files and ``--set`` values are read as YAML 1.2 (core schema), strictly."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from gaea_tune.cli import main
from gaea_tune.config import ConfigError, apply_overrides, load_config, load_yaml, parse_config

ROOT = Path(__file__).resolve().parent.parent

BASE = """\
name: tiny
mode: live
space: {name: nb201, C: 4, N: 1}
dataset: {name: cifar10-subset, resolution: 16, max_train: 64, max_valid: 64}
budget: {device_seconds: 30}
seeds: [0, 1]
resources: {gpu: 0, cpu: 1}
"""
RAW = {
    "name": "tiny",
    "space": {"name": "nb201", "C": 4, "N": 1},
    "budget": {"device_seconds": 30},
    "resources": {"gpu": 0, "cpu": 1},
    "methods": {"gaea-darts": {"epochs": 2, "arch_lr": 0.1}, "random": {"epochs": 1}},
}


def _write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _error(path: Path, overrides: list[str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path, overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- YAML 1.2 core-schema scalars ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3e-4", 0.0003),
        ("1e-3", 0.001),
        ("-2.5E+2", -250.0),
        (".5", 0.5),
        ("1.", 1.0),
        ("1e3", 1000.0),
        ("12", 12),
        ("+7", 7),
        ("010", 10),  # decimal under 1.2 (no implicit octal)
        ("0o17", 15),
        ("0x1F", 31),
        ("1_000", "1_000"),  # the core schema has no digit separators
        ("0b101", "0b101"),
        ("1:30", "1:30"),  # no sexagesimal numbers
        ("true", True),
        ("False", False),
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("~", None),
        ("null", None),
        ("", None),
        ("2024-01-01", "2024-01-01"),  # no implicit timestamps
        ("~/data/cifar", "~/data/cifar"),
        ("'3e-4'", "3e-4"),
        ("!!str 12", "12"),
    ],
)
def test_plain_scalars_follow_the_yaml_1_2_core_schema(tmp_path, text, expected):
    value = load_yaml(_write(tmp_path, f"value: {text}\n"))["value"]
    assert value == expected
    assert type(value) is type(expected)


def test_arch_lr_3e_minus_4_is_the_float_0_0003(tmp_path):
    path = _write(
        tmp_path,
        BASE + "methods:\n  darts: {epochs: 2, arch_lr: 3e-4, weight_decay: 3e-4, lr: .025}\n",
    )
    options = load_config(path).methods[0].options
    assert options["arch_lr"] == 0.0003 and type(options["arch_lr"]) is float
    assert options["weight_decay"] == 0.0003
    assert options["lr"] == 0.025


def test_yes_is_a_string_and_the_validator_says_true_or_false(tmp_path):
    path = _write(tmp_path, BASE + "methods:\n  rea: {epochs: 1, tournament_replacement: yes}\n")
    assert _error(path) == "methods.rea.tournament_replacement: expected true or false, got 'yes'"
    path = _write(tmp_path, BASE + "methods:\n  rea: {epochs: 1, tournament_replacement: false}\n")
    assert load_config(path).methods[0].options["tournament_replacement"] is False


def test_a_yaml_1_1_directive_does_not_bring_back_1_1_scalars(tmp_path):
    path = _write(tmp_path, "%YAML 1.1\n---\nflag: yes\nmode: 010\n")
    assert load_yaml(path) == {"flag": "yes", "mode": 10}


def test_loaded_values_are_plain_python_types(tmp_path):
    path = _write(
        tmp_path,
        "defaults: &defaults {epochs: 2, arch_lr: 3e-4}\n"
        "methods:\n  darts: *defaults\n  random: [1, 2.5, true, null, x]\n",
    )
    data = load_yaml(path)
    assert data == {
        "defaults": {"epochs": 2, "arch_lr": 0.0003},
        "methods": {"darts": {"epochs": 2, "arch_lr": 0.0003}, "random": [1, 2.5, True, None, "x"]},
    }
    assert data["methods"]["darts"] is not data["defaults"]  # an alias is copied, not shared

    def walk(value):
        if isinstance(value, dict):
            assert type(value) is dict and all(type(k) is str for k in value)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            assert type(value) is list
            for item in value:
                walk(item)
        else:
            assert value is None or type(value) in (str, int, float, bool)

    walk(data)


# --- duplicate keys ---------------------------------------------------------------------------


def test_duplicate_top_level_key_names_key_and_both_lines(tmp_path):
    path = _write(tmp_path, BASE + "methods: {random: {}}\nseeds: 3\n")
    assert (
        _error(path)
        == f"config file {str(path)!r}: duplicate key 'seeds' at line 9 (first at line 6)"
    )


def test_duplicate_key_inside_a_method_block(tmp_path):
    path = _write(
        tmp_path,
        BASE
        + "methods:\n"  # line 8
        + "  gaea-darts:\n"  # 9
        + "    epochs: 2\n"  # 10
        + "    arch_lr: 0.1\n"  # 11
        + "    epochs: 20\n"  # 12
        + "  random: {epochs: 1}\n",
    )
    assert _error(path) == (
        f"config file {str(path)!r}: duplicate key 'epochs' at line 12 (first at line 10)"
    )


def test_duplicated_method_block_is_refused_not_dropped(tmp_path):
    path = _write(
        tmp_path,
        BASE
        + "methods:\n"  # line 8
        + "  darts: {epochs: 2, formulation: erm}\n"  # 9
        + "  random: {epochs: 1}\n"  # 10
        + "  darts: {epochs: 4, formulation: bilevel}\n",  # 11
    )
    assert "duplicate key 'darts' at line 11 (first at line 9)" in _error(path)


def test_duplicate_in_a_flow_mapping_and_deeper_nesting(tmp_path):
    path = _write(tmp_path, "a:\n  b:\n    - {c: {d: 1, e: 2, d: 3}}\n")
    with pytest.raises(ConfigError, match=r"duplicate key 'd' at line 3 \(first at line 3\)"):
        load_yaml(path)


def test_merge_keys_are_refused_as_yaml_1_1(tmp_path):
    path = _write(tmp_path, "base: &b {epochs: 2}\nrun: {<<: *b, epochs: 3}\n")
    assert _error(path) == (
        f"config file {str(path)!r}: unknown key '<<' at line 2, column 7 (YAML merge keys are "
        "YAML 1.1, not 1.2); write the keys out, or use an alias (*name) for a whole mapping"
    )
    for text in ("name: x\n<<: {name: y}\n", "a: {!!merge <<: {name: x}}\n"):
        with pytest.raises(ConfigError, match=r"unknown key '<<' at line \d+, column \d+ \(YAML"):
            load_yaml(_write(tmp_path, text))


def test_cli_reports_a_duplicate_key_in_one_line(tmp_path, capsys):
    path = _write(tmp_path, BASE + "methods: {random: {}}\nname: other\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"gaea-tune: error: config file {str(path)!r}: duplicate key 'name' at line 9 "
        "(first at line 1)"
    )


# --- syntax errors, tags, odd files ----------------------------------------------------------


def test_syntax_error_keeps_line_and_column(tmp_path):
    path = _write(tmp_path, "name: tiny\nseeds: [0, 1\nmode: live\n")
    message = _error(path)
    assert message.startswith(f"config file {str(path)!r} is not valid YAML: ")
    assert "line 3, column 5" in message  # where the parser gave up
    assert "while parsing a flow sequence from line 2, column 8" in message
    path = _write(tmp_path, "name: tiny\n\tmode: live\n")
    message = _error(path)
    assert "found character '\\t' that cannot start any token at line 2, column 1" in message


def test_python_tags_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "ran"
    path = _write(tmp_path, f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    message = _error(path)
    assert message == (
        f"config file {str(path)!r}: tag '!!python/object/apply:os.system' at line 1, column 7 "
        "is not allowed; values are plain YAML 1.2 (strings, numbers, true/false, null, lists, "
        "mappings)"
    )
    assert not marker.exists()
    for tagged in ("!!python/name:os.system ''", "!!binary aGk=", "!!timestamp 2024-01-01", "!x 1"):
        with pytest.raises(ConfigError, match="is not allowed"):
            load_yaml(_write(tmp_path, f"value: {tagged}\n"))


def test_odd_files(tmp_path):
    with pytest.raises(ConfigError, match="is empty"):
        load_yaml(_write(tmp_path, "# only a comment\n"))
    with pytest.raises(ConfigError, match="must hold a mapping, got list"):
        load_yaml(_write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ConfigError, match="expected a single document"):
        load_yaml(_write(tmp_path, "a: 1\n---\nb: 2\n"))
    with pytest.raises(ConfigError, match="recursive alias"):
        load_yaml(_write(tmp_path, "a: &x [*x]\n"))
    bad_bytes = tmp_path / "latin1.yaml"
    bad_bytes.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_yaml(bad_bytes)


# --- --set overrides --------------------------------------------------------------------------


def test_set_uses_the_same_yaml_1_2_scalars():
    raw = apply_overrides(
        RAW,
        [
            "methods.gaea-darts.arch_lr=3e-4",
            "space.exclude_none=yes",
            "seeds=[0, 2]",
            "budget.device_seconds=1_000",
            "dataset.root=~/data",
        ],
    )
    assert raw["methods"]["gaea-darts"]["arch_lr"] == 0.0003
    assert type(raw["methods"]["gaea-darts"]["arch_lr"]) is float
    assert raw["space"]["exclude_none"] == "yes"
    assert raw["seeds"] == [0, 2]
    assert raw["budget"]["device_seconds"] == "1_000"
    assert raw["dataset"]["root"] == "~/data"
    assert RAW["methods"]["gaea-darts"]["arch_lr"] == 0.1  # the input is not changed
    config = parse_config(apply_overrides(RAW, ["methods.gaea-darts.arch_lr=3e-4"]))
    assert config.methods[0].options["arch_lr"] == 0.0003
    with pytest.raises(ConfigError, match="space.exclude_none: expected true or false, got 'yes'"):
        parse_config(apply_overrides(RAW, ["space.exclude_none=yes"]))


def test_set_refuses_tags_and_keeps_non_yaml_text_as_text():
    with pytest.raises(ConfigError) as caught:
        apply_overrides(RAW, ["name=!!python/object/apply:os.system ['true']"])
    assert str(caught.value).startswith("--set name: tag '!!python/object/apply:os.system'")
    with pytest.raises(ConfigError, match="--set space: duplicate key 'C'"):
        apply_overrides(RAW, ["space={C: 1, C: 2}"])
    assert apply_overrides(RAW, ["name=[unclosed"])["name"] == "[unclosed"
    assert apply_overrides(RAW, ["dataset.root="])["dataset"]["root"] is None


def test_cli_set_float_from_exponent(tmp_path, capsys):
    path = _write(tmp_path, BASE + f"output_dir: {tmp_path / 'out'}\nmethods: {{darts: {{}}}}\n")
    assert main(["validate", str(path), "--set", "methods.darts.arch_lr=3e-4"]) == 0
    assert main(["validate", str(path), "--set", "methods.darts.arch_lr=1_0"]) == 2
    assert "methods.darts.arch_lr: expected a number, got '1_0'" in capsys.readouterr().err


# --- shipped configs --------------------------------------------------------------------------


def _shipped() -> list[Path]:
    return sorted((ROOT / "tune_configs").glob("*.yaml"))


def test_every_shipped_config_loads_as_before():
    """Same values as PyYAML (YAML 1.1) read: no shipped file relies on 1.1-only scalars."""
    yaml = pytest.importorskip("yaml")
    assert len(_shipped()) >= 8
    for file in _shipped():
        assert load_yaml(file) == yaml.safe_load(file.read_text()), file.name


def test_shipped_comparison_configs_validate_with_load_config():
    comparisons = [f for f in _shipped() if {"name", "budget"} <= set(load_yaml(f))]
    assert {f.name for f in comparisons} >= {
        "quickstart.yaml",
        "nb201_cifar10.yaml",
        "darts_cifar10.yaml",
        "nb201_tabular_compare.yaml",
        "nb201_tabular.yaml",
        "nb201_tabular_live.yaml",
        "search_nb201_gaea.yaml",
    }
    for file in comparisons:
        raw = load_yaml(file)
        fetch = raw.get("mode") != "tabular" and raw.get("dataset", {}).get("name") not in (
            None,
            "cifar10-subset",
        )
        config = load_config(file, ["dataset.download=true"] if fetch else [])
        assert config.raw == copy.deepcopy(config.raw)
        assert config.name == raw["name"]


def test_shipped_tabular_and_search_configs_load():
    """One dialect: the search and tabular configs are compare configs too."""
    from gaea_tune.commands.search import load_search_config
    from gaea_tune.commands.tabular import load_tabular_config

    assert len(load_tabular_config(ROOT / "tune_configs" / "nb201_tabular.yaml").seeds) >= 1
    searches = sorted((ROOT / "tune_configs").glob("search_*.yaml"))
    assert len(searches) >= 3
    for file in searches:
        config, method = load_search_config(file)
        assert method.family == "weight-sharing" and config.mode == "live", file.name
    for file in _shipped():
        assert {"name", "budget", "methods"} <= set(load_yaml(file)), file.name


def test_tabular_config_goes_through_the_same_loader(tmp_path):
    from gaea_tune.commands.tabular import load_tabular_config

    path = _write(tmp_path, "seeds: 2\ndataset: {name: cifar10}\nseeds: 3\n")
    with pytest.raises(ValueError, match=r"duplicate key 'seeds' at line 3 \(first at line 1\)"):
        load_tabular_config(path)
