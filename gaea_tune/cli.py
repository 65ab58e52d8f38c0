"""The ``gaea-tune`` command line: one module per subcommand under gaea_tune.commands."""

from __future__ import annotations

import argparse
import importlib
import sys

# Subcommand modules, each with ``add_parser(subparsers)`` and ``run(args) -> int``.
COMMANDS = (
    "compare",
    "report",
    "validate",
    "calibrate",
    "search",
    "tabular",
    "ui",
    "info",
    "doctor",
)


class _Parser(argparse.ArgumentParser):
    """Usage errors exit with status 2 and a one-line message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"gaea-tune: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gaea-tune",
        description="Budget-matched neural architecture search on Ray Tune, tracked in MLflow.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"gaea_tune.commands.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"gaea_tune.commands.{name}":
                raise
            continue
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    module = importlib.import_module(f"gaea_tune.commands.{args.command}")
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
