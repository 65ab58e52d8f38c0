"""Optuna's TPE as an ask/tell searcher over the space's categorical parameters."""

from __future__ import annotations

import contextlib
import pickle
import warnings
from collections.abc import Iterator
from typing import Any

from gaea_tune._constraints import Boolean, Interval
from gaea_tune.baselines._params import ParamDecoder, param_spec
from gaea_tune.baselines._searcher import Proposal, Searcher


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Optuna's INFO lines and experimental warnings off for one call; the caller's Optuna
    verbosity and warning filters are restored afterwards."""
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        optuna.logging.set_verbosity(before)


class TPESearcher(Searcher):
    """Tree-structured Parzen estimator (Optuna's ``TPESampler``, seeded), one study per search.

    Failed (NaN) results are told to Optuna as failed trials.
    """

    name = "tpe"
    _parameter_constraints = {
        "n_startup_trials": Interval(int, 0, 100_000),
        "multivariate": Boolean(nullable=True),
        "exclude_none": Boolean(),
    }

    def __init__(
        self,
        space: Any,
        seed: int,
        fidelity: int | None = None,
        n_startup_trials: int = 10,
        multivariate: bool | None = None,
        exclude_none: bool = False,
    ) -> None:
        super().__init__(space, seed)
        import optuna

        if fidelity is not None and not (isinstance(fidelity, int) and fidelity >= 1):
            raise ValueError(f"fidelity must be a positive integer or None, got {fidelity!r}")
        if not (isinstance(n_startup_trials, int) and n_startup_trials >= 0):
            raise ValueError(f"n_startup_trials must be an integer >= 0, got {n_startup_trials!r}")
        self.fidelity = fidelity
        kwargs: dict[str, Any] = {"seed": self.seed, "n_startup_trials": n_startup_trials}
        if multivariate is not None:
            kwargs["multivariate"] = bool(multivariate)
        with _quiet():
            sampler = optuna.samplers.TPESampler(**kwargs)
            self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self.distributions = {
            name: optuna.distributions.CategoricalDistribution(list(choices))
            for name, choices in param_spec(space, exclude_none)
        }
        self._trials: dict[int, int] = {}  # proposal id -> optuna trial number
        self._decode = ParamDecoder(space)

    def _library_state(self) -> contextlib.AbstractContextManager[None]:
        """Optuna quiet (setting its log level clears every logger's cache): around each ask and
        tell, or once for a whole session."""
        return _quiet()

    def _ask(self) -> tuple[Any, int | None]:
        with self._library_call():
            trial = self.study.ask(self.distributions)
        self._trials[self._next_id] = trial.number
        return self._decode(trial.params), self.fidelity

    def _tell(self, proposal: Proposal, signal: float) -> None:
        import optuna

        number = self._trials.pop(proposal.id)
        with self._library_call():
            if signal == signal:
                self.study.tell(number, float(signal))
            else:
                self.study.tell(number, state=optuna.trial.TrialState.FAIL)

    def _state(self) -> dict[str, Any]:
        return {"study": pickle.dumps(self.study), "trials": dict(self._trials)}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.study = pickle.loads(state["study"])
        self._trials = {int(k): int(v) for k, v in state["trials"].items()}
