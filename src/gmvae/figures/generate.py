"""``gmvae generate MODEL --out grid.png``: images sampled per category, like the paper's Fig. 3.

Row k holds decodings of z ~ p(z|y = k); the images go beside the PNG as ``.npz``
(``images`` (c, n, C, H, W) in [0, 1], ``row_labels``, ``seed``).
"""

from __future__ import annotations

import argparse

import numpy as np

from gmvae.figures import options
from gmvae.figures.arrays import generated_grid
from gmvae.figures.plotting import image_grid
from gmvae.io.model_file import load_model


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gmvae generate", description=__doc__.split("\n")[0])
    options.add_model_argument(parser)
    options.add_output_arguments(parser, ".npz")
    parser.add_argument("--per-class", type=int, default=10, help="images per category (row)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the z samples")
    args = parser.parse_args(argv)
    if args.per_class < 1:
        parser.error(f"--per-class {args.per_class} must be >= 1")
    data_path = options.check_outputs(args.out, ".npz", force=args.force)
    model, card = load_model(args.model)
    images = generated_grid(model, args.per_class, seed=args.seed)
    labels = options.row_names(card)
    fig = image_grid(images, labels, title="z ~ p(z|y), decoded: one row per category y")
    options.write_outputs(
        fig,
        args.out,
        args.dpi,
        data_path,
        lambda f: np.savez_compressed(
            f, images=images, row_labels=np.array(labels), seed=args.seed
        ),
    )
    return 0
