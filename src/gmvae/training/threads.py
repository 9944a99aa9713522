"""The number of CPU threads for training, chosen while it trains.

PyTorch's CPU kernels run in OpenMP parallel regions that end in a barrier: every
thread waits there for the slowest one. On a machine shared with other processes a
thread is often descheduled, and the others spin at the barrier until it runs again,
so a step at two threads on a busy 2-core machine took 5-20 times as long as on a
quiet one, several times longer than at one thread (docs/PERFORMANCE.md, "Threads on
a busy machine"). No count is best everywhere: on a quiet machine two threads are
1.7x faster than one. :class:`ThreadTuner` therefore times the steps while training
and keeps the fastest count, trying the neighbouring counts now and then.

The thread count changes the rounding of the results (oneDNN and PyTorch split their
reductions by thread), so a run whose count is chosen by timing is not bit-for-bit
repeatable. A fixed count is: ``threads=N`` (``gmvae fit --threads N``), or the
``OMP_NUM_THREADS`` environment variable, or ``--trainer.deterministic true``.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

import lightning as L
import torch

from gmvae.errors import ConfigError

AUTO = "auto"
Threads = int | Literal["auto"]


def check_threads(threads: object) -> Threads:
    """``threads`` as given, or a ConfigError naming the allowed values."""
    if threads == AUTO:
        return AUTO
    if isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1:
        return threads
    raise ConfigError(f"threads={threads!r}: use 'auto' or a whole number >= 1")


def thread_candidates(limit: int) -> list[int]:
    """1, 2, 4, ... up to ``limit``, and ``limit`` itself: the counts the tuner may try."""
    counts = [1]
    while counts[-1] * 2 < limit:
        counts.append(counts[-1] * 2)
    return counts if limit == 1 else [*counts, limit]


class ThreadChooser:
    """Which thread count to run the next step at, from the durations of the last ones.

    The pure policy behind :class:`ThreadTuner`, with no clock and no torch calls. The
    count in use (the incumbent) keeps a window of its recent step times. Now and then
    one neighbouring count (the next lower or higher candidate) is probed: one step to
    settle (not counted), then ``probe_steps`` timed steps, compared with the
    incumbent's median just before; a challenger faster by more than ``margin`` takes
    over. A probe stops at its first step slower than ``abort`` times the incumbent
    median (``warm_abort`` for the settling step), so a count that the machine's load
    has made far slower costs one step, not several.

    A lost probe waits before the same challenger is tried again: twice as long as last
    time, and at least long enough that its extra time is a ``budget`` fraction of the
    time trained in between, from ``min_interval`` to ``max_interval`` steps. When the
    incumbent's median moves by more than ``change`` times (the machine's load came or
    went), the neighbours are probed again at once (at most once per ``min_interval``
    steps).
    """

    def __init__(
        self,
        candidates: list[int],
        start: int,
        *,
        window: int = 5,
        probe_steps: int = 3,
        min_interval: int = 50,
        max_interval: int = 1000,
        budget: float = 0.02,
        margin: float = 0.03,
        abort: float = 1.5,
        warm_abort: float = 3.0,
        change: float = 1.5,
    ) -> None:
        if start not in candidates:
            raise ValueError(f"start={start} is not one of the candidates {candidates}")
        self.candidates = sorted(candidates)
        self.current = start
        self.running = start
        self.window_size, self.probe_steps = window, probe_steps
        self.min_interval, self.max_interval = min_interval, max_interval
        self.budget, self.margin = budget, margin
        self.abort, self.warm_abort, self.change = abort, warm_abort, change
        self.steps = 0
        self.switches: list[tuple[int, int]] = []  # (step, new incumbent)
        self._window: deque[float] = deque(maxlen=window)
        self._warm = True  # the first step (and the first after every switch) is not counted
        self._baseline: float | None = None
        self._forced_at = -min_interval
        self._due = {c: 0 for c in self._neighbours()}
        self._interval = {c: min_interval for c in self.candidates}
        self._probe: int | None = None
        self._probe_times: list[float] = []
        self._probe_seconds = 0.0

    def _neighbours(self) -> list[int]:
        i = self.candidates.index(self.current)
        return [self.candidates[j] for j in (i - 1, i + 1) if 0 <= j < len(self.candidates)]

    def step_done(self, seconds: float | None) -> int:
        """Record the step just run (``None``: not timed, e.g. across a validation);
        returns the thread count for the next step."""
        self.steps += 1
        warm, self._warm = self._warm, False
        if self._probe is not None:
            return self._probing(seconds, warm)
        if seconds is not None and not warm:
            self._window.append(seconds)
        if len(self._window) < self.window_size:
            return self.running
        median = statistics.median(self._window)
        if self._baseline is None:
            self._baseline = median
        elif not 1 / self.change < median / self._baseline < self.change:
            self._baseline = median
            if self.steps - self._forced_at >= self.min_interval:
                self._forced_at = self.steps
                self._due = dict.fromkeys(self._neighbours(), self.steps)
        due = [c for c in self._neighbours() if self._due.get(c, 0) <= self.steps]
        if due:
            self._probe, self._probe_times, self._probe_seconds = due[0], [], 0.0
            self._switch_to(due[0])
        return self.running

    def _probing(self, seconds: float | None, warm: bool) -> int:
        challenger = self._probe
        assert challenger is not None
        if seconds is None:
            return self.running
        median = statistics.median(self._window)
        self._probe_seconds += seconds
        if warm:
            if seconds > self.warm_abort * median:
                return self._lose(challenger, median, steps=1)
            return self.running
        self._probe_times.append(seconds)
        steps = len(self._probe_times) + 1
        if seconds > self.abort * median:
            return self._lose(challenger, median, steps)
        if len(self._probe_times) < self.probe_steps:
            return self.running
        if statistics.median(self._probe_times) < (1 - self.margin) * median:
            return self._win(challenger)
        return self._lose(challenger, median, steps)

    def _lose(self, challenger: int, median: float, steps: int) -> int:
        extra = max(0.0, self._probe_seconds - steps * median)
        wait = max(2 * self._interval[challenger], extra / (self.budget * median))
        self._interval[challenger] = int(min(self.max_interval, max(self.min_interval, wait)))
        self._due[challenger] = self.steps + self._interval[challenger]
        self._probe = None
        self._switch_to(self.current)
        return self.running

    def _win(self, challenger: int) -> int:
        loser, self.current, self._probe = self.current, challenger, None
        self.switches.append((self.steps, challenger))
        self._window = deque(self._probe_times, maxlen=self.window_size)
        self._baseline = statistics.median(self._probe_times)
        self._interval[loser] = self.min_interval
        self._due = {c: self.steps + self._interval[c] for c in self._neighbours()}
        return self.running

    def _switch_to(self, threads: int) -> None:
        self.running, self._warm = threads, True


class ThreadTuner(L.Callback):
    """Sets the CPU threads of a Trainer: a fixed count, or the fastest count found while training.

    ``threads="auto"`` (the default) tunes the count during ``fit`` with
    :class:`ThreadChooser`, between 1 and ``torch.get_num_threads()`` at the start of
    the first fit, from the wall time of each training step (from one step's start to
    the next one's, so that validation is not counted). It leaves the count alone, as
    fixed, where the user fixed it: ``OMP_NUM_THREADS`` set in the environment,
    deterministic algorithms on (``--trainer.deterministic true``); and where it cannot
    tell one count from another: more than one process (DDP), or training off the CPU.
    ``threads=N`` runs every stage (fit, validate, test, predict) at N threads. Each
    stage's end restores the count it found, so the caller's process is left as it was.

    The tuner's state lasts over several fits of one Trainer-less loop (the benchmark
    windows); ``clock`` is the timer, injectable for tests.
    """

    def __init__(
        self, threads: Threads = AUTO, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.threads = check_threads(threads)
        self.clock = clock
        self.chooser: ThreadChooser | None = None
        self._saved: int | None = None
        self._last: float | None = None
        self._started = False  # a step has started in this fit: the next start ends it
        self._tuning = False

    def fixed_reason(self, trainer: L.Trainer) -> str | None:
        """Why ``threads="auto"`` keeps the count it finds (None: it tunes)."""
        if "OMP_NUM_THREADS" in os.environ:
            return "OMP_NUM_THREADS is set"
        if torch.are_deterministic_algorithms_enabled():
            return "deterministic algorithms are on"
        if trainer.world_size > 1:
            return "more than one process"
        if trainer.strategy.root_device.type != "cpu":
            return "training off the CPU"
        if torch.get_num_threads() < 2 and self.chooser is None:
            return "one thread available"
        return None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._saved = torch.get_num_threads()
        if self.threads != AUTO:
            torch.set_num_threads(int(self.threads))
            return
        self._tuning = stage == "fit" and self.fixed_reason(trainer) is None
        if not self._tuning:
            return
        if self.chooser is None:
            limit = torch.get_num_threads()
            self.chooser = ThreadChooser(thread_candidates(limit), limit)
        torch.set_num_threads(self.chooser.running)
        self._last, self._started = None, False

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if not self._tuning or self.chooser is None:
            return
        now = self.clock()
        if self._started:
            seconds = None if self._last is None else now - self._last
            threads = self.chooser.step_done(seconds)
            if threads != torch.get_num_threads():
                torch.set_num_threads(threads)
        self._started, self._last = True, now

    def on_validation_start(self, trainer, pl_module) -> None:
        self._last = None  # the step before a validation is not timed

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._last = None  # nor an epoch's last step (the epoch's end and validation follow)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._saved is not None:
            torch.set_num_threads(self._saved)
        self._saved, self._tuning = None, False
