"""Ray Tune searchers for the standalone baselines.

Random search and REA are this package's ask/tell searchers behind :class:`AskTellSearcher`;
BOHB is Ray's TuneBOHB with HyperBandForBOHB (fidelity = training epochs, i.e. training
iterations); TPE is Ray's OptunaSearch. Metric and mode are left unset here: pass them once, in
``tune.TuneConfig(metric=..., mode=...)``, which hands them to the searcher and the scheduler.
"""

from __future__ import annotations

import math
import pickle
from typing import Any

from ray import cloudpickle, tune
from ray.tune.experiment import Trial
from ray.tune.schedulers import HyperBandForBOHB, TrialScheduler
from ray.tune.search import Searcher as TuneSearcher
from ray.tune.search.bohb import TuneBOHB

from gaea_tune.baselines import Proposal, Searcher, make_searcher, param_spec, searcher_options
from gaea_tune.baselines._options import LIVE_BOHB_ETA
from gaea_tune.registry import STANDALONE_METHODS

# Every standalone method of the registry runs live: BOHB and TPE through their libraries' Tune
# searchers, any other through the ask/tell adapter around its Ray-free searcher.
LIVE_METHODS = STANDALONE_METHODS
_BOHB_CONFIG_KEYS = (
    "num_samples",
    "random_fraction",
    "top_n_percent",
    "bandwidth_factor",
    "min_bandwidth",
    "min_points_in_model",
)


