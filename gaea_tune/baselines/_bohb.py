"""BOHB as an ask/tell searcher: hpbandster's config generator driven in-process.

Hyperband's successive-halving brackets are run here (as hpbandster's master would), and every
configuration comes from hpbandster's ``BOHB`` KDE model through ``get_config``/``new_result``:
no Pyro name server, no worker threads. hpbandster draws from NumPy's global RNG; each call is
made with this searcher's own RandomState swapped in and out, so the process-wide state is left
as it was and a search is reproducible from its seed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import pickle
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from gaea_tune._constraints import Boolean, Interval
from gaea_tune.baselines._params import ParamDecoder, param_spec
from gaea_tune.baselines._searcher import Proposal, Searcher

_QUIET = logging.getLogger("gaea_tune.baselines.hpbandster")
_QUIET.setLevel(logging.CRITICAL)
_QUIET.propagate = False


class _Job:
    """The part of hpbandster's Job that ``BOHB.new_result`` reads."""

    def __init__(self, config: dict[str, str], budget: float, loss: float) -> None:
        self.result = {"loss": loss} if math.isfinite(loss) else None
        self.kwargs = {"budget": float(budget), "config": dict(config)}
        self.exception = None


@contextlib.contextmanager
def _numpy_global_rng(own: np.random.RandomState) -> Iterator[None]:
    outside = np.random.get_state()
    np.random.set_state(own.get_state())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        own.set_state(np.random.get_state())
        np.random.set_state(outside)


def hyperband_budgets(min_fidelity: float, max_fidelity: float, eta: float) -> list[float]:
    """The budgets of hpbandster's Hyperband: ``max * eta**-k`` down to about ``min``."""
    steps = int(math.floor(math.log(max_fidelity / min_fidelity) / math.log(eta) + 1e-9)) + 1
    return [float(max_fidelity * eta ** -(steps - 1 - i)) for i in range(steps)]


