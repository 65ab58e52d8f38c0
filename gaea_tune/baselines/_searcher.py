"""The ask/tell searcher interface every non-weight-sharing baseline implements (Ray-free)."""

from __future__ import annotations

import contextlib
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from gaea_tune._constraints import validate_options


@dataclass(frozen=True)
class Proposal:
    """One evaluation a searcher asks for: a genotype, trained for ``fidelity`` epochs.

    ``fidelity`` is None when the searcher leaves the training length to the caller.
    ``id`` is unique within one searcher and is how :meth:`Searcher.tell` finds the proposal.
    """

    genotype: Any
    fidelity: int | None
    id: int


@dataclass(frozen=True)
class Observation:
    """A told result: the proposal's genotype, fidelity and search signal (NaN = failed)."""

    genotype: Any
    fidelity: int | None
    signal: float


def finite_or_nan(signal: float) -> float:
    """The signal as a float; NaN/inf and non-numbers become NaN (a failed evaluation)."""
    try:
        value = float(signal)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


class Searcher(ABC):
    """Ask/tell search over a space's genotypes: higher signals are better.

    Subclasses implement :meth:`_ask` and :meth:`_tell`; the base keeps the pending proposals,
    the history and the incumbent (best finite signal at the highest fidelity seen).
    """

    name: str = ""
    # User options of the constructor (besides ``space``, ``seed``, ``fidelity``): name ->
    # constraint. Configuration validation reads this same table.
    _parameter_constraints: ClassVar[dict[str, Any]] = {}

    @classmethod
    def validate_params(cls, where: str, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` checked against :attr:`_parameter_constraints` (plus any cross-option
        rule of the subclass); raises ``OptionError`` naming ``where.key``."""
        return validate_options(where, options, cls._parameter_constraints)

    def __init__(self, space: Any, seed: int) -> None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        self.space = space
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self._next_id = 0
        self._pending: dict[int, Proposal] = {}
        self.history: list[Observation] = []
        self._best: tuple[float, float, Any] | None = None  # (fidelity, signal, genotype)

    # ------------------------------------------------------------------ public API
    def ask(self) -> Proposal:
        """The next genotype (and fidelity) to evaluate."""
        genotype, fidelity = self._ask()
        proposal = Proposal(genotype, None if fidelity is None else int(fidelity), self._next_id)
        self._next_id += 1
        self._pending[proposal.id] = proposal
        return proposal

    def tell(self, proposal: Proposal, signal: float) -> None:
        """Record the search signal of an asked proposal (NaN/inf: the evaluation failed)."""
        if proposal.id not in self._pending:
            raise ValueError(
                f"proposal id {proposal.id!r} is not pending; pending ids: {sorted(self._pending)}"
            )
        del self._pending[proposal.id]
        value = finite_or_nan(signal)
        self.history.append(Observation(proposal.genotype, proposal.fidelity, value))
        if value == value:  # not NaN
            fidelity = -1.0 if proposal.fidelity is None else float(proposal.fidelity)
            key = (fidelity, value, proposal.genotype)
            if self._best is None or key[:2] > self._best[:2]:
                self._best = key
        self._tell(proposal, value)

    @property
    def incumbent(self) -> tuple[Any, float] | None:
        """(genotype, signal) of the best finite result at the highest fidelity, if any."""
        if self._best is None:
            return None
        return self._best[2], self._best[1]

    @property
    def pending(self) -> list[Proposal]:
        return list(self._pending.values())

    _in_session = False

    def _library_state(self) -> contextlib.AbstractContextManager[None]:
        """The process-wide state this searcher's library calls need, held while entered
        (NumPy's global RNG for hpbandster, Optuna's log level); none by default."""
        return contextlib.nullcontext()

    def _library_call(self) -> contextlib.AbstractContextManager[None]:
        """Wrap one library call: the state is swapped in around it, unless a session holds it."""
        return contextlib.nullcontext() if self._in_session else self._library_state()

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """A block of back-to-back asks and tells (a simulated search): a searcher that must
        swap process-wide state around every library call (:meth:`_library_state`) swaps it once
        for the whole block instead. Inside the block nothing else may use that state; outside
        it, every call leaves it as it found it. Re-entrant; results are the same with or
        without it."""
        if self._in_session:
            yield
            return
        with self._library_state():
            self._in_session = True
            try:
                yield
            finally:
                self._in_session = False

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where this searcher stands."""
        return {
            "name": self.name,
            "seed": self.seed,
            "rng": self.rng.bit_generator.state,
            "next_id": self._next_id,
            "pending": [(p.id, str(p.genotype), p.fidelity) for p in self._pending.values()],
            "history": [(str(o.genotype), o.fidelity, o.signal) for o in self.history],
            "best": None if self._best is None else (*self._best[:2], str(self._best[2])),
            "own": self._state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ValueError(f"state of searcher {state.get('name')!r} given to {self.name!r}")
        self.seed = int(state["seed"])
        self.rng.bit_generator.state = state["rng"]
        self._next_id = int(state["next_id"])
        self._pending = {
            int(i): Proposal(self.space.parse(text), fidelity, int(i))
            for i, text, fidelity in state["pending"]
        }
        parse = self.space.parse
        self.history = [Observation(parse(g), f, float(s)) for g, f, s in state["history"]]
        best = state["best"]
        self._best = None if best is None else (float(best[0]), float(best[1]), parse(best[2]))
        self._load_state(state["own"])

    # ------------------------------------------------------------------ to implement
    @abstractmethod
    def _ask(self) -> tuple[Any, int | None]:
        """(genotype, fidelity or None) of the next evaluation."""

    @abstractmethod
    def _tell(self, proposal: Proposal, signal: float) -> None:
        """Learn from a finished evaluation; ``signal`` is NaN when it failed."""

    def _state(self) -> dict[str, Any]:
        return {}

    def _load_state(self, state: dict[str, Any]) -> None:
        del state
