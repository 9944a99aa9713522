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

from gmvae.data.arrays import to_float
from gmvae.data.registry import get_spec, load_split
from gmvae.data.split import balanced_labeled_subset, train_val_split
from gmvae.io.model_file import load_model
from gmvae.losses.assignment import knn_assign
from gmvae.losses.propagation import certainty, propagate_labels, propagation_scores
from gmvae.training.epoch_targets import dataset_features


def describe(name: str, predicted: np.ndarray, truth: np.ndarray, watched: int) -> str:
    """Accuracy over all rows, the share of ``watched`` rows kept, and where the rest went."""
    rows = truth == watched
    went = np.bincount(predicted[rows][predicted[rows] != watched], minlength=predicted.max() + 1)
    elsewhere = ", ".join(f"{c}: {n}" for c, n in enumerate(went) if n) or "none"
    return (
        f"{name}: {100 * (predicted == truth).mean():5.1f} % right, "
        f"{watched}s kept {100 * (predicted[rows] == watched).mean():5.1f} % (others to {elsewhere})"
    )


@torch.inference_mode()
def predictions(model: torch.nn.Module, images: torch.Tensor, batch: int = 1000) -> np.ndarray:
    """argmax q(y|x) of ``images``, the network in eval mode."""
    model.eval()
    return torch.cat(
        [
            model(to_float(images[i : i + batch])).logits.argmax(1)
            for i in range(0, len(images), batch)
        ]
    ).numpy()


def _mean(values: np.ndarray) -> str:
    return f"{values.mean():.3f}" if len(values) else "-"


def whole_set_report(
    predicted: np.ndarray,
    weight: np.ndarray,
    truth: np.ndarray,
    labeled: np.ndarray,
    watched: int,
    locked: np.ndarray | None = None,
) -> list[str]:
    """Lines on the unlabeled rows' targets ``predicted`` and their certainty ``weight``:
    accuracy, per class, by certainty decile, and the ``watched`` rows ``locked`` gets wrong."""
    unlabeled = np.ones(len(truth), bool)
    unlabeled[labeled] = False
    right = predicted == truth
    weighted = (weight * right)[unlabeled].sum() / max(weight[unlabeled].sum(), 1e-12)
    lines = [
        describe("all rows", predicted[unlabeled], truth[unlabeled], watched)
        + f"; weighted by certainty {100 * weighted:5.1f} % right"
    ]
    for c in range(int(truth.max()) + 1):
        rows = unlabeled & (truth == c)
        if not rows.any():
            continue
        wrong = rows & ~right
        went = np.bincount(predicted[wrong], minlength=int(truth.max()) + 1)
        top = f"most to {went.argmax()} ({went.max()})" if wrong.any() else "none wrong"
        lines.append(
            f"  class {c}: {100 * right[rows].mean():5.1f} % right, certainty of the right "
            f"{_mean(weight[rows & right])}, of the wrong {_mean(weight[wrong])}; {top}"
        )
    edges = np.quantile(weight[unlabeled], np.linspace(0, 1, 11))
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        rows = unlabeled & (weight >= low) & (weight <= high)
        lines.append(f"  certainty {low:.3f}-{high:.3f}: {100 * right[rows].mean():5.1f} % right")
    if locked is not None:
        followed = unlabeled & (truth == watched) & (locked != watched)
        kept = unlabeled & (truth == watched) & (locked == watched)
        targets = np.bincount(predicted[followed], minlength=int(truth.max()) + 1)
        lines.append(
            f"  {followed.sum()} {watched}s the locked model gets wrong: targets "
            + ", ".join(f"{c}: {n}" for c, n in enumerate(targets) if n)
            + f"; certainty {_mean(weight[followed])} (the {watched}s it gets right: "
            f"{_mean(weight[kept])}, all rows' median {np.median(weight[unlabeled]):.3f})"
        )
    return lines


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
    parser.add_argument(
        "--all-rows", action="store_true", help="one propagation over every training row"
    )
    parser.add_argument(
        "--locked", default=None, help="with --all-rows: a model whose wrong --watch rows to follow"
    )
    args = parser.parse_args(argv)
    if args.locked and not args.all_rows:
        parser.error("--locked goes with --all-rows")

    classes = get_spec(args.dataset).num_classes
    full = load_split(args.dataset, "train", data_dir=args.data_dir)
    train, _ = train_val_split(full.labels.numpy(), args.val_fraction, args.seed)
    truth = full.labels.numpy()[train]
    labeled = balanced_labeled_subset(truth, args.num_labeled, classes, args.seed)
    model, _ = load_model(args.checkpoint)
    feats = dataset_features(model, full.images[train], device=torch.device("cpu"))
    known = torch.as_tensor(truth[labeled])
    unlabeled = np.setdiff1d(np.arange(len(train)), labeled)
    print(f"{args.checkpoint}, seed {args.seed}, {len(labeled)} labels")
    if args.all_rows:
        locked = None
        if args.locked:
            locked_model, _ = load_model(args.locked)
            locked = predictions(locked_model, full.images[train])
        labels = torch.full((len(train),), -1, dtype=torch.long)
        labels[labeled] = known
        scores = propagation_scores(feats, labels, classes, sparse=True)
        for line in whole_set_report(
            scores.argmax(1).numpy(), certainty(scores).numpy(), truth, labeled,
            args.watch, locked,
        ):  # fmt: skip
            print(line)
        return 0
    rng = np.random.default_rng(0)
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
