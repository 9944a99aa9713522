"""``gmvae embed MODEL --out tsne.png``: a 2-D t-SNE of test-set features, like the paper's Fig. 4.

Embeds x_hat = g(x) of (a seeded random subset of) the official test set with
scikit-learn's Barnes-Hut TSNE, coloured by true class. The points go beside the
PNG as ``.csv`` (``index`` into the test set, ``label``, ``x``, ``y``).
"""

from __future__ import annotations

import argparse
import io

import numpy as np

from gmvae.figures import options
from gmvae.figures.arrays import encoded_features, subsample, tsne_2d
from gmvae.figures.plotting import embedding_scatter
from gmvae.io.model_file import load_model


def _write_csv(f: io.BytesIO, indices: np.ndarray, labels: np.ndarray, points: np.ndarray) -> None:
    lines = ["index,label,x,y"]
    lines += [
        f"{i},{c},{x:.6g},{y:.6g}" for i, c, (x, y) in zip(indices, labels, points, strict=True)
    ]
    f.write(("\n".join(lines) + "\n").encode())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gmvae embed", description=__doc__.split("\n")[0])
    options.add_model_argument(parser)
    options.add_output_arguments(parser, ".csv")
    options.add_data_arguments(parser)
    parser.add_argument(
        "--max-points",
        type=int,
        default=5000,
        help="embed a random subset of this many test images (0: all); t-SNE time grows with it",
    )
    parser.add_argument("--perplexity", type=float, default=30.0, help="t-SNE perplexity")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subset and of t-SNE")
    args = parser.parse_args(argv)
    if args.max_points < 0:
        parser.error(f"--max-points {args.max_points} must be >= 0")
    data_path = options.check_outputs(args.out, ".csv", force=args.force)
    model, card = load_model(args.model)
    images, labels, dataset = options.load_test_set(args, card)
    indices = subsample(len(images), args.max_points or None, seed=args.seed)
    features = encoded_features(model, images[indices])
    points = tsne_2d(features, seed=args.seed, perplexity=args.perplexity)
    chosen = labels[indices].numpy()
    fig = embedding_scatter(
        points,
        chosen,
        card.class_names,
        title=f"t-SNE of the features x_hat of {len(indices)} {dataset} test images",
    )
    options.write_outputs(
        fig, args.out, args.dpi, data_path, lambda f: _write_csv(f, indices, chosen, points)
    )
    return 0
