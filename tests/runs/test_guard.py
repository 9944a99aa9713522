"""The numerical guard: a NaN loss stops training, names the term and the step, and the
last good checkpoint stays the newest one on disk."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from gmvae.cli.app import main
from gmvae.errors import TrainingError
from gmvae.io.checkpoint import load_checkpoint_safely
from gmvae.runs.guard import NonFiniteLossGuard

from ..conftest import DEMO, QUIET


@pytest.mark.slow
def test_a_diverging_run_stops_with_the_term_and_step_and_keeps_the_last_good_checkpoint(
    tmp_path, capsys
):
    """A real divergence: the Gumbel temperature decays towards 1e-40, so that within the
    second epoch logits / temperature overflow float32 and the loss becomes NaN."""
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main(
            ["fit", "--config", DEMO, "--trainer.max_epochs", "3"]
            + ["--model.temperature.end", "1e-40", "--model.temperature.epochs", "2"]
            + ["--trainer.default_root_dir", str(run), *QUIET]
        )
    assert exc.value.code == 2
    err = capsys.readouterr().err
    line = err[err.index("gmvae: error:") :]
    assert "training stopped: the loss is not finite" in line
    assert "reconstruction=NaN" in line and "global step" in line and "epoch 1" in line
    assert str(run / "checkpoints" / "last.ckpt") in line
    assert not (run / "metrics.json").exists()

    last = load_checkpoint_safely(run / "checkpoints" / "last.ckpt")
    step = int(line.split("global step ")[1].split()[0])
    assert last["global_step"] <= step  # saved before the bad step, never after
    assert all(t.isfinite().all() for t in last["state_dict"].values() if t.is_floating_point())


def test_a_checkpoint_of_non_finite_weights_is_never_written(tmp_path):
    guard = NonFiniteLossGuard()
    trainer = L.Trainer(default_root_dir=tmp_path, logger=False, enable_progress_bar=False)
    good = {"state_dict": {"w": torch.ones(3)}}
    guard.on_save_checkpoint(trainer, None, good)  # finite: allowed
    bad = {"state_dict": {"w": torch.tensor([1.0, float("inf")]), "b": torch.zeros(2)}}
    with pytest.raises(TrainingError, match=r"weights hold NaN or Inf values \(w\)"):
        guard.on_save_checkpoint(trainer, None, bad)


def test_the_first_bad_step_is_reported_even_when_checked_later(tmp_path):
    """With checks every 100 steps the record still names the step where the NaN appeared."""
    guard = NonFiniteLossGuard(check_every_n_steps=100)
    trainer = L.Trainer(default_root_dir=tmp_path, logger=False, enable_progress_bar=False)
    for step, value in enumerate([1.0, 2.0, float("nan"), float("inf"), 3.0]):  # no check yet
        guard._step_at_start = step
        terms = {"total": torch.tensor(value), "gaussian": torch.tensor(value)}
        outputs = {"loss": terms["total"], "terms": terms}
        guard.on_train_batch_end(trainer, None, outputs, None, batch_idx=step)
    assert guard._first_bad[0].item() == 2
    with pytest.raises(
        TrainingError, match=r"gaussian=NaN\) at global step 2 \(epoch 0, batch 2\)"
    ):
        guard.check(trainer)
