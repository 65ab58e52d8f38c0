"""The registry of search methods: each entry knows its family, where it is implemented (imported
lazily) and which options it takes, read from the class that consumes them.

Plain Python (no torch, Ray or MLflow): ``gaea_tune.config``, ``gaea-tune info`` and the runtime
all derive from it, so a configuration accepts exactly what the runtime accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gaea_tune._constraints import OptionError, validate_options
from gaea_tune.datasets import TABLE_FIDELITIES

WEIGHT_SHARING = "weight-sharing"
STANDALONE = "standalone"
MODES = ("live", "tabular")
# ``dataset.simulate``: what a live trial does instead of training. ``table``: it replays the NB201
# table's records (gaea_tune.tune._table_trainable), so only standalone methods take part.
SIMULATE = ("table",)
# What a table-backed trial consumes: the fidelities the NB201 table records (a trial's
# ``epochs`` is one of them) and, for the runner, how many trials run at once. The other
# training keys (batch size, lr, ...) mean nothing without training and are refused.
TABLE_TRIAL_KEYS = ("epochs", "max_concurrent")


@dataclass(frozen=True)
class TableFidelity:
    """A table-backed trial's ``epochs``: one of the fidelities the NB201 table records."""

    def check(self, where: str, value: Any) -> int:
        if isinstance(value, bool) or value not in TABLE_FIDELITIES:
            raise OptionError(
                f"{where}: {value!r} is not a fidelity the NB201 table records; "
                f"allowed: {', '.join(map(str, TABLE_FIDELITIES))}"
            )
        return int(value)

    def examples(self) -> tuple[list[Any], list[Any]]:
        return list(TABLE_FIDELITIES), [13, 0, "12"]

    def describe(self) -> str:
        return " | ".join(map(str, TABLE_FIDELITIES))


@dataclass(frozen=True)
class MethodEntry:
    """One search method: ``name``, ``family`` and the module that implements it."""

    name: str
    family: str
    implementation: str
    description: str

    def constraints(self, mode: str, simulate: str | None = None) -> dict[str, Any]:
        """Option name -> constraint, for ``mode`` ("live" | "tabular") and, in live mode,
        ``simulate`` (None: trials train; "table": trials replay the NB201 table)."""
        if simulate is not None:
            return self._table_constraints(mode, simulate)
        if self.family == WEIGHT_SHARING:
            if mode != "live":
                raise OptionError(f"method {self.name!r} runs only in live mode, got {mode!r}")
            from gaea_tune.weight_sharing._options import SearchOptions

            # C and N are the comparison's space settings, not per-method options.
            return {
                k: v for k, v in SearchOptions._parameter_constraints.items() if k not in ("C", "N")
            }
        from gaea_tune.baselines._options import live_constraints, tabular_constraints

        return live_constraints(self.name) if mode == "live" else tabular_constraints(self.name)

    def _table_constraints(self, mode: str, simulate: str) -> dict[str, Any]:
        from gaea_tune.baselines._options import TRAINING_CONSTRAINTS

        if simulate not in SIMULATE:
            raise OptionError(
                f"dataset.simulate: unknown value {simulate!r}; allowed: {', '.join(SIMULATE)}"
            )
        if mode != "live" or self.family != STANDALONE:
            raise OptionError(
                f"method {self.name!r}: table-backed trials (dataset.simulate: {simulate}) run "
                f"standalone methods in live mode; allowed: {', '.join(STANDALONE_METHODS)}"
            )
        constraints = {
            k: v
            for k, v in self.constraints("live").items()
            if k not in TRAINING_CONSTRAINTS or k in TABLE_TRIAL_KEYS
        }
        constraints["epochs"] = TableFidelity()
        return constraints

    def validate(
        self,
        where: str,
        mode: str,
        options: dict[str, Any],
        *,
        space: str | None = None,
        C: int | None = None,
        simulate: str | None = None,
    ) -> dict[str, Any]:
        """Check ``options`` exactly as the runtime will; raises ``OptionError`` (one line)."""
        if simulate is not None:
            from gaea_tune.baselines._options import validate_live

            checked = validate_options(where, options, self._table_constraints(mode, simulate))
            fidelities = [f for f in TABLE_FIDELITIES if f <= checked.get("epochs", 12)]
            eta = checked.get("reduction_factor")
            if self.name == "bohb" and len(fidelities) == 2 and eta not in (None, 2):
                raise OptionError(
                    f"{where}.reduction_factor: {eta!r} does not fit the table's two fidelities "
                    "(12 and 200 epochs: one halving); allowed: 2"
                )
            # the search options, with the searcher's own cross-option rules
            validate_live(where, self.name, {k: v for k, v in checked.items() if k != "epochs"})
            return checked
        if self.family == WEIGHT_SHARING:
            from gaea_tune.weight_sharing._options import SearchOptions

            for key, what in (("C", "channel width"), ("N", "cells per stage")):
                if key in options:
                    raise OptionError(
                        f"{where}.{key}: {options[key]!r} is not a method option; the supernet's "
                        f"{what} is one per comparison (space.{key}); set space.{key} instead"
                    )
            # refuses tabular mode; unknown keys listed without C and N
            validate_options(where, options, self.constraints(mode))
            extra = {"C": C} if C is not None else {}
            checked = SearchOptions.validate_params(
                where, {**options, **extra}, space=space, method=self.name
            )
            if C is not None:
                checked.pop("C")
            return checked
        from gaea_tune.baselines._options import validate_live, validate_tabular

        validate = validate_live if mode == "live" else validate_tabular
        return validate(where, self.name, options)


def _entries() -> dict[str, MethodEntry]:
    from gaea_tune.baselines._registry import SEARCHERS
    from gaea_tune.weight_sharing._options import METHODS

    entries = {
        name: MethodEntry(name, WEIGHT_SHARING, "gaea_tune.weight_sharing", m.description)
        for name, m in METHODS.items()
    }
    for name, cls in SEARCHERS.items():
        summary = (cls.__doc__ or name).strip().splitlines()[0]
        entries[name] = MethodEntry(name, STANDALONE, f"{cls.__module__}.{cls.__name__}", summary)
    return entries


METHODS: dict[str, MethodEntry] = _entries()
WEIGHT_SHARING_METHODS = tuple(n for n, e in METHODS.items() if e.family == WEIGHT_SHARING)
STANDALONE_METHODS = tuple(n for n, e in METHODS.items() if e.family == STANDALONE)


def get_method_entry(name: str) -> MethodEntry:
    if name not in METHODS:
        raise OptionError(f"unknown method {name!r}; allowed: {', '.join(METHODS)}")
    return METHODS[name]


def methods_for(mode: str, simulate: str | None = None) -> tuple[str, ...]:
    """Method names that run in ``mode`` (with trials that ``simulate``, in live mode)."""
    return STANDALONE_METHODS if mode == "tabular" or simulate else tuple(METHODS)
