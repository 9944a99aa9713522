"""A callback for ``--trainer.callbacks``: fails the run if a training step runs at another count."""

import lightning as L
import torch


class ExpectThreads(L.Callback):
    def __init__(self, count: int) -> None:
        self.count = count

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if torch.get_num_threads() != self.count:
            raise AssertionError(f"{torch.get_num_threads()} threads, expected {self.count}")
