"""``gmvae reconstruct MODEL --out recon.png``: test images above their reconstructions.

Rows alternate: originals, then sigmoid(p(x|z)) at the posterior mean (eval mode).
The data goes beside the PNG as ``.npz`` (``originals``, ``reconstructions``
(N, C, H, W) in [0, 1], ``indices`` into the test set, ``labels``).
"""

from __future__ import annotations

import argparse

import numpy as np

from gmvae.data.arrays import to_float
from gmvae.figures import options
from gmvae.figures.arrays import reconstructions, subsample
from gmvae.figures.plotting import image_grid
from gmvae.io.model_file import load_model


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gmvae reconstruct", description=__doc__.split("\n")[0])
    options.add_model_argument(parser)
    options.add_output_arguments(parser, ".npz")
    options.add_data_arguments(parser)
    parser.add_argument("--count", type=int, default=20, help="test images to show")
    parser.add_argument("--columns", type=int, default=10, help="images per row")
    parser.add_argument("--seed", type=int, default=0, help="seed of the choice of test images")
    args = parser.parse_args(argv)
    if args.count < 1 or args.columns < 1:
        parser.error("--count and --columns must be >= 1")
    data_path = options.check_outputs(args.out, ".npz", force=args.force)
    model, card = load_model(args.model)
    images, labels, dataset = options.load_test_set(args, card)
    count = min(args.count, len(images))
    indices = subsample(len(images), count, seed=args.seed)
    originals = to_float(images[indices]).numpy()
    recon = reconstructions(model, images[indices])

    cols = min(args.columns, count)
    rows = -(-count // cols)
    pad = rows * cols - count  # blank (white) cells fill the last row
    blank = np.ones((pad, *originals.shape[1:]), dtype=np.float32)
    grid_o = np.concatenate([originals, blank]).reshape(rows, cols, *originals.shape[1:])
    grid_r = np.concatenate([recon, blank]).reshape(rows, cols, *originals.shape[1:])
    grid = np.stack([grid_o, grid_r], axis=1).reshape(2 * rows, cols, *originals.shape[1:])
    fig = image_grid(
        grid, ["original", "reconstruction"] * rows, title=f"{dataset} test images, reconstructed"
    )
    options.write_outputs(
        fig,
        args.out,
        args.dpi,
        data_path,
        lambda f: np.savez_compressed(
            f,
            originals=originals,
            reconstructions=recon,
            indices=indices,
            labels=labels[indices].numpy(),
        ),
    )
    return 0
