"""The registry of search methods: each entry knows its family, where it is implemented (imported
lazily) and which options it takes, read from the class that consumes them.

Plain Python (no torch, Ray or MLflow): ``gaea_tune.config``, ``gaea-tune info`` and the runtime
all derive from it, so a configuration accepts exactly what the runtime accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gaea_tune._constraints import OptionError

WEIGHT_SHARING = "weight-sharing"
STANDALONE = "standalone"
MODES = ("live", "tabular")


@dataclass(frozen=True)
class MethodEntry:
    """One search method: ``name``, ``family`` and the module that implements it."""

    name: str
    family: str
    implementation: str
    description: str

    def constraints(self, mode: str) -> dict[str, Any]:
        """Option name -> constraint, for ``mode`` ("live" | "tabular")."""
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

    def validate(
        self,
        where: str,
        mode: str,
        options: dict[str, Any],
        *,
        space: str | None = None,
        C: int | None = None,
    ) -> dict[str, Any]:
        """Check ``options`` exactly as the runtime will; raises ``OptionError`` (one line)."""
        if self.family == WEIGHT_SHARING:
            from gaea_tune.weight_sharing._options import SearchOptions

            self.constraints(mode)  # refuses tabular mode
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


def methods_for(mode: str) -> tuple[str, ...]:
    """Method names that run in ``mode``."""
    return STANDALONE_METHODS if mode == "tabular" else tuple(METHODS)
