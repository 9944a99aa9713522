"""The thread tuner: the policy on simulated step times, and the callback in a real Trainer."""

from __future__ import annotations

import json

import lightning as L
import pytest
import torch

from gmvae.cli.app import main
from gmvae.errors import ConfigError
from gmvae.training.datamodule import GMVAEDataModule
from gmvae.training.module import GMVAEModule
from gmvae.training.threads import ThreadChooser, ThreadTuner, check_threads, thread_candidates

from ..conftest import DEMO, QUIET, TINY_NETWORK, bare_trainer


@pytest.mark.parametrize(
    "limit,expected",
    [(1, [1]), (2, [1, 2]), (3, [1, 2, 3]), (6, [1, 2, 4, 6]), (8, [1, 2, 4, 8])],
)
def test_candidates_are_powers_of_two_and_the_limit(limit, expected):
    assert thread_candidates(limit) == expected


@pytest.mark.parametrize("bad", [0, -2, 1.5, "two", True, None])
def test_bad_thread_counts_name_the_allowed_values(bad):
    with pytest.raises(ConfigError, match="'auto' or a whole number >= 1"):
        check_threads(bad)


def _simulate(chooser: ThreadChooser, cost, steps: int) -> list[tuple[int, float]]:
    """Run ``steps`` steps; ``cost(step, threads)`` is a step's seconds. Returns (threads, s)."""
    ran = []
    threads = chooser.running
    for step in range(steps):
        seconds = cost(step, threads)
        ran.append((threads, seconds))
        threads = chooser.step_done(seconds)
    return ran


def _overhead(ran, best_seconds) -> float:
    """Time spent above always running the best count, as a fraction of that."""
    ideal = best_seconds * len(ran)
    return (sum(s for _, s in ran) - ideal) / ideal


def test_quiet_machine_keeps_two_threads_and_probes_rarely():
    chooser = ThreadChooser([1, 2], 2)
    ran = _simulate(chooser, lambda step, t: {1: 1.7, 2: 1.0}[t], 3000)
    assert chooser.current == 2 and chooser.switches == []
    assert _overhead(ran, 1.0) < 0.01
    assert sum(t == 1 for t, _ in ran[-1000:]) <= 4  # at most a few probe steps late on


def test_busy_machine_moves_to_one_thread_at_once_and_pays_little_for_probes():
    """Two threads 10x slower than one: the first probe switches, later probes of two
    threads stop at their first step and wait long enough to cost ~2 %."""
    chooser = ThreadChooser([1, 2], 2)
    ran = _simulate(chooser, lambda step, t: {1: 1.0, 2: 10.0}[t], 3000)
    assert chooser.current == 1
    assert chooser.switches[0][0] <= 12
    late = ran[100:]
    assert _overhead(late, 1.0) < 0.04


def test_a_load_that_comes_and_goes_is_followed_both_ways():
    def cost(step, threads):
        busy = 500 <= step < 1500
        return {1: 1.0, 2: 10.0}[threads] if busy else {1: 1.7, 2: 1.0}[threads]

    chooser = ThreadChooser([1, 2], 2)
    ran = _simulate(chooser, cost, 2500)
    steps = [s for s, _ in chooser.switches]
    assert [t for _, t in chooser.switches] == [1, 2]
    assert 500 < steps[0] <= 510  # the load came: re-probed at once (its median moved)
    assert 1500 < steps[1] <= 1520  # it went: one thread's own time fell 1.7x
    assert chooser.current == 2
    assert sum(t == 2 for t, _ in ran[520:1500]) < 20


def test_many_cores_climb_to_the_fastest_count():
    times = {1: 4.0, 2: 2.2, 4: 1.5, 8: 1.0, 16: 1.3, 32: 3.0}
    chooser = ThreadChooser(sorted(times), 32)
    _simulate(chooser, lambda step, t: times[t], 400)
    assert chooser.current == 8


def test_untimed_steps_are_skipped_and_a_near_tie_keeps_the_incumbent():
    chooser = ThreadChooser([1, 2], 2)
    for _ in range(50):
        assert chooser.step_done(None) == 2  # nothing timed: nothing decided
    ran = _simulate(chooser, lambda step, t: {1: 0.99, 2: 1.0}[t], 500)
    assert chooser.current == 2 and any(t == 1 for t, _ in ran)  # probed, not switched


def test_the_first_step_after_a_switch_is_not_counted():
    """One thread's settling step is slow (a new path's buffers); its timed steps are fast."""
    chooser = ThreadChooser([1, 2], 2, warm_abort=100)
    seen = {"settled": False}

    def cost(step, threads):
        if threads == 1 and not seen["settled"]:
            seen["settled"] = True
            return 50.0
        return {1: 0.5, 2: 1.0}[threads]

    _simulate(chooser, cost, 30)
    assert chooser.current == 1


class _FakeClock:
    """Each call advances by the cost of the step that ran since the last one, at the
    thread count set during it (the tuner reads the clock before changing the count)."""

    def __init__(self, cost: dict[int, float]) -> None:
        self.cost, self.now, self.calls = cost, 0.0, 0

    def __call__(self) -> float:
        self.calls += 1
        self.now += self.cost[torch.get_num_threads()]
        return self.now


class _RecordThreads(L.Callback):
    def __init__(self) -> None:
        self.counts: list[int] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.counts.append(torch.get_num_threads())


