"""Stop at the first NaN or Inf loss, say which term and step, and keep the last good checkpoint.

Reading a value back from an accelerator waits for all the work queued before it,
so checking the loss with ``.item()`` after every step would stall a GPU pipeline.
Instead every step records, on the device and without a synchronisation, the first
step whose loss terms were not finite (a few tiny kernels). That record is read
back (one synchronisation) every ``check_every_n_steps`` steps, at the end of every
epoch and, crucially, before every checkpoint is written: a checkpoint is refused
if a loss has been non-finite or any weight is. So the report always names the step
where the problem first appeared, at most ``check_every_n_steps`` steps are wasted,
and the newest checkpoint on disk is always a good one. On the CPU a read-back
costs nothing and the check runs every step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from gmvae.errors import TrainingError

_KIND = {1: "NaN", 2: "Inf"}


class NonFiniteLossGuard(L.Callback):
    """Raises :class:`TrainingError` once a loss term is NaN or Inf (see the module doc).

    It reads the per-term losses from ``outputs["terms"]`` of ``training_step``
    (falling back to the total loss ``outputs["loss"]``).

    Args:
        check_every_n_steps: how often to read the record back; None: every step on the
            CPU, every 50 steps on an accelerator.
    """

    def __init__(self, check_every_n_steps: int | None = None) -> None:
        if check_every_n_steps is not None and check_every_n_steps < 1:
            raise ValueError(f"check_every_n_steps={check_every_n_steps} must be >= 1")
        self.check_every_n_steps = check_every_n_steps
        self._names: list[str] = []
        self._first_bad: list[torch.Tensor] = []  # 0-d [global step, epoch, batch]; -1: none yet
        self._kinds: torch.Tensor | None = None  # (terms,) 0 finite, 1 NaN, 2 Inf at that step
        self._step_at_start = 0

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._step_at_start = trainer.global_step

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        terms = _terms(outputs)
        if not terms:
            return
        values = torch.stack([v.detach().float().reshape(()) for v in terms.values()])
        kinds = values.isnan().to(torch.int8) + 2 * values.isinf().to(torch.int8)  # (T,)
        if not self._first_bad or list(terms) != self._names:
            self._names = list(terms)
            none = torch.tensor(-1, dtype=torch.long, device=values.device)
            self._first_bad = [none, none, none]
            self._kinds = torch.zeros_like(kinds)
        assert self._kinds is not None
        new = (kinds > 0).any() & (self._first_bad[0] < 0)  # a 0-d bool tensor: no sync
        at = (self._step_at_start, trainer.current_epoch, batch_idx)  # Python ints: no copy
        self._first_bad = [torch.where(new, i, t) for i, t in zip(at, self._first_bad, strict=True)]
        self._kinds = torch.where(new, kinds, self._kinds)
        every = self.check_every_n_steps or (1 if values.device.type == "cpu" else 50)
        if (batch_idx + 1) % every == 0:
            self.check(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check(trainer)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self.check(trainer)
        state = checkpoint.get("state_dict", {})
        floats = [t for t in state.values() if torch.is_tensor(t) and t.is_floating_point()]
        if floats and not torch.stack([t.isfinite().all() for t in floats]).all():
            bad = [
                k
                for k, t in state.items()
                if torch.is_tensor(t) and t.is_floating_point() and not t.isfinite().all()
            ]
            raise TrainingError(
                f"training stopped at global step {trainer.global_step}: the weights hold NaN or Inf "
                f"values ({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}) although every "
                f"loss was finite (an overflow in the gradients?); the checkpoint was not saved. "
                f"{_last_good(trainer)}"
            )

    def check(self, trainer: L.Trainer) -> None:
        """Raise :class:`TrainingError` if a non-finite loss has been recorded (one sync).

        Under DDP the decision is shared, so that every process stops at the same
        step instead of the others waiting for the one that stopped.
        """
        step, epoch, batch = torch.stack(self._first_bad).tolist() if self._first_bad else (-1,) * 3
        if not trainer.strategy.reduce_boolean_decision(step >= 0, all=False):
            return
        if step < 0:
            raise TrainingError(
                "training stopped: another process met a NaN or Inf loss (see its message)"
            )
        assert self._kinds is not None
        kinds = dict(zip(self._names, self._kinds.tolist(), strict=True))
        bad = [f"{n}={_KIND[k]}" for n, k in kinds.items() if k and n != "total"]
        bad = bad or [f"{n}={_KIND[k]}" for n, k in kinds.items() if k]
        raise TrainingError(
            f"training stopped: the loss is not finite ({', '.join(bad)}) at global step {step} "
            f"(epoch {epoch}, batch {batch}); no checkpoint was saved after it. "
            f"{_last_good(trainer)} A new run with a lower --model.lr or a milder "
            "temperature schedule may avoid it."
        )


def _terms(outputs: Any) -> Mapping[str, torch.Tensor]:
    if isinstance(outputs, Mapping):
        terms = outputs.get("terms")
        if isinstance(terms, Mapping) and terms:
            return terms
        loss = outputs.get("loss")
        return {"total": loss} if torch.is_tensor(loss) else {}
    return {"total": outputs} if torch.is_tensor(outputs) else {}


def _last_good(trainer: L.Trainer) -> str:
    paths = [
        p
        for cb in trainer.checkpoint_callbacks
        if isinstance(cb, ModelCheckpoint)
        for p in (cb.last_model_path, cb.best_model_path)
        if p
    ]
    if not paths:
        return "No checkpoint had been saved yet."
    return f"The last good checkpoint is kept: {paths[0]}."
