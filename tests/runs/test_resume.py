"""Resume after a crash: a run SIGKILLed mid-epoch and re-run with the same command ends
exactly as the same run uninterrupted (CPU, same seed)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import pytest
import torch

from gmvae.cli.app import main
from gmvae.data.sampler import SemiSupervisedBatchSampler, StatefulDataLoader
from gmvae.io.checkpoint import load_checkpoint_safely
from gmvae.runs.rng_state import capture_rng_state, restore_rng_state

from ..conftest import DEMO, QUIET, REPO

TIMES = {"train_seconds", "seconds_per_epoch"}


def _fit_command(
    run_dir, marker, step: int = 0, during: str = "train", *extra: str, signal: str = "Kill"
) -> list[str]:
    """The command a user re-runs after a crash; the callback SIGKILLs it once, at ``step``
    (``signal="Term"``: SIGTERMs it, as a scheduler preempting the job does)."""
    killer = {
        "class_path": f"tests.runs.crash.{signal}AtStep",
        "init_args": {"step": step, "marker": str(marker), "during": during},
    }
    return [
        "fit",
        "--config",
        DEMO,
        "--trainer.max_epochs",
        "2",
        "--trainer.default_root_dir",
        str(run_dir),
        "--autosave.train_time_interval",
        "null",
        "--autosave.every_n_train_steps",
        "5",
        "--trainer.callbacks+=" + json.dumps(killer),
        "--ckpt_path",
        "last",
        "--threads",  # exact only at a fixed thread count (the count changes the rounding)
        "1",
        *QUIET,
        *extra,
    ]


def _gmvae(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gmvae", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )


def _comparable(run_dir) -> dict:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {
        k: (v.replace(str(run_dir), "RUN") if isinstance(v, str) else v)
        for k, v in metrics.items()
        if k not in TIMES
    }


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The same run, never killed (the same callbacks; its marker exists, so it never fires)."""
    root = tmp_path_factory.mktemp("reference")
    (root / "no-kill").touch()
    main(_fit_command(root / "run", root / "no-kill"))
    return root / "run"


