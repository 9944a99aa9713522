"""Judge generated images with a classifier that is not the model: the share of each
category's samples z ~ p(z|y) that a plain CNN, trained on the full labeled training set,
labels as the asked class.

    python bench/generation_judge.py runs/m100/model.safetensors --data-dir DATA
    python bench/generation_judge.py runs/cluster/model.safetensors --clusters

The judge is a small LeNet-style CNN trained once on all labeled training images (its
test accuracy is printed) and cached as safetensors beside the run, so that later calls
reuse it. For a semi-supervised model, category c was trained to be class c: the figure
is the share of its samples judged as c. For a clustering model (``--clusters``) the
categories carry no class: each row's majority label, its purity and the number of
distinct majority labels are printed instead.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from gmvae.data.arrays import to_float
from gmvae.data.registry import load_split
from gmvae.io.model_file import load_model


class JudgeCNN(nn.Module):
    """Two conv blocks and two linear layers: about 99 % on the MNIST test set."""

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__()
        channels, height, width = image_shape
        self.net = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * (height // 4) * (width // 4), 128),
            nn.ReLU(),
            nn.Dropout(0.25),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@torch.inference_mode()
def predict(judge: JudgeCNN, images: torch.Tensor, batch_size: int = 1000) -> np.ndarray:
    """Predicted classes of float images (N, C, H, W) in [0, 1]."""
    judge.eval()
    return torch.cat([judge(b).argmax(1) for b in images.split(batch_size)]).numpy()


def train_judge(
    dataset: str, data_dir: str | None, *, epochs: int = 3, min_steps: int = 1500, seed: int = 0
) -> tuple[JudgeCNN, float]:
    """Train on the full official training split; return the judge and its test accuracy.

    ``epochs`` passes over the data, or more where that is under ``min_steps`` steps: three
    epochs of the 1,198 8x8 digits are 30 steps, which left the judge at 70 % accuracy.
    """
    torch.manual_seed(seed)
    train, test = (load_split(dataset, s, data_dir=data_dir) for s in ("train", "test"))
    judge = JudgeCNN(train.image_shape, int(train.labels.max()) + 1)
    optimizer = torch.optim.Adam(judge.parameters(), lr=1e-3)
    images = to_float(train.images)
    epochs = max(epochs, math.ceil(min_steps / math.ceil(len(images) / 128)))
    for epoch in range(epochs):
        judge.train()
        order = torch.randperm(len(images))
        for batch in order.split(128):
            loss = nn.functional.cross_entropy(judge(images[batch]), train.labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if epoch + 1 == epochs or epochs <= 10:
            accuracy = float((predict(judge, to_float(test.images)) == test.labels.numpy()).mean())
            print(f"judge epoch {epoch + 1}: test accuracy {100 * accuracy:.2f} %", flush=True)
    return judge, accuracy


def load_or_train_judge(
    dataset: str, data_dir: str | None, cache: Path, image_shape: tuple[int, int, int], classes: int
) -> JudgeCNN:
    """The cached judge (safetensors: nothing is unpickled), trained first if absent."""
    if cache.is_file():
        judge = JudgeCNN(image_shape, classes)
        judge.load_state_dict(load_file(cache))
        test = load_split(dataset, "test", data_dir=data_dir)
        accuracy = (predict(judge, to_float(test.images)) == test.labels.numpy()).mean()
        print(f"judge {cache}: test accuracy {100 * accuracy:.2f} %")
        return judge
    judge, _ = train_judge(dataset, data_dir)
    cache.parent.mkdir(parents=True, exist_ok=True)
    save_file(judge.state_dict(), str(cache))
    return judge


def judged_samples(model, judge: JudgeCNN, per_class: int, seed: int = 0) -> np.ndarray:
    """(categories, per_class) judged labels of samples z ~ p(z|y = category), decoded."""
    generator = torch.Generator().manual_seed(seed)
    model.eval()
    rows = [model.sample(c, per_class, generator=generator) for c in range(model.num_classes)]
    return np.stack([predict(judge, row.float()) for row in rows])


def report(labels: np.ndarray, clusters: bool) -> None:
    """Print per-category figures and the summary line."""
    categories = labels.shape[0]
    if not clusters:
        shares = (labels == np.arange(categories)[:, None]).mean(1)
        for c, share in enumerate(shares):
            print(f"category {c}: {100 * share:.1f} % judged as {c}")
        print(
            f"judged as the asked class: {100 * shares.mean():.1f} % (worst category "
            f"{int(shares.argmin())}: {100 * shares.min():.1f} %)"
        )
        return
    majorities, purities = [], []
    for c in range(categories):
        counts = np.bincount(labels[c], minlength=categories)
        majorities.append(int(counts.argmax()))
        purities.append(counts.max() / labels.shape[1])
        print(f"category {c}: majority label {majorities[-1]}, purity {100 * purities[-1]:.1f} %")
    print(
        f"distinct majority labels: {len(set(majorities))} of {categories}; "
        f"mean purity {100 * np.mean(purities):.1f} %"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a run's model.safetensors")
    parser.add_argument("--dataset", default="mnist", help="the judge's training data")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--clusters", action="store_true", help="categories are unlabeled")
    parser.add_argument(
        "--judge",
        type=Path,
        default=None,
        help="cached judge weights (default: bench-judge-DATASET.safetensors "
        "in the folder of the model)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    model, _ = load_model(args.model)
    cache = args.judge or args.model.parent / f"bench-judge-{args.dataset}.safetensors"
    judge = load_or_train_judge(
        args.dataset, args.data_dir, cache, model.image_shape, model.num_classes
    )
    report(judged_samples(model, judge, args.per_class, args.seed), args.clusters)
    return 0


if __name__ == "__main__":
    sys.exit(main())
