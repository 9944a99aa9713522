"""Model selection in memory: keep the weights of the best validation epoch, and every epoch's metrics."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from gmvae.training.averaging import EvaluationEMA


class BestWeights(Callback):
    """Keeps a CPU copy of the weights with the best validation score, and ``history``.

    The score is (``val/accuracy``, -``val/loss``) compared in that order: with the handful
    of labeled validation rows typical of user data, accuracies tie often, and the
    label-free validation loss breaks the tie (ModelCheckpoint keeps the first of equals).
    Without labeled validation rows (``use_accuracy=False``, clustering) only the loss counts.
    With :class:`EvaluationEMA` the copy is of the averaged weights: the ones validated.
    """

    def __init__(self, *, use_accuracy: bool = True) -> None:
        self.use_accuracy = use_accuracy
        self.state: dict[str, torch.Tensor] | None = None
        self.best_score: tuple[float, ...] | None = None
        self.best_epoch: int | None = None
        self.history: list[dict[str, float]] = []

    def _row(self, epoch: int) -> dict[str, float]:
        if not self.history or self.history[-1]["epoch"] != epoch:
            self.history.append({"epoch": epoch})
        return self.history[-1]

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        self._row(trainer.current_epoch).update(metrics)
        if "val/loss" not in metrics:
            return
        loss = -metrics["val/loss"]
        score = (metrics.get("val/accuracy", 0.0), loss) if self.use_accuracy else (loss,)
        if self.best_score is None or score > self.best_score:
            self.best_score, self.best_epoch = score, trainer.current_epoch
            state = _evaluated_state_dict(trainer, pl_module)
            self.state = {k: v.detach().cpu().clone() for k, v in state.items()}

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = {
            k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")
        }
        self._row(trainer.current_epoch).update(metrics)


def _evaluated_state_dict(trainer: L.Trainer, pl_module: L.LightningModule) -> dict:
    """The weights the validation just scored (the EMA swaps its average back out before
    ``on_validation_end``)."""
    for callback in trainer.callbacks:
        if isinstance(callback, EvaluationEMA):
            return callback.evaluated_state_dict(pl_module)
    return pl_module.state_dict()
