"""Where a class's labels go: label propagation and the paper's k-NN vote from a seed's
labeled rows over a checkpoint's features, without training.

    python bench/propagation_probe.py RUN/checkpoints/best-epoch000.ckpt --seed 2 --data-dir DATA

A lock-in (docs/RESULTS.md, "Early lock-in") shows in the targets before it shows in the
test error: this scores the targets that training would give the unlabeled rows, for
graphs of several sizes, so that one can see at which checkpoint a class's rows start to
take another's label and whether a larger graph brings them back. The labeled rows are
the config's balanced draw for ``--seed`` (the split and draw of ``gmvae fit``); the
features are x_hat of the checkpoint's training weights, the ones propagation sees.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from gmvae.cli.suggest import _features as encoder_features
from gmvae.data.registry import get_spec, load_split
from gmvae.data.split import balanced_labeled_subset, train_val_split
from gmvae.io.model_file import load_model
from gmvae.losses.assignment import knn_assign
from gmvae.losses.propagation import propagate_labels


def describe(name: str, predicted: np.ndarray, truth: np.ndarray, watched: int) -> str:
    """Accuracy over all rows, the share of ``watched`` rows kept, and where the rest went."""
    rows = truth == watched
    went = np.bincount(predicted[rows][predicted[rows] != watched], minlength=predicted.max() + 1)
    elsewhere = ", ".join(f"{c}: {n}" for c, n in enumerate(went) if n) or "none"
    return (
        f"{name}: {100 * (predicted == truth).mean():5.1f} % right, "
        f"{watched}s kept {100 * (predicted[rows] == watched).mean():5.1f} % (others to {elsewhere})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a .ckpt or model.safetensors of a gmvae fit run")
    parser.add_argument("--seed", type=int, required=True, help="the run's --seed_everything")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--num-labeled", type=int, default=100)
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 15000])
    parser.add_argument("--watch", type=int, default=7, help="the class to follow")
    parser.add_argument("--knn-k", type=int, default=5, help="k of the paper's vote")
    args = parser.parse_args(argv)

    classes = get_spec(args.dataset).num_classes
    full = load_split(args.dataset, "train", data_dir=args.data_dir)
    train, _ = train_val_split(full.labels.numpy(), args.val_fraction, args.seed)
    truth = full.labels.numpy()[train]
    labeled = balanced_labeled_subset(truth, args.num_labeled, classes, args.seed)
    model, _ = load_model(args.checkpoint)
    feats = torch.from_numpy(encoder_features(model, full.images[train]))
    known = torch.as_tensor(truth[labeled])
    unlabeled = np.setdiff1d(np.arange(len(train)), labeled)
    rng = np.random.default_rng(0)
    print(f"{args.checkpoint}, seed {args.seed}, {len(labeled)} labels")
    for size in args.sizes:
        pick = rng.choice(unlabeled, min(size, len(unlabeled)), replace=False)
        nodes = torch.cat([feats[labeled], feats[pick]])
        node_labels = torch.cat([known, known.new_full((len(pick),), -1)])
        propagated = propagate_labels(nodes, node_labels, classes)[len(labeled) :].numpy()
        voted = knn_assign(feats[pick], feats[labeled], known, k=args.knn_k, num_classes=classes)
        print(
            f"  {len(pick):6d} rows  "
            + describe("propagation", propagated, truth[pick], args.watch)
        )
        print(
            f"  {'':6s}       "
            + describe(f"{args.knn_k}-NN vote", voted.numpy(), truth[pick], args.watch)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