class BOHBSearcher(Searcher):
    """BOHB (Falkner et al. 2018): Hyperband brackets, configurations from a TPE-like KDE.

    Fidelities are training epochs. By default the brackets span ``min_fidelity`` to
    ``max_fidelity`` with ``eta = max/min`` (two fidelities, e.g. 12 and 200 epochs on the NB201
    table). With ``fixed_fidelity`` set, the brackets keep their budgets (used by the model and
    for promotion) but every job is evaluated at ``fixed_fidelity`` epochs: the setting of the
    NAS-Bench-201 paper, whose BOHB ran every job on the 12-epoch result
    (``eta=3, num_samples=4, random_fraction=0``; see :data:`PAPER_BOHB`).

    The incumbent is hpbandster's: the best result among the jobs run at the largest bracket
    *budget* (automl/HpBandSter, ``hpbandster/core/result.py``, ``Result.get_incumbent_id``,
    lines 219-241), not the best signal over all budgets. With ``fixed_fidelity`` every job has
    the same epochs, so a higher signal from a low-budget job never displaces it. Before any job
    at the top budget has finished (where hpbandster has no incumbent yet), the largest budget
    reached so far stands in for it, which makes the incumbent an anytime curve.
    """

    name = "bohb"
    _parameter_constraints = {
        "min_fidelity": Interval(int, 1, 100_000),
        "max_fidelity": Interval(int, 1, 100_000),
        "eta": Interval(float, 1.01, 1000.0, nullable=True),
        "fixed_fidelity": Interval(int, 1, 100_000, nullable=True),
        "num_samples": Interval(int, 1, 10_000),
        "random_fraction": Interval(float, 0.0, 1.0),
        "top_n_percent": Interval(int, 1, 99),
        "bandwidth_factor": Interval(float, 1e-3, 1000.0),
        "min_bandwidth": Interval(float, 1e-9, 10.0),
        "min_points_in_model": Interval(int, 1, 100_000, nullable=True),
        "exclude_none": Boolean(),
    }

    def __init__(
        self,
        space: Any,
        seed: int,
        min_fidelity: int = 12,
        max_fidelity: int = 200,
        eta: float | None = None,
        fixed_fidelity: int | None = None,
        num_samples: int = 64,
        random_fraction: float = 1 / 3,
        top_n_percent: int = 15,
        bandwidth_factor: float = 3.0,
        min_bandwidth: float = 1e-3,
        min_points_in_model: int | None = None,
        exclude_none: bool = False,
    ) -> None:
        super().__init__(space, seed)
        import ConfigSpace
        from hpbandster.optimizers.config_generators.bohb import BOHB

        if not (isinstance(min_fidelity, (int, np.integer)) and min_fidelity >= 1):
            raise ValueError(f"min_fidelity must be an integer >= 1, got {min_fidelity!r}")
        if not (isinstance(max_fidelity, (int, np.integer)) and max_fidelity >= min_fidelity):
            raise ValueError(
                f"max_fidelity must be an integer >= min_fidelity={min_fidelity}, "
                f"got {max_fidelity!r}"
            )
        if eta is None:
            eta = max_fidelity / min_fidelity if max_fidelity > min_fidelity else 2.0
        if not eta > 1:
            raise ValueError(f"eta must be > 1, got {eta!r}")
        if fixed_fidelity is not None and not (
            isinstance(fixed_fidelity, (int, np.integer)) and fixed_fidelity >= 1
        ):
            raise ValueError(
                f"fixed_fidelity must be a positive integer or None, got {fixed_fidelity!r}"
            )
        if not 0.0 <= random_fraction <= 1.0:
            raise ValueError(f"random_fraction must be in [0, 1], got {random_fraction!r}")
        if not (isinstance(num_samples, (int, np.integer)) and num_samples >= 1):
            raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
        self.eta = float(eta)
        self.fixed_fidelity = None if fixed_fidelity is None else int(fixed_fidelity)
        self.budgets = hyperband_budgets(min_fidelity, max_fidelity, self.eta)
        self.spec = param_spec(space, exclude_none)
        cs_seed, np_seed = (int(v) for v in self.rng.integers(2**31 - 1, size=2))
        configspace = ConfigSpace.ConfigurationSpace(seed=cs_seed)
        for name, choices in self.spec:
            configspace.add(ConfigSpace.CategoricalHyperparameter(name, choices=list(choices)))
        self._np = np.random.RandomState(np_seed)
        with _numpy_global_rng(self._np):
            self.generator = BOHB(
                configspace,
                min_points_in_model=min_points_in_model,
                top_n_percent=top_n_percent,
                num_samples=int(num_samples),
                random_fraction=float(random_fraction),
                bandwidth_factor=bandwidth_factor,
                min_bandwidth=min_bandwidth,
                logger=_QUIET,
            )
        self.iteration = 0
        self.brackets: list[dict[str, Any]] = []
        self._jobs: dict[int, tuple[int, int]] = {}  # proposal id -> (bracket index, slot)
        # hpbandster's incumbent: (bracket budget, signal, genotype, fidelity) of the best finite
        # result among the jobs at the largest budget told so far.
        self._top: tuple[float, float, Any, int | None] | None = None
        self._decode = ParamDecoder(space)

    # ------------------------------------------------------------------ global RNG
    def _library_state(self) -> contextlib.AbstractContextManager[None]:
        """NumPy's global RNG holding this searcher's state (hpbandster draws from the global
        RNG): swapped in and out around each call, or once for a whole session (the same draws,
        provided nothing else in the session uses the global RNG)."""
        return _numpy_global_rng(self._np)

    # ------------------------------------------------------------------ incumbent
    @property
    def incumbent(self) -> tuple[Any, float] | None:
        """(genotype, signal) of the best finite result at the largest bracket budget, if any."""
        return None if self._top is None else (self._top[2], self._top[1])

    @property
    def incumbent_fidelity(self) -> int | None:
        """Epochs behind the incumbent's signal (None before any finite result)."""
        return None if self._top is None else self._top[3]

    def budget_of(self, proposal: Proposal) -> float:
        """The bracket budget of a pending job (what hpbandster ranks incumbents by first)."""
        if proposal.id not in self._jobs:
            raise ValueError(f"proposal id {proposal.id!r} is not a pending BOHB job")
        index, _ = self._jobs[proposal.id]
        bracket = self.brackets[index]
        return float(bracket["budgets"][bracket["stage"]])

    # ------------------------------------------------------------------ brackets
    def _new_bracket(self) -> dict[str, Any]:
        steps = len(self.budgets)
        s = steps - 1 - (self.iteration % steps)
        n0 = int(math.floor(steps / (s + 1)) * self.eta**s)
        counts = [max(int(n0 * self.eta ** (-i)), 1) for i in range(s + 1)]
        self.iteration += 1
        bracket = {
            "budgets": self.budgets[-s - 1 :],
            "counts": counts,
            "stage": 0,
            "configs": [],  # params of every configuration in this bracket
            "queue": [],  # slots (config indices) waiting to run at the current stage
            "to_sample": counts[0],
            "running": 0,
            "losses": {},  # slot -> loss at the current stage
            "done": False,
        }
        self.brackets.append(bracket)
        return bracket

    def _fidelity(self, budget: float) -> int:
        return self.fixed_fidelity if self.fixed_fidelity is not None else int(round(budget))

    def _ask(self) -> tuple[Any, int | None]:
        for index, bracket in enumerate(self.brackets):
            if bracket["done"]:
                continue
            if bracket["queue"] or bracket["to_sample"]:
                return self._job(index, bracket)
        bracket = self._new_bracket()
        return self._job(len(self.brackets) - 1, bracket)

    def _job(self, index: int, bracket: dict[str, Any]) -> tuple[Any, int | None]:
        budget = bracket["budgets"][bracket["stage"]]
        if bracket["queue"]:
            slot = bracket["queue"].pop(0)
        else:
            with self._library_call():
                config, _ = self.generator.get_config(budget)
            bracket["configs"].append({k: str(v) for k, v in config.items()})
            bracket["to_sample"] -= 1
            slot = len(bracket["configs"]) - 1
        bracket["running"] += 1
        self._jobs[self._next_id] = (index, slot)
        return self._decode(bracket["configs"][slot]), self._fidelity(budget)

    def _tell(self, proposal: Proposal, signal: float) -> None:
        index, slot = self._jobs.pop(proposal.id)
        bracket = self.brackets[index]
        budget = bracket["budgets"][bracket["stage"]]
        loss = -signal if signal == signal else math.inf
        if signal == signal:
            top = self._top
            if top is None or (budget, signal) > (top[0], top[1]):
                self._top = (float(budget), float(signal), proposal.genotype, proposal.fidelity)
        with self._library_call():
            self.generator.new_result(_Job(bracket["configs"][slot], budget, loss))
        bracket["running"] -= 1
        bracket["losses"][slot] = loss
        if bracket["running"] or bracket["queue"] or bracket["to_sample"]:
            return
        stage = bracket["stage"] + 1
        if stage >= len(bracket["counts"]):
            bracket["done"] = True
            return
        ranked = sorted(bracket["losses"], key=lambda s: (bracket["losses"][s], s))
        bracket["queue"] = sorted(ranked[: bracket["counts"][stage]])
        bracket["losses"] = {}
        bracket["stage"] = stage

    def _state(self) -> dict[str, Any]:
        return {
            "generator": pickle.dumps(self.generator),
            # Inside a session the searcher's RNG state lives in NumPy's global RNG.
            "np": np.random.get_state() if self._in_session else self._np.get_state(),
            "iteration": self.iteration,
            "brackets": pickle.dumps(self.brackets),
            "jobs": dict(self._jobs),
            "top": None if self._top is None else (*self._top[:2], str(self._top[2]), self._top[3]),
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self.generator = pickle.loads(state["generator"])
        if self._in_session:
            np.random.set_state(state["np"])
        else:
            self._np.set_state(state["np"])
        self.iteration = int(state["iteration"])
        self.brackets = pickle.loads(state["brackets"])
        self._jobs = {int(k): tuple(v) for k, v in state["jobs"].items()}
        top = state.get("top")
        self._top = (
            None
            if top is None
            else (float(top[0]), float(top[1]), self.space.parse(top[2]), top[3])
        )


# The NAS-Bench-201 paper's BOHB: brackets over 12..200 epochs with eta 3, every job the 12-epoch
# result at its full cost (the bracket budget is ignored), 4 acquisition samples, no random picks.
PAPER_BOHB: dict[str, Any] = {
    "min_fidelity": 12,
    "max_fidelity": 200,
    "eta": 3.0,
    "fixed_fidelity": 12,
    "num_samples": 4,
    "random_fraction": 0.0,
}
