"""``model.ema_decay``: validation, selection, testing and the exported model all use the
exponential moving average of the weights, and a checkpoint keeps the trained ones too."""

from __future__ import annotations

import json

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from safetensors.torch import load_file

from gmvae.cli.app import main
from gmvae.errors import ConfigError
from gmvae.io.checkpoint import load_checkpoint_safely
from gmvae.training.averaging import EvaluationEMA, warmed_up_decay
from gmvae.training.datamodule import GMVAEDataModule
from gmvae.training.module import GMVAEModule
from gmvae.training.selection import BestWeights

from ..conftest import DEMO, QUIET, TINY_NETWORK, bare_trainer

DECAY = 0.9


def _digits() -> GMVAEDataModule:
    return GMVAEDataModule(
        "digits", num_labeled=50, unlabeled_batch_size=64, labeled_batch_size=50, seed=0
    )


def _module(**options) -> GMVAEModule:
    return GMVAEModule((1, 8, 8), 10, network=TINY_NETWORK, loss={"knn_k": 3}, **options)


def _averaged_keys(module: GMVAEModule) -> list[str]:
    """The entries WeightAveraging averages: parameters and buffers (not metric states)."""
    names = [n for n, _ in module.named_parameters()] + [n for n, _ in module.named_buffers()]
    return [n for n in names if n.startswith("model.")]