def _fit(tmp_path, tuner: ThreadTuner, steps: int = 16, **options) -> list[int]:
    dm = GMVAEDataModule("digits", num_labeled=50, unlabeled_batch_size=32, labeled_batch_size=20)
    module = GMVAEModule((1, 8, 8), 10, network=TINY_NETWORK, loss={"knn_k": 3})
    recorder = _RecordThreads()
    trainer = bare_trainer(tmp_path, max_steps=steps, callbacks=[tuner, recorder], **options)
    trainer.fit(module, datamodule=dm)
    return recorder.counts


def test_the_callback_switches_torch_threads_and_restores_them(tmp_path, two_threads, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    clock = _FakeClock({1: 0.3, 2: 1.0})
    tuner = ThreadTuner("auto", clock=clock)
    counts = _fit(tmp_path, tuner)
    assert counts[0] == 2 and counts[-1] == 1
    assert tuner.chooser is not None and tuner.chooser.current == 1
    assert clock.calls == len(counts)
    assert torch.get_num_threads() == 2  # the caller's count, back after fit


@pytest.mark.parametrize("validation", ["none", "mid-epoch"])
def test_epoch_ends_and_validations_are_not_timed(tmp_path, two_threads, monkeypatch, validation):
    """A step followed by an epoch's end or a validation reaches the policy as untimed (None)."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    timed: list[float | None] = []
    tuner = ThreadTuner("auto", clock=_FakeClock({1: 1.0, 2: 1.0}))
    original = ThreadChooser.step_done

    def spy(self, seconds):
        timed.append(seconds)
        return original(self, seconds)

    monkeypatch.setattr(ThreadChooser, "step_done", spy)
    dm = GMVAEDataModule("digits", num_labeled=50, unlabeled_batch_size=64, labeled_batch_size=20)
    module = GMVAEModule((1, 8, 8), 10, network=TINY_NETWORK, loss={"knn_k": 3})
    options = {"limit_val_batches": 0}
    if validation == "mid-epoch":
        options = {"limit_val_batches": 1, "val_check_interval": 4, "num_sanity_val_steps": 0}
    trainer = bare_trainer(tmp_path, max_epochs=2, callbacks=[tuner], **options)
    trainer.fit(module, datamodule=dm)
    per_epoch = trainer.num_training_batches
    assert per_epoch > 8
    untimed = {i for i, t in enumerate(timed) if t is None}
    expected = {per_epoch - 1}  # the first step of epoch 2 ends epoch 1's last step
    if validation == "mid-epoch":  # and each validation ends the step before it
        expected |= {e * per_epoch + s - 1 for e in (0, 1) for s in range(4, per_epoch + 1, 4)}
        expected.discard(2 * per_epoch - 1)  # after the very last step no step starts
    assert len(timed) == 2 * per_epoch - 1
    assert untimed == expected


def test_a_probe_stops_at_its_first_slow_step():
    """Two threads settle fast but then run 10x slower: each probe is 2 steps (settle + 1)."""
    chooser = ThreadChooser([1, 2], 1, warm_abort=float("inf"))
    previous = [1]

    def cost(step, threads):
        settling = threads == 2 and previous[0] == 1
        previous[0] = threads
        return 1.0 if threads == 1 or settling else 10.0

    ran = "".join(str(t) for t, _ in _simulate(chooser, cost, 2000))
    probes = [len(run) for run in ran.split("1") if run]
    assert chooser.current == 1 and len(probes) >= 3 and set(probes) == {2}


@pytest.mark.parametrize("reason", ["env", "deterministic"])
def test_a_count_fixed_by_the_user_is_left_alone(tmp_path, two_threads, monkeypatch, reason):
    options = {}
    if reason == "env":
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
    else:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        options["deterministic"] = True
    tuner = ThreadTuner("auto", clock=_FakeClock({1: 0.1, 2: 1.0}))
    try:
        counts = _fit(tmp_path, tuner, **options)
    finally:
        torch.use_deterministic_algorithms(False)  # the Trainer turned it on for the process
    assert set(counts) == {2} and tuner.chooser is None


def test_a_fixed_count_holds_for_every_step(tmp_path, two_threads):
    counts = _fit(tmp_path, ThreadTuner(1, clock=_FakeClock({1: 5.0, 2: 1.0})))
    assert set(counts) == {1}
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("option", ["1", "2"])
def test_gmvae_fit_threads_option(tmp_path, option, monkeypatch):
    """``--threads N`` holds for every training step, whatever OMP_NUM_THREADS says."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    probe = {
        "class_path": "tests.training.threads_probe.ExpectThreads",
        "init_args": {"count": int(option)},
    }
    before = torch.get_num_threads()
    main(
        ["fit", "--config", DEMO, "--trainer.max_epochs", "1", "--threads", option]
        + ["--trainer.default_root_dir", str(tmp_path / "run"), *QUIET]
        + ["--trainer.callbacks+=" + json.dumps(probe)]
    )
    assert (tmp_path / "run" / "metrics.json").is_file()
    assert "threads: " + option in (tmp_path / "run" / "config.yaml").read_text()
    assert torch.get_num_threads() == before


def test_gmvae_fit_rejects_a_bad_thread_count_before_writing(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "fit",
                "--config",
                DEMO,
                "--threads",
                "0",
                "--trainer.default_root_dir",
                str(tmp_path / "r"),
            ]
        )
    assert exit_.value.code == 2
    assert "threads=0: use 'auto' or a whole number >= 1" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