class AskTellSearcher(TuneSearcher):
    """A :class:`gaea_tune.baselines.Searcher` as a Ray Tune searcher.

    Each trial gets ``{"genotype": text}`` (plus ``"epochs"`` when the proposal fixes a
    fidelity); when a trial ends, its last reported metric is told back (NaN when it failed or
    never reported, negated for ``mode="min"``).
    """

    def __init__(self, searcher: Searcher, metric: str | None = None, mode: str | None = None):
        super().__init__(metric=metric, mode=mode)
        self.ask_tell = searcher
        self._live: dict[str, Proposal] = {}

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        if metric:
            self._metric = metric
        if mode:
            if mode not in ("min", "max"):
                raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
            self._mode = mode
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        proposal = self.ask_tell.ask()
        self._live[trial_id] = proposal
        suggestion: dict[str, Any] = {"genotype": str(proposal.genotype)}
        if proposal.fidelity is not None:
            suggestion["epochs"] = proposal.fidelity
        return suggestion

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        proposal = self._live.pop(trial_id, None)
        if proposal is None:
            return
        signal = math.nan
        if not error and result is not None and self._metric in result:
            try:
                signal = float(result[self._metric])
            except (TypeError, ValueError):
                signal = math.nan
            if self._mode == "min":
                signal = -signal
        self.ask_tell.tell(proposal, signal)

    def get_state(self) -> dict[str, Any]:
        return {
            "searcher": self.ask_tell.state_dict(),
            "live": {trial_id: p.id for trial_id, p in self._live.items()},
            "metric": self._metric,
            "mode": self._mode,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.ask_tell.load_state_dict(state["searcher"])
        pending = {p.id: p for p in self.ask_tell.pending}
        self._live = {t: pending[i] for t, i in state["live"].items() if i in pending}
        self._metric, self._mode = state["metric"], state["mode"]

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as handle:
            pickle.dump(self.get_state(), handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            self.set_state(pickle.load(handle))


class BOHBScheduler(HyperBandForBOHB):
    """Ray's HyperBandForBOHB, made to halve under a concurrency limit and to resume cleanly.

    - A bracket takes new trials only before its first halving and only up to its size. (Ray
      refills a bracket whenever it holds fewer live trials than its current size; with trials
      running one at a time, every later trial then lands in a halved bracket and trains to max_t.)
    - ``max_concurrent`` (handed over by :class:`BOHBSearch` from
      ``tune.TuneConfig(max_concurrent_trials=...)``) bounds the trials pending or running: a
      paused trial resumes only into a free slot, and the searcher proposes a new trial only when
      no admitted trial is waiting for one. Paused trials do not hold a slot, so brackets fill.
    - ``Tuner.restore`` adds every trial again, finished ones included; those are kept out of the
      brackets (they never report again, and a bracket waiting for them would wait forever), and
      unfinished ones beyond the limit are restored paused, to resume one slot at a time.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_concurrent: int | None = None
        self._runner: Any = None  # the controller handle of the last call (never pickled)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_runner": None}

    def _active(self, runner: Any, exclude: Trial | None = None) -> int:
        """Trials pending or running, and paused ones already chosen to resume."""
        waiting = {t for band in self._hyperbands for b in band if b for t in b.trials_to_unpause}
        return sum(
            1
            for t in runner.get_trials()
            if t is not exclude
            and (
                t.status in (Trial.PENDING, Trial.RUNNING)
                or (t.status == Trial.PAUSED and t in waiting)
            )
        )

    @staticmethod
    def _running(runner: Any) -> int:
        return sum(1 for t in runner.get_trials() if t.status in (Trial.PENDING, Trial.RUNNING))

    def may_add_trial(self) -> bool:
        """Whether a new trial fits under ``max_concurrent`` now."""
        if self.max_concurrent is None or self._runner is None:
            return True
        return self._active(self._runner) < self.max_concurrent

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        self._runner = tune_controller
        if trial.status in (Trial.TERMINATED, Trial.ERROR):
            return  # a finished trial added back by Tuner.restore: it never reports again
        bracket = self._state["bracket"]
        if bracket is not None and (
            bracket._r != bracket._r0 or len(bracket._all_trials) >= bracket._n0
        ):
            self._state["bracket"] = None  # halved or full once: the next trial opens a new one
        super().on_trial_add(tune_controller, trial)
        if (
            self.max_concurrent is not None
            and trial.status == Trial.PENDING
            and self._active(tune_controller, exclude=trial) >= self.max_concurrent
        ):
            # Only on restore (the searcher proposes nothing without a slot): wait paused.
            trial.set_status(Trial.PAUSED)
            self._trial_info[trial][0].trials_to_unpause.add(trial)

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        if trial in self._trial_info:
            super().on_trial_remove(tune_controller, trial)

    def choose_trial_to_run(self, tune_controller: Any, allow_recurse: bool = True) -> Trial | None:
        self._runner = tune_controller
        for band in self._hyperbands:  # a bracket must never wait on a trial that has ended
            for bracket in filter(None, band):
                for t in bracket.current_trials():
                    if t.status in (Trial.TERMINATED, Trial.ERROR):
                        bracket.cleanup_trial(t)
        trial = super().choose_trial_to_run(tune_controller, allow_recurse)
        if (
            trial is not None
            and trial.status == Trial.PAUSED
            and self.max_concurrent is not None
            and self._running(tune_controller) >= self.max_concurrent
        ):
            return None  # resumes once a slot is free
        return trial


class BOHBSearch(TuneBOHB):
    """Ray's TuneBOHB with its concurrency limit handed to :class:`BOHBScheduler`.

    ``tune.TuneConfig(max_concurrent_trials=n)`` wraps the searcher in a ConcurrencyLimiter, which
    counts paused trials as live: with n = 1 no bracket ever fills and the lone trial is resumed
    to max_t. Taking the limit here (``set_max_concurrency`` returns True) switches that off; the
    scheduler enforces it on the trials actually pending or running instead.
    """

    def __init__(self, scheduler: BOHBScheduler, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scheduler = scheduler

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        self.scheduler.max_concurrent = int(max_concurrent)
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if not self.scheduler.may_add_trial():
            return None
        return super().suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id in self.trial_to_params:  # unknown after a restore from an older state
            super().on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        self.trial_to_params.pop(trial_id, None)
        self.paused.discard(trial_id)
        self.running.discard(trial_id)

    def save(self, checkpoint_path: str) -> None:
        state = {k: v for k, v in self.__dict__.items() if k != "scheduler"}
        with open(checkpoint_path, "wb") as handle:
            cloudpickle.dump(state, handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            state = cloudpickle.load(handle)
        state.pop("scheduler", None)
        self.__dict__.update(state)


def _split_options(
    method: str, options: dict[str, Any], allowed: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """The search options of ``options``, after checking ALL of them (training, runner and
    search keys) with the same constraints the YAML validator uses."""
    from gaea_tune.baselines._options import live_search_constraints, validate_live

    checked = validate_live(method, method, options)
    search = live_search_constraints(method)
    return {k: v for k, v in checked.items() if k in search}


def _choices(space: Any, exclude_none: bool) -> dict[str, Any]:
    return {name: tune.choice(list(choices)) for name, choices in param_spec(space, exclude_none)}


def make_tune_components(
    method: str,
    space: Any,
    options: dict[str, Any],
    seed: int,
    max_epochs: int,
    metric: str = "search_signal",
    mode: str = "max",
) -> tuple[dict[str, Any], TuneSearcher, TrialScheduler | None]:
    """(param_space, search_alg, scheduler) of a live baseline over ``space``.

    ``param_space`` holds only the searched part ({"space": name} plus, for BOHB/TPE, one
    ``tune.choice`` per categorical parameter that the trainable decodes); merge it into the
    trial's base config. ``metric``/``mode`` are checked here but must be given to
    ``tune.TuneConfig``, which passes them on to the searcher and scheduler. Options:
    random/rea: the searcher's (``population_size``, ``sample_size``, ``exclude_none``);
    bohb: ``reduction_factor`` (eta, default 3), ``exclude_none`` and hpbandster's
    ``num_samples``, ``random_fraction``, ... ; tpe: ``n_startup_trials``, ``multivariate``,
    ``exclude_none``. Training keys (``epochs``, ``batch_size``, ...) are ignored here.
    """
    if method not in LIVE_METHODS:
        raise ValueError(f"unknown live method {method!r}; allowed: {', '.join(LIVE_METHODS)}")
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    if not isinstance(metric, str) or not metric:
        raise ValueError(f"metric must be a non-empty string, got {metric!r}")
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1:
        raise ValueError(f"max_epochs must be a positive integer, got {max_epochs!r}")
    options = dict(options or {})
    param_space: dict[str, Any] = {"space": space.name}
    if method == "bohb":
        allowed = ("reduction_factor", "exclude_none", *_BOHB_CONFIG_KEYS)
        search = _split_options(method, options, allowed)
        eta = float(search.pop("reduction_factor", LIVE_BOHB_ETA))
        if not eta > 1:
            raise ValueError(f"reduction_factor must be > 1, got {eta!r}")
        param_space.update(_choices(space, bool(search.pop("exclude_none", False))))
        bohb_config = {k: search[k] for k in _BOHB_CONFIG_KEYS if k in search}
        scheduler = BOHBScheduler(
            time_attr="training_iteration", max_t=max_epochs, reduction_factor=eta
        )
        search_alg = BOHBSearch(scheduler, bohb_config=bohb_config or None, seed=seed)
        return param_space, search_alg, scheduler
    if method == "tpe":
        from optuna.samplers import TPESampler
        from ray.tune.search.optuna import OptunaSearch

        search = _split_options(
            method, options, ("n_startup_trials", "multivariate", "exclude_none")
        )
        param_space.update(_choices(space, bool(search.pop("exclude_none", False))))
        sampler_kwargs: dict[str, Any] = {"seed": seed}
        if "n_startup_trials" in search:
            sampler_kwargs["n_startup_trials"] = int(search["n_startup_trials"])
        if "multivariate" in search:
            sampler_kwargs["multivariate"] = bool(search["multivariate"])
        return param_space, OptunaSearch(sampler=TPESampler(**sampler_kwargs)), None
    # random, rea and any other registered searcher: its own ask/tell loop
    allowed = tuple(k for k in searcher_options(method) if k != "fidelity")
    search = _split_options(method, options, allowed)
    searcher = make_searcher(method, space, seed, **search)
    return param_space, AskTellSearcher(searcher), None