class _Snapshots(L.Callback):
    """The trained weights after every step; the weights each validation ran with."""

    def __init__(self) -> None:
        self.steps: list[dict[str, torch.Tensor]] = []
        self.validated: list[dict[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        self.steps.append({k: v.detach().clone() for k, v in pl_module.state_dict().items()})

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, *args) -> None:
        if batch_idx == 0 and not trainer.sanity_checking:
            state = pl_module.state_dict()
            self.validated.append({k: v.detach().clone() for k, v in state.items()})


def _expected_average(steps: list[dict[str, torch.Tensor]], keys: list[str]) -> dict:
    """The warmed-up EMA recurrence, written out: a_1 = w_1, a_n+1 = d_n a_n + (1 - d_n) w_n+1."""
    average = {k: steps[0][k].double() for k in keys}
    for n, state in enumerate(steps[1:], start=1):
        decay = warmed_up_decay(DECAY, n)
        for k in keys:
            if state[k].is_floating_point():
                average[k] = decay * average[k] + (1 - decay) * state[k].double()
            else:
                average[k] = state[k].double()
    return average


def test_the_decay_warms_up_to_its_value():
    assert warmed_up_decay(0.99, 0) == pytest.approx(0.1)
    assert warmed_up_decay(0.99, 90) == pytest.approx(0.91)
    assert warmed_up_decay(0.99, 10_000) == 0.99


@pytest.mark.parametrize("decay", [-0.1, 1.0, 1.5, float("nan")])
def test_a_decay_outside_its_range_is_refused(decay):
    with pytest.raises(ConfigError, match="ema_decay"):
        _module(ema_decay=decay)


def test_no_average_unless_asked():
    assert _module().configure_callbacks() == []
    (callback,) = _module(ema_decay=DECAY).configure_callbacks()
    assert isinstance(callback, EvaluationEMA) and callback.decay == DECAY


def test_training_ends_holding_the_average_of_every_step(tmp_path):
    L.seed_everything(0)
    module = _module(ema_decay=DECAY)
    snapshots = _Snapshots()
    bare_trainer(tmp_path, max_epochs=2, limit_train_batches=5, callbacks=[snapshots]).fit(
        module, datamodule=_digits()
    )
    keys = _averaged_keys(module)
    expected = _expected_average(snapshots.steps, keys)
    final = module.state_dict()
    assert len(snapshots.steps) == 10
    for k in keys:
        torch.testing.assert_close(final[k].double(), expected[k], rtol=1e-5, atol=1e-6)
    # ... and not the trained weights
    assert any(not torch.equal(final[k], snapshots.steps[-1][k]) for k in keys)


def test_validation_selection_and_checkpoints_use_the_average(tmp_path):
    """Here the callback is given to the Trainer by hand, as a user of the module may."""
    L.seed_everything(0)
    module = _module()
    snapshots, selector = _Snapshots(), BestWeights()
    best = ModelCheckpoint(tmp_path / "ckpt", monitor="val/accuracy", mode="max", save_last=True)
    trainer = bare_trainer(
        tmp_path,
        max_epochs=3,
        limit_train_batches=5,
        limit_val_batches=None,
        num_sanity_val_steps=0,
        enable_checkpointing=True,
        callbacks=[snapshots, selector, best, EvaluationEMA(DECAY)],
    )
    data = _digits()
    trainer.fit(module, datamodule=data)
    keys = _averaged_keys(module)
    # What each validation ran with is the average of the steps before it.
    for epoch, validated in enumerate(snapshots.validated):
        expected = _expected_average(snapshots.steps[: 5 * (epoch + 1)], keys)
        for k in keys:
            torch.testing.assert_close(validated[k].double(), expected[k], rtol=1e-5, atol=1e-6)
    # In-memory selection keeps the validated weights, not the trained ones.
    kept = snapshots.validated[selector.best_epoch]
    for k in keys:
        torch.testing.assert_close(selector.state[k], kept[k])
    # The best checkpoint: the average as its state_dict, the trained weights beside it.
    checkpoint = load_checkpoint_safely(best.best_model_path)
    epoch = checkpoint["epoch"]
    trained = snapshots.steps[5 * (epoch + 1) - 1]
    for k in keys:
        torch.testing.assert_close(checkpoint["state_dict"][k], snapshots.validated[epoch][k])
        torch.testing.assert_close(checkpoint["current_model_state"][k], trained[k])
    # A checkpoint written after training ended (the module took the average; gmvae
    # fit's autosave writes last.ckpt then) still has both, the right way round.
    trainer.save_checkpoint(tmp_path / "after.ckpt")
    last = load_checkpoint_safely(tmp_path / "after.ckpt")
    for k in keys:
        torch.testing.assert_close(last["state_dict"][k], module.state_dict()[k])
        torch.testing.assert_close(last["current_model_state"][k], snapshots.steps[-1][k])
    # Testing the best checkpoint with the same Trainer tests the average it holds.
    trainer.test(module, datamodule=data, ckpt_path=best.best_model_path, verbose=False)
    for k in keys:
        torch.testing.assert_close(module.state_dict()[k], checkpoint["state_dict"][k])


def test_a_stop_mid_epoch_saves_the_trained_weights_for_a_resume(tmp_path):
    """A run stopped mid-epoch (max_steps, max_time) writes last.ckpt after the module took
    the average: the trained side holds the last step's weights and the module's other
    state, key for key."""
    L.seed_everything(0)
    module = _module(ema_decay=DECAY)
    snapshots = _Snapshots()
    trainer = bare_trainer(tmp_path, max_steps=7, limit_train_batches=5, callbacks=[snapshots])
    trainer.fit(module, datamodule=_digits())
    trainer.save_checkpoint(tmp_path / "stopped.ckpt")
    checkpoint = load_checkpoint_safely(tmp_path / "stopped.ckpt")
    trained = checkpoint["current_model_state"]
    assert trained.keys() == checkpoint["state_dict"].keys()
    for k in _averaged_keys(module):
        torch.testing.assert_close(trained[k], snapshots.steps[-1][k])
    for k in [k for k in trained if k.startswith("train_means.")]:
        torch.testing.assert_close(trained[k], module.state_dict()[k])


@pytest.mark.slow
def test_gmvae_fit_tests_and_exports_the_averaged_weights(tmp_path):
    run = tmp_path / "run"
    main(
        [
            "fit",
            "--config",
            DEMO,
            "--trainer.max_epochs",
            "3",
            "--model.ema_decay",
            str(DECAY),
            "--trainer.default_root_dir",
            str(run),
            *QUIET,
        ]
    )
    metrics = json.loads((run / "metrics.json").read_text())
    checkpoint = load_checkpoint_safely(metrics["best_checkpoint"])
    exported = load_file(run / "model.safetensors")
    assert exported
    for name, value in exported.items():
        torch.testing.assert_close(value, checkpoint["state_dict"][f"model.{name}"])
    trained = checkpoint["current_model_state"]
    assert any(not torch.equal(v, trained[f"model.{k}"]) for k, v in exported.items())