@pytest.mark.slow
@pytest.mark.parametrize(
    "during,step,saved_at,position",
    [
        # epoch 1, batch 7 of 15: resumes from the in-epoch autosave of step 20
        ("train", 22, 20, {"epoch": 1, "batches_done": 5}),
        # in the validation after epoch 0: resumes from step 10 (no autosave after an
        # epoch's last batch, as resuming from there would skip this validation)
        ("validation", 15, 10, {"epoch": 0, "batches_done": 10}),
    ],
)
def test_sigkill_then_the_same_command_resumes_exactly(
    tmp_path, uninterrupted, during, step, saved_at, position
):
    run = tmp_path / "run"
    command = _fit_command(run, tmp_path / "killed", step, during)

    killed = _gmvae(command)
    assert killed.returncode == -9, killed.stderr  # SIGKILL: no cleanup, no final save
    assert not (run / "metrics.json").exists()
    last = load_checkpoint_safely(run / "checkpoints" / "last.ckpt")
    assert last["global_step"] == saved_at
    assert last["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [position]

    resumed = _gmvae(command)  # the very same command line
    assert resumed.returncode == 0, resumed.stderr
    assert "Restoring states from the checkpoint path" in resumed.stdout + resumed.stderr

    assert _comparable(run) == _comparable(uninterrupted)
    # Every logged number too, the interrupted epoch's training means included.
    assert (run / "metrics.csv").read_text() == (uninterrupted / "metrics.csv").read_text()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == sorted(
        p.name for p in (uninterrupted / "checkpoints").iterdir()
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "step,saved_at,position",
    [
        # mid-epoch 1: the batch being trained finishes and is saved
        (22, 23, {"epoch": 1, "batches_done": 8}),
        # epoch 0's last batch: its validation and checkpoint come first, then the stop
        (14, 15, {"epoch": 0, "batches_done": 15}),
    ],
)
def test_sigterm_saves_exits_143_and_the_same_command_resumes_exactly(
    tmp_path, uninterrupted, step, saved_at, position
):
    run = tmp_path / "run"
    command = _fit_command(run, tmp_path / "terminated", step, signal="Term")

    stopped = _gmvae(command)
    assert stopped.returncode == 143, stopped.stderr[-3000:]  # documented: 128 + SIGTERM
    lines = [line for line in stopped.stderr.splitlines() if line.startswith("gmvae: error:")]
    assert len(lines) == 1 and "Traceback" not in stopped.stderr, stopped.stderr[-3000:]
    assert f"stopped by SIGTERM at global step {saved_at}" in lines[0]
    assert "--ckpt_path last" in lines[0]
    assert not (run / "metrics.json").exists()
    last = load_checkpoint_safely(run / "checkpoints" / "last.ckpt")
    assert last["global_step"] == saved_at
    assert last["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [position]

    resumed = _gmvae(command)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _comparable(run) == _comparable(uninterrupted)
    assert (run / "metrics.csv").read_text() == (uninterrupted / "metrics.csv").read_text()


@pytest.mark.slow
def test_a_run_with_weight_averaging_resumes_exactly(tmp_path):
    """The average resumes too: a checkpoint holds it beside the trained weights."""
    averaging = ("--model.ema_decay", "0.9")
    reference = tmp_path / "reference"
    (tmp_path / "no-kill").touch()
    main(_fit_command(reference, tmp_path / "no-kill", 0, "train", *averaging))
    run = tmp_path / "run"
    # Killed at step 17: it resumes from the checkpoint taken after epoch 0 (step 15).
    command = _fit_command(run, tmp_path / "killed", 17, "train", *averaging)
    assert _gmvae(command).returncode == -9
    assert load_checkpoint_safely(run / "checkpoints" / "last.ckpt")["global_step"] == 15
    resumed = _gmvae(command)
    assert resumed.returncode == 0, resumed.stderr
    assert _comparable(run) == _comparable(reference)
    assert (run / "metrics.csv").read_text() == (reference / "metrics.csv").read_text()
    model = "model.safetensors"
    assert (run / model).read_bytes() == (reference / model).read_bytes()


def test_last_ckpt_holds_every_epochs_end_when_the_best_was_earlier(tmp_path):
    """The best-model checkpoint rewrites last.ckpt only with a new best; after an epoch
    without one, a kill must still resume from that epoch's end, not from the last best."""
    run = tmp_path / "run"
    # "best" = the highest validation loss: the first epoch, as the loss falls. No
    # in-epoch saves; killed in epoch 2 (steps 30-44), after epoch 1's validation.
    command = _fit_command(
        run, tmp_path / "killed", 35, "train", "--checkpoint.monitor", "val/loss",
        "--checkpoint.mode", "max", "--autosave.every_n_train_steps", "null", "--trainer.max_epochs", "3",
    )  # fmt: skip
    assert _gmvae(command).returncode == -9
    last = load_checkpoint_safely(run / "checkpoints" / "last.ckpt")
    assert (last["epoch"], last["global_step"]) == (1, 30)  # epoch 1 done
    best = load_checkpoint_safely(run / "checkpoints" / "best-epoch000.ckpt")
    assert best["global_step"] == 15


def test_a_resume_may_not_change_what_the_run_is(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(SystemExit):
        main(_fit_command(run, tmp_path / "m", 0, "train", "--print_config"))
    (run / "config.yaml").write_text(capsys.readouterr().out)  # as the killed run wrote it
    # ... and its first checkpoint (without one there is nothing to mix: a new start)
    (run / "checkpoints").mkdir()
    torch.save({"state_dict": {}, "global_step": 3}, run / "checkpoints" / "last.ckpt")
    with pytest.raises(SystemExit) as exc:
        main(_fit_command(run, tmp_path / "m", 0, "train", "--data.num_labeled", "30"))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err and "data.num_labeled: 50 -> 30" in err


def test_a_resume_may_train_longer_and_keeps_the_old_config(tmp_path, capsys):
    from gmvae.runs.directory import prepare_resume

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("trainer:\n  max_epochs: 2\nckpt_path: null\n")
    note = prepare_resume(run, "trainer:\n  max_epochs: 5\nckpt_path: last\n")
    assert "trainer.max_epochs: 2 -> 5" in note
    assert (run / "config.1.yaml").read_text().startswith("trainer:\n  max_epochs: 2")
    assert not (run / "config.yaml").exists()  # the resumed run writes its own


def test_sampler_state_skips_the_batches_already_trained_on():
    def sampler():
        return SemiSupervisedBatchSampler(
            np.arange(20, 100), np.arange(20), unlabeled_batch_size=16, labeled_batch_size=8, seed=5
        )

    full = sampler()
    full.set_epoch(3)
    expected = list(full)

    first = sampler()
    first.set_epoch(3)
    seen = []
    for batch in first:
        seen.append(batch)
        if len(seen) == 2:
            state = first.state_dict()
            break
    assert state == {"epoch": 3, "batches_done": 2}

    resumed = sampler()
    loader = StatefulDataLoader(range(100), batch_sampler=resumed)
    loader.load_state_dict(state)
    resumed.set_epoch(3)
    rest = list(resumed)
    assert seen + rest == expected
    assert list(resumed) == expected  # the skip applies to the resumed pass only
    resumed.load_state_dict(state)
    resumed.set_epoch(4)  # the checkpoint was taken in another epoch: no skip
    assert len(list(resumed)) == len(resumed)


def test_lightning_reaches_the_batch_sampler_epoch():
    """Lightning sets the epoch through ``batch_sampler.sampler``; without that alias every
    epoch would repeat epoch 0's batches."""
    from lightning.fabric.utilities.data import _set_sampler_epoch

    s = SemiSupervisedBatchSampler(
        np.arange(10, 40), np.arange(10), unlabeled_batch_size=10, labeled_batch_size=5, seed=0
    )
    loader = StatefulDataLoader(range(40), batch_sampler=s)
    _set_sampler_epoch(loader, 7)
    assert s.epoch == 7


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    import random

    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    state = capture_rng_state()
    torch.save({"rng": state}, tmp_path / "s.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.rand(5), np.random.rand(5), random.random()
    restore_rng_state(torch.load(tmp_path / "s.pt", weights_only=True)["rng"])
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0])
    assert (expected[1] == again[1]).all() and expected[2] == again[2]


def test_a_run_older_than_an_option_resumes_when_the_option_is_at_its_default(tmp_path):
    """Options added since a run was made (absent from its config.yaml) at their default
    keep the run's behaviour; set to anything else they change the run and are refused."""
    from gmvae.errors import ConfigError
    from gmvae.runs.directory import prepare_resume
    from gmvae.training.module import GMVAEModule

    old = "model:\n  lr: 0.001\n  loss:\n    knn_k: 5\n"
    new = "model:\n  lr: 0.001\n  fast_kernels: true\n  loss:\n    knn_k: 5\n    reconstruction_reduction: {}\n"
    defaults = GMVAEModule.option_defaults("model.")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(old)
    assert prepare_resume(run, new.format("sum"), defaults) is None
    with pytest.raises(ConfigError, match="reconstruction_reduction: None -> 'mean'"):
        prepare_resume(run, new.format("mean"), defaults)
    with pytest.raises(ConfigError, match="reconstruction_reduction"):
        prepare_resume(run, new.format("sum"))  # without the defaults every new key counts
    # the data module's options too: a run older than labeled_draw resumes at "balanced"
    from gmvae.training.datamodule import GMVAEDataModule

    defaults |= GMVAEDataModule.option_defaults("data.")
    (run / "config.yaml").write_text(old + "data:\n  num_labeled: 100\n")
    newer = new.format("sum") + "data:\n  num_labeled: 100\n  labeled_draw: {}\n"
    assert prepare_resume(run, newer.format("balanced"), defaults) is None
    (run / "config.yaml").write_text(old + "data:\n  num_labeled: 100\n")
    with pytest.raises(ConfigError, match="labeled_draw: None -> 'random'"):
        prepare_resume(run, newer.format("random"), defaults)


def test_a_checkpoint_older_than_an_option_loads_for_a_resume(tmp_path):
    """A checkpoint's saved options lacking a newer one compare as that option's default."""
    from lightning.pytorch.trainer.states import TrainerFn

    from gmvae.errors import ConfigError
    from gmvae.training.module import GMVAEModule

    from ..conftest import TINY_NETWORK, bare_trainer

    module = GMVAEModule((1, 8, 8), 10, network=TINY_NETWORK)
    trainer = bare_trainer(tmp_path)
    trainer.state.fn = TrainerFn.FITTING
    module.trainer = trainer
    saved = {k: v for k, v in module.hparams.items() if k != "fast_kernels"}
    saved["loss"] = {k: v for k, v in saved["loss"].items() if k != "reconstruction_reduction"}
    module.on_load_checkpoint({"hyper_parameters": saved})  # no error
    saved["loss"]["knn_k"] = 3
    with pytest.raises(ConfigError, match="other model options"):
        module.on_load_checkpoint({"hyper_parameters": saved})


def test_saving_last_ckpt_logs_no_weights_only_default(tmp_path, caplog):
    """Lightning logs "`weights_only` was not set, defaulting to `False`" for a save that
    does not say; the per-epoch save of last.ckpt says, so a user's log does not suggest
    that checkpoints get unpickled."""
    caplog.set_level(logging.INFO)
    main(
        ["fit", "--config", DEMO, "--trainer.max_epochs", "2", "--threads", "1",
         "--trainer.default_root_dir", str(tmp_path / "run"), *QUIET]
    )  # fmt: skip
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    assert "weights_only" not in caplog.text
