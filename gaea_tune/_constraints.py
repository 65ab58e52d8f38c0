"""Declarative option constraints, kept on the class that consumes the options.

In the spirit of scikit-learn's ``_parameter_constraints``: a consumer (``SearchOptions``, a
searcher class, the standalone trainable) declares ``name -> constraint`` once; the runtime
validates with it and ``gaea_tune.config`` validates a YAML file with the very same table, so a
config cannot accept an option the runtime refuses (or the reverse). Plain Python: no torch, Ray
or MLflow.

Every error is a :class:`OptionError` (a ``ValueError``) whose one-line message names the field,
the bad value and what is allowed.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


class OptionError(ValueError):
    """An option value is invalid; the message is one line for the user."""


@dataclass(frozen=True)
class Interval:
    """A number in ``[low, high]`` (``int`` or ``float``); ``nullable``: ``None`` allowed too."""

    kind: type
    low: float
    high: float
    nullable: bool = False

    def check(self, where: str, value: Any) -> Any:
        if value is None and self.nullable:
            return None
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise OptionError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise OptionError(f"{where}: expected a finite number, got {value!r}")
        if self.kind is int and not float(value).is_integer():
            raise OptionError(f"{where}: expected an integer, got {value!r}")
        if not self.low <= value <= self.high:
            name = where.split(".")[-1]
            raise OptionError(
                f"{where}: {value!r} is out of range; allowed: "
                f"{self.kind(self.low)} <= {name} <= {self.kind(self.high)}"
            )
        return self.kind(value)

    def examples(self) -> tuple[list[Any], list[Any]]:
        """(valid values, invalid values) for contract tests."""
        valid: list[Any] = [self.kind(self.low), self.kind(self.high)]
        invalid: list[Any] = ["text", True]
        if self.high < math.inf:
            invalid.append(self.kind(self.high * 2 + 1))
        if self.low > -math.inf:
            invalid.append(self.kind(self.low - 1))
        return valid, invalid

    def describe(self) -> str:
        kind = "int" if self.kind is int else "float"
        return f"{kind} in [{self.low:g}, {self.high:g}]" + (" or null" if self.nullable else "")


@dataclass(frozen=True)
class OneOf:
    """One of ``choices`` (strings); ``nullable``: ``None`` allowed too."""

    choices: tuple[str, ...]
    nullable: bool = False

    def check(self, where: str, value: Any) -> Any:
        if value is None and self.nullable:
            return None
        if value not in self.choices:
            hint = difflib.get_close_matches(str(value), list(self.choices), n=1, cutoff=0.6)
            maybe = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise OptionError(
                f"{where}: unknown value {value!r}{maybe}; allowed: {', '.join(self.choices)}"
            )
        return value

    def examples(self) -> tuple[list[Any], list[Any]]:
        return list(self.choices), ["no-such-choice", 3]

    def describe(self) -> str:
        return " | ".join(self.choices) + (" | null" if self.nullable else "")


@dataclass(frozen=True)
class Boolean:
    """``true`` or ``false``; ``nullable``: ``None`` (take the default rule) allowed too."""

    nullable: bool = False

    def check(self, where: str, value: Any) -> Any:
        if value is None and self.nullable:
            return None
        if not isinstance(value, (bool, np.bool_)):
            raise OptionError(f"{where}: expected true or false, got {value!r}")
        return bool(value)

    def examples(self) -> tuple[list[Any], list[Any]]:
        return [True, False], ["yes", 1]

    def describe(self) -> str:
        return "true | false" + (" | null" if self.nullable else "")


Constraint = Interval | OneOf | Boolean


def did_you_mean(word: str, allowed: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(allowed), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def validate_options(
    where: str, options: Mapping[str, Any], constraints: Mapping[str, Constraint]
) -> dict[str, Any]:
    """``options`` checked against ``constraints``: unknown keys and bad values raise
    :class:`OptionError` naming ``where.key``; returns the values cast to their kinds."""
    names = list(constraints)
    checked: dict[str, Any] = {}
    for key, value in options.items():
        if key not in constraints:
            raise OptionError(
                f"{where}: unknown key {key!r}{did_you_mean(str(key), names)}; "
                f"allowed: {', '.join(names)}"
            )
        checked[key] = constraints[key].check(f"{where}.{key}", value)
    return checked
