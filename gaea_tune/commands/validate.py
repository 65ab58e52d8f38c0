"""``gaea-tune validate FILE``: check an experiment file without starting anything."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gaea_tune.commands._common import add_config_arguments, load_or_exit
from gaea_tune.config import ExperimentConfig


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("validate", help="validate an experiment YAML and print it")
    add_config_arguments(parser)
    parser.add_argument(
        "--show",
        action="store_true",
        help="print every setting that will run, defaults filled in, as YAML (relative "
        "paths resolved against the current folder, as a run started here resolves them)",
    )


def run_paths(config: ExperimentConfig) -> dict[str, Any]:
    """Where a run started in the current folder writes: ``output_dir`` (absolute),
    ``tracking_uri`` and ``artifact_location`` (the config's, else the SQLite store and the
    artifact folder in ``output_dir``) and ``storage_path`` (Ray Tune's checkpoints: the
    config's, else ``output_dir/ray``; each invocation in a sub-folder of it; ``None`` in
    tabular mode, which runs no Ray trials)."""
    from gaea_tune.calibrate import tracking_settings
    from gaea_tune.resolve import storage_folder

    workdir = Path(config.output_dir).expanduser().resolve()
    tracking_uri, artifact_location = tracking_settings(config)
    storage = None if config.mode == "tabular" else storage_folder(config)
    return {
        "output_dir": str(workdir),
        "tracking_uri": tracking_uri,
        "artifact_location": artifact_location,
        "storage_path": storage,
    }


def run(args: argparse.Namespace) -> int:
    config = load_or_exit(args)
    if config is None:
        return 2
    methods = ", ".join(f"{m.label} ({m.family})" for m in config.methods)
    print(f"{args.file}: valid")
    print(f"  experiment {config.name!r}, mode {config.mode}, space {config.space}")
    seeds = list(config.seeds)
    if len(seeds) > 5 and seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        seeds_text = f"{seeds[0]}..{seeds[-1]} ({len(seeds)} seeds)"
    else:
        seeds_text = str(seeds)
    print(f"  dataset {config.dataset['name']}, seeds {seeds_text}")
    print(
        f"  budget {config.budget_device_seconds:g} {config.budget_unit}-seconds per method x seed"
    )
    print(f"  methods: {methods}")
    if args.show:
        import io

        from ruamel.yaml import YAML

        from gaea_tune.resolve import resolved_settings

        yaml = YAML(typ="safe", pure=True)
        yaml.default_flow_style = False
        yaml.sort_base_mapping_type_on_output = False
        buffer = io.StringIO()
        settings = resolved_settings(config)
        settings["comparison"].update(run_paths(config))
        yaml.dump(settings, buffer)
        print("# resolved settings (every default filled in)")
        print(buffer.getvalue().rstrip())
    return 0
