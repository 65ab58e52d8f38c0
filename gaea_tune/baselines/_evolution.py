"""Random search and regularized evolution (REA, Real et al. 2019) as ask/tell searchers."""

from __future__ import annotations

import inspect
from collections import deque
from typing import Any

import numpy as np

from gaea_tune._constraints import Boolean, Interval, OptionError
from gaea_tune.baselines._searcher import Proposal, Searcher


def _takes_exclude_none(method: Any) -> bool:
    try:
        return "exclude_none" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


class _SpaceSampler:
    """``sample``/``mutate`` of a space, passing ``exclude_none`` only where the space takes it."""

    def __init__(self, space: Any, exclude_none: bool) -> None:
        self.space = space
        self.exclude_none = bool(exclude_none)
        if self.exclude_none and not _takes_exclude_none(space.sample):
            raise ValueError(f"space {space.name!r} does not take exclude_none=True")
        self._kwargs = {"exclude_none": True} if self.exclude_none else {}

    def sample(self, rng: np.random.Generator) -> Any:
        return self.space.sample(rng, **self._kwargs)

    def mutate(self, genotype: Any, rng: np.random.Generator) -> Any:
        return self.space.mutate(genotype, rng, **self._kwargs)


def _check_fidelity(fidelity: Any) -> int | None:
    if fidelity is None:
        return None
    if isinstance(fidelity, bool) or not isinstance(fidelity, (int, np.integer)) or fidelity < 1:
        raise ValueError(f"fidelity must be a positive integer or None, got {fidelity!r}")
    return int(fidelity)


class RandomSearcher(Searcher):
    """Uniformly random genotypes, each trained for ``fidelity`` epochs (None: the caller's)."""

    name = "random"
    _parameter_constraints = {"exclude_none": Boolean()}

    def __init__(
        self, space: Any, seed: int, fidelity: int | None = None, exclude_none: bool = False
    ) -> None:
        super().__init__(space, seed)
        self.fidelity = _check_fidelity(fidelity)
        self._sampler = _SpaceSampler(space, exclude_none)

    def _ask(self) -> tuple[Any, int | None]:
        return self._sampler.sample(self.rng), self.fidelity

    def _tell(self, proposal: Proposal, signal: float) -> None:
        del proposal, signal


class REASearcher(Searcher):
    """Regularized (aging) evolution: population ``P``, tournaments of ``S``, one-edge mutation.

    Follows Real et al.'s Algorithm 1 as NAS-Bench-201 runs it (D-X-Y/AutoDL-Projects,
    ``exps/NAS-Bench-201-algos/R_EA.py``, ``regularized_evolution``, lines 177-226): the first
    ``P`` results form the population (random genotypes); afterwards each proposal is a mutation
    (``space.mutate``) of the best of ``S`` members drawn uniformly *with* replacement (lines
    200-208: ``S`` independent draws, so a member may be drawn twice; the first drawn wins a tie),
    and each told result joins the population while the oldest member leaves (lines 221-225).
    ``tournament_replacement=False`` draws ``S`` distinct members instead (a variant, not the
    reference's default). Failed (NaN) results join with signal -inf, so they age out like any
    other member but never win a tournament against a finite one. While fewer than ``P``
    results are in (asynchronous use), asks are random genotypes.
    """

    name = "rea"
    _parameter_constraints = {
        "population_size": Interval(int, 2, 100_000),
        "sample_size": Interval(int, 1, 100_000),
        "exclude_none": Boolean(),
        "tournament_replacement": Boolean(),
    }

    @classmethod
    def validate_params(cls, where: str, options: dict[str, Any]) -> dict[str, Any]:
        checked = super().validate_params(where, options)
        sample = checked.get("sample_size", 3)
        population = checked.get("population_size", 10)
        if sample > population:
            raise OptionError(
                f"{where}.sample_size: {sample} is above population_size={population}; "
                "allowed: sample_size <= population_size"
            )
        return checked

    def __init__(
        self,
        space: Any,
        seed: int,
        population_size: int = 10,
        sample_size: int = 3,
        fidelity: int | None = None,
        exclude_none: bool = False,
        tournament_replacement: bool = True,
    ) -> None:
        super().__init__(space, seed)
        self.validate_params(
            "rea",
            {
                "population_size": population_size,
                "sample_size": sample_size,
                "tournament_replacement": tournament_replacement,
            },
        )
        self.population_size = int(population_size)
        self.sample_size = int(sample_size)
        self.tournament_replacement = bool(tournament_replacement)
        self.fidelity = _check_fidelity(fidelity)
        self._sampler = _SpaceSampler(space, exclude_none)
        # (genotype, signal), oldest first.
        self.population: deque[tuple[Any, float]] = deque()
        self._filled = False

    def _ask(self) -> tuple[Any, int | None]:
        if not self._filled:
            return self._sampler.sample(self.rng), self.fidelity
        members = self.population
        # Tournament: S members drawn uniformly (with replacement unless told otherwise); the
        # best, the first drawn among ties, becomes the parent.
        drawn = self.tournament(len(members))
        parent = max((members[int(i)] for i in drawn), key=lambda member: member[1])
        return self._sampler.mutate(parent[0], self.rng), self.fidelity

    def tournament(self, population: int) -> np.ndarray:
        """Positions (oldest member = 0) of the ``S`` members drawn for one tournament."""
        if self.tournament_replacement:
            return self.rng.integers(population, size=self.sample_size)
        return self.rng.choice(population, size=self.sample_size, replace=False)

    def _tell(self, proposal: Proposal, signal: float) -> None:
        value = -np.inf if signal != signal else float(signal)
        self.population.append((proposal.genotype, value))
        if len(self.population) > self.population_size:
            self.population.popleft()
        if len(self.population) >= self.population_size:
            self._filled = True

    def _state(self) -> dict[str, Any]:
        return {
            "population": [(str(g), s) for g, s in self.population],
            "filled": self._filled,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self.population = deque((self.space.parse(g), float(s)) for g, s in state["population"])
        self._filled = bool(state["filled"])
