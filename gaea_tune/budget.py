"""Device-second budgets: every method gets the same budget B and may not overrun it.

Device-seconds are what :class:`DeviceClock` charges: wall seconds times the GPUs a trial holds
when it holds any, otherwise the CPU time of the trial's own process (labelled "cpu" so reports
never call them GPU-hours).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field


def device_count(gpus: float, cpus: float) -> tuple[float, str]:
    """How many devices a trial with these resources is charged for, and their kind."""
    if gpus < 0 or cpus < 0:
        raise ValueError(f"resources must be >= 0, got {gpus=}, {cpus=}")
    if gpus > 0:
        return float(gpus), "gpu"
    if cpus <= 0:
        raise ValueError(f"a trial needs at least one GPU or CPU slot, got {gpus=}, {cpus=}")
    return float(cpus), "cpu"


class DeviceClock:
    """The one charging rule of every trainable: the device-seconds a trial's own work costs.

    GPU trials: wall seconds x the GPUs they hold (a fractional GPU is charged its fraction).
    CPU trials: the CPU time of the trial's own process (user + system, all its threads), so a
    trial is charged for the work it did, not for the time it waited while other trials used
    the cores; the same work costs the same whatever else runs beside it. Both trainables start
    the clock when the trial starts (data loading, network construction, training, evaluation
    and checkpoint writing are all charged) and stop it around the hand-over of a result to Ray
    Tune (:meth:`paused`), which is orchestration, not the method's work.

    ``spent``: device-seconds charged before (a resumed trial's checkpoint).
    """

    def __init__(self, gpus: float, cpus: float, spent: float = 0.0) -> None:
        self.devices, self.kind = device_count(gpus, cpus)
        self._before = float(spent)
        self._mark = self._now()
        self._banked = 0.0

    def _now(self) -> float:
        if self.kind == "gpu":
            return time.perf_counter() * self.devices
        return time.process_time()

    def spent(self) -> float:
        """Device-seconds charged so far (including ``spent`` given at construction)."""
        return self._before + self._banked + (self._now() - self._mark)

    def resume_from(self, spent: float) -> None:
        """Continue from a checkpoint's charge: ``spent`` device-seconds were charged before."""
        self._before = float(spent)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Nothing inside is charged (the hand-over of a result and checkpoint to Ray Tune)."""
        self._banked += self._now() - self._mark
        try:
            yield
        finally:
            self._mark = self._now()


@dataclass
class BudgetLedger:
    """Charges device-seconds per trial and answers whether a method may start or continue."""

    budget: float
    spent_by_trial: dict[str, float] = field(default_factory=dict)
    finished_costs: list[float] = field(default_factory=list)
    running: set[str] = field(default_factory=set)
    last_report: dict[str, float] = field(default_factory=dict)
    offsets: dict[str, float] = field(default_factory=dict)
    lost_seconds: float = 0.0  # work charged after a crash that no checkpoint kept
    _counted: set[str] = field(default_factory=set)  # trials whose cost is in finished_costs

    def __post_init__(self) -> None:
        if not self.budget > 0:
            raise ValueError(f"budget must be > 0 device-seconds, got {self.budget!r}")

    @property
    def spent(self) -> float:
        return sum(self.spent_by_trial.values()) + self.lost_seconds

    @property
    def remaining(self) -> float:
        return self.budget - self.spent

    def charge(self, trial_id: str, cumulative_device_seconds: float) -> None:
        """Record a trial's cumulative spend as it reports it.

        Reports are cumulative, so a repeated report never counts twice. A report below the
        previous one means the trial was restored from an older checkpoint: the work it redoes
        is real spend, so the gap is kept as an offset on top of what it reports from then on.
        """
        value = float(cumulative_device_seconds)
        if not value >= 0:
            raise ValueError(f"device-seconds must be >= 0, got {cumulative_device_seconds!r}")
        last = self.last_report.get(trial_id, 0.0)
        if value < last:
            self.offsets[trial_id] = self.offsets.get(trial_id, 0.0) + last - value
        self.last_report[trial_id] = value
        self.spent_by_trial[trial_id] = value + self.offsets.get(trial_id, 0.0)

    def start(self, trial_id: str) -> None:
        """A trial was launched; until it finishes its expected cost counts as committed."""
        self.running.add(trial_id)
        self.spent_by_trial.setdefault(trial_id, 0.0)

    def finish(self, trial_id: str, completed: bool = True) -> None:
        """A trial ended; a completed one that reported its spend informs the estimate for the
        next one (one stopped before its first report trained nothing to estimate from, and a
        ledger rebuilt from the event log, which holds reports only, would not count it)."""
        self.running.discard(trial_id)
        if completed and trial_id in self.last_report and trial_id not in self._counted:
            self._counted.add(trial_id)  # a finish seen again (after a resume) counts once
            self.finished_costs.append(self.spent_by_trial[trial_id])

    def charge_lost(self, device_seconds: float) -> None:
        """Charge work that was done but lost (a worker died after its last checkpoint)."""
        self.lost_seconds += max(0.0, float(device_seconds))

    def expected_trial_cost(self) -> float:
        """Mean cost of finished trials (0 before any finished: the first trial always may start)."""
        if not self.finished_costs:
            return 0.0
        return sum(self.finished_costs) / len(self.finished_costs)

    def committed(self) -> float:
        """Expected further spend of the running trials."""
        expected = self.expected_trial_cost()
        return sum(max(0.0, expected - self.spent_by_trial.get(t, 0.0)) for t in self.running)

    def next_fits(self, expected_cost: float | None = None) -> bool:
        """Whether one more trial is expected to fit in what is left once the live trials end
        (their further spend aside): when it does not, the method has launched its last trial."""
        cost = self.expected_trial_cost() if expected_cost is None else expected_cost
        return self.remaining > 0 and self.spent + cost <= self.budget

    def may_start(self, expected_cost: float | None = None) -> bool:
        """Whether a new trial is expected to fit beside what is spent and committed."""
        cost = self.expected_trial_cost() if expected_cost is None else expected_cost
        return self.next_fits(cost) and self.spent + self.committed() + cost <= self.budget

    def exhausted(self) -> bool:
        return self.spent >= self.budget
