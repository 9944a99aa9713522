"""Score every checkpoint of one or more runs on the test set, to see where training
converges and what goes wrong on the way, without retraining.

    python bench/score_checkpoints.py runs/m100 --data-dir DATA [--judge runs/judge.safetensors]
    python bench/score_checkpoints.py runs/cluster --data-dir DATA --clusters

One row per checkpoint of ``RUN/checkpoints`` (``gmvae fit --checkpoint.save_top_k -1``
keeps one per epoch): the test error of argmax q(y|x) (or, with ``--clusters``, the
clustering accuracy and NMI after the best cluster-to-class matching), the three most
frequent confusions, what z carries (the mean KL(q(z|x,y) || p(z|y)) in nats and the
number of active latent dimensions: posterior means whose variance over the test set
exceeds 0.01), the mean top probability of q(y|x), and with ``--judge`` the share of
generated images a separate classifier labels as the asked class
(``bench/generation_judge.py``). The weights scored are those the checkpoint evaluates
(the weight average, when the run keeps one).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generation_judge import judged_samples, load_or_train_judge  # noqa: E402

from gmvae.data.arrays import to_float  # noqa: E402
from gmvae.data.registry import load_split  # noqa: E402
from gmvae.io.model_file import load_model  # noqa: E402
from gmvae.training.clustering import best_cluster_mapping, normalized_mutual_info  # noqa: E402


def _epoch(path: Path) -> tuple[int, str]:
    found = re.search(r"epoch(\d+)", path.name)
    return (int(found.group(1)) if found else 10**6, path.name)


@torch.inference_mode()
def posterior(model, images: torch.Tensor, batch_size: int = 1000) -> dict[str, np.ndarray]:
    """Per test image: q(y|x) probabilities, the z posterior mean and KL(q(z|x,y) || p(z|y))."""
    probs, means, kls = [], [], []
    for batch in images.split(batch_size):
        out = model(batch)
        var_ratio = out.z_var / out.prior_var
        kl = 0.5 * (
            var_ratio + (out.z_mean - out.prior_mean) ** 2 / out.prior_var - 1 - var_ratio.log()
        ).sum(1)
        probs.append(out.y.float())
        means.append(out.z_mean.float())
        kls.append(kl.float())
    return {k: torch.cat(v).numpy() for k, v in (("y", probs), ("z", means), ("kl", kls))}


def confusions(labels: np.ndarray, predicted: np.ndarray, top: int = 3) -> str:
    """The ``top`` most frequent (true -> predicted) errors, as ``7->9 (119)``."""
    wrong = labels != predicted
    pairs, counts = np.unique(
        np.stack([labels[wrong], predicted[wrong]]), axis=1, return_counts=True
    )
    order = np.argsort(-counts)[:top]
    return " ".join(f"{pairs[0, i]}->{pairs[1, i]} ({counts[i]})" for i in order) or "-"


def score(checkpoint: Path, images: torch.Tensor, labels: np.ndarray, args, judge) -> str:
    model, _ = load_model(checkpoint)
    post = posterior(model, images)
    clusters = post["y"].argmax(1)
    if args.clusters:
        mapping = best_cluster_mapping(labels, clusters)
        predicted = np.array([mapping.get(int(c), -1) for c in clusters])
        head = (
            f"ACC {100 * (predicted == labels).mean():6.2f}  "
            f"NMI {100 * normalized_mutual_info(labels, clusters):6.2f}"
        )
    else:
        predicted = clusters
        head = f"error {100 * (predicted != labels).mean():5.2f} %"
    active = int((post["z"].var(0) > 0.01).sum())
    row = (
        f"{checkpoint.name:24s} {head}  KL(z) {post['kl'].mean():6.2f}  active {active:3d}  "
        f"top p {post['y'].max(1).mean():.2f}  {confusions(labels, predicted)}"
    )
    if judge is not None:
        judged = judged_samples(model, judge, args.per_class)
        if args.clusters:
            majority = [np.bincount(r, minlength=model.num_classes).argmax() for r in judged]
            row += f"  judge: {len(set(majority))} distinct majorities"
        else:
            shares = (judged == np.arange(model.num_classes)[:, None]).mean(1)
            row += f"  judged {100 * shares.mean():.1f} % (worst {100 * shares.min():.1f} %)"
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories of gmvae fit")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--clusters", action="store_true", help="clustering runs: ACC and NMI")
    parser.add_argument("--judge", type=Path, default=None, help="judge cache (safetensors)")
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--last", type=int, default=0, help="only the newest N checkpoints")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    test = load_split(args.dataset, "test", data_dir=args.data_dir)
    images, labels = to_float(test.images), test.labels.numpy()
    judge = None
    if args.judge is not None:
        judge = load_or_train_judge(
            args.dataset, args.data_dir, args.judge, test.image_shape, int(labels.max()) + 1
        )
    for run in args.runs:
        checkpoints = sorted(
            (p for p in (run / "checkpoints").glob("*.ckpt") if p.name != "last.ckpt"), key=_epoch
        )
        if not checkpoints:
            print(f"{run}: no checkpoints", file=sys.stderr)
            return 1
        print(f"== {run}")
        for checkpoint in checkpoints[-args.last :] if args.last else checkpoints:
            print(score(checkpoint, images, labels, args, judge), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
