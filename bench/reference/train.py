"""The author's training loop (``SSVAE.train`` / ``evaluate_dataset``) with run.sh's MNIST settings.

Every step takes 100 unlabeled rows from a stream over all 60,000 training images
(reshuffled every pass, as ``dataset.shuffle(n).repeat().batch(100)``; the labeled
images are in it too) and appends the 100 labeled images, 10 per class drawn once by
the seed. An epoch is 600 steps; after each, the Gumbel temperature becomes
``max(exp(-0.00693 * epochs), 0.5)``, and the learning rate (Adam, 1e-2) halves at
the start of every 30th epoch. The author validates on the test set after every epoch
(``train_proportion 1.0``); the benchmark evaluates the test set on its own schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from gmvae.data.registry import load_split
from reference.losses import AuthorLosses, AuthorWeights, author_losses
from reference.network import AuthorNetwork


@dataclass(frozen=True)
class AuthorSettings:
    """``run.sh mnist`` and main.py's defaults for the flags it does not set."""

    unlabeled_batch: int = 100  # batch_size 200 - num_labeled_batch 100
    num_labeled: int = 100
    learning_rate: float = 1e-2
    decay_epoch: int = 30
    lr_decay: float = 0.5
    temperature: float = 1.0
    min_temperature: float = 0.5
    decay_temp_rate: float = 0.00693
    feature_size: int = 200
    gaussian_size: int = 150
    weights: AuthorWeights = field(default_factory=AuthorWeights)


class TFAdam(torch.optim.Adam):
    """Adam with TensorFlow 1's epsilon: ``lr_t * m / (sqrt(v) + eps)``, ``lr_t`` bias-corrected.

    PyTorch adds eps to the bias-corrected sqrt(v) instead; dividing eps by
    ``sqrt(1 - beta2^t)`` before each step makes the two updates the same.
    """

    def __init__(self, params, lr: float, eps: float = 1e-8) -> None:
        super().__init__(params, lr=lr, eps=eps, foreach=False)
        self.tf_eps, self.steps = eps, 0

    def step(self, closure=None):  # type: ignore[override]
        self.steps += 1
        for group in self.param_groups:
            group["eps"] = self.tf_eps / math.sqrt(1 - group["betas"][1] ** self.steps)
        return super().step(closure)


def flat_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 1, 28, 28) -> float32 (N, 784) / 255, as main.py."""
    return images.reshape(len(images), -1).float() / 255.0


def balanced_labeled(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``per_class`` random images of each class, class by class (the author's order)."""
    classes = np.unique(labels)
    return np.concatenate(
        [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in classes]
    )


class AuthorTrainer:
    """Trains :class:`AuthorNetwork` step by step; ``seed`` fixes the labeled images and draws."""

    def __init__(
        self,
        train_images: torch.Tensor,
        train_labels: torch.Tensor,
        seed: int,
        settings: AuthorSettings | None = None,
    ) -> None:
        self.settings = settings or AuthorSettings()
        s = self.settings
        self.rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        self.images = flat_float(train_images)  # (60000, 784)
        num_classes = int(train_labels.max()) + 1
        labeled = balanced_labeled(train_labels.numpy(), s.num_labeled // num_classes, self.rng)
        self.labeled_x = self.images[labeled]
        self.labeled_y = train_labels[labeled].clone()
        self.network = AuthorNetwork(num_classes, s.feature_size, s.gaussian_size)
        self.optimizer = TFAdam(self.network.parameters(), lr=s.learning_rate)
        self.steps_per_epoch = math.ceil(len(self.images) / s.unlabeled_batch)
        self.step_count = 0
        self._order = np.empty(0, dtype=np.int64)

    @property
    def epoch(self) -> int:
        return self.step_count // self.steps_per_epoch

    def temperature(self) -> float:
        s = self.settings
        return max(s.temperature * math.exp(-s.decay_temp_rate * self.epoch), s.min_temperature)

    def learning_rate(self) -> float:
        s = self.settings
        return s.learning_rate * s.lr_decay ** ((self.epoch + 1) // s.decay_epoch)

    def _unlabeled_batch(self) -> torch.Tensor:
        n = self.settings.unlabeled_batch
        if len(self._order) < n:  # a new pass over the training set, reshuffled
            self._order = np.concatenate([self._order, self.rng.permutation(len(self.images))])
        idx, self._order = self._order[:n], self._order[n:]
        return self.images[torch.from_numpy(idx)]

    def step(self) -> AuthorLosses:
        """One optimizer step on 100 unlabeled + 100 labeled rows."""
        self.network.train()
        x = torch.cat([self._unlabeled_batch(), self.labeled_x])
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate()
        out = self.network(x, self.temperature())
        losses = author_losses(out, x, self.labeled_y, self.settings.weights)
        self.optimizer.zero_grad(set_to_none=True)
        losses.total.backward()
        self.optimizer.step()
        self.step_count += 1
        return losses

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor, batch: int = 1000) -> float:
        """Accuracy of argmax q(y|x) with batch norm's moving statistics (``SSVAE.test``)."""
        self.network.eval()
        x = flat_float(images)
        right = sum(
            int((self.network.classify(x[i : i + batch]) == labels[i : i + batch]).sum())
            for i in range(0, len(x), batch)
        )
        return right / len(x)


def load_mnist(data_dir: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """MNIST's official train and test splits, uint8 images and int64 labels."""
    train = load_split("mnist", "train", data_dir=data_dir, download=False)
    test = load_split("mnist", "test", data_dir=data_dir, download=False)
    return train.images, train.labels, test.images, test.labels
