"""``gmvae generate MODEL --out grid.png``: images sampled per category, like the paper's Fig. 3.

Row k holds decodings of z ~ p(z|y = k); the images go beside the PNG as ``.npz``
(``images`` (c, n, C, H, W) in [0, 1], ``row_labels``, ``seed``). A model whose z carries
no information (posterior collapse, :mod:`gmvae.figures.collapse`) cannot generate: a warning
says so, measured on test images of the model's data set when its files are at hand
(never downloaded for this), else from the generated images alone.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from gmvae.data.registry import load_split
from gmvae.errors import GMVAEError, ToolParser
from gmvae.figures import options
from gmvae.figures.arrays import generated_grid
from gmvae.figures.collapse import MIN_CATEGORY_CONTRAST, category_contrast, latent_use
from gmvae.figures.plotting import image_grid
from gmvae.io.model_file import ModelCard, load_model
from gmvae.model.gmvae import GMVAE


def main(argv: list[str]) -> int:
    parser = ToolParser(prog="gmvae generate", description=__doc__.split("\n")[0])
    options.add_model_argument(parser)
    options.add_output_arguments(parser, ".npz")
    parser.add_argument("--per-class", type=int, default=10, help="images per category (row)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the z samples")
    group = parser.add_argument_group("test images, to check that z carries information")
    group.add_argument(
        "--dataset", help="mnist, fashion-mnist, svhn or digits (default: the model's)"
    )
    group.add_argument("--data-dir", help="folder holding <dataset>/ (as --data.data_dir)")
    args = parser.parse_args(argv)
    if args.per_class < 1:
        parser.error(f"--per-class {args.per_class} must be >= 1")
    data_path = options.check_outputs(args.out, ".npz", force=args.force)
    model, card = load_model(args.model)
    images = generated_grid(model, args.per_class, seed=args.seed)
    _warn_if_it_cannot_generate(model, images, _test_batch(args, card))
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


def _test_batch(args: argparse.Namespace, card: ModelCard, n: int = 1000) -> torch.Tensor | None:
    """Up to ``n`` test images of the model's data set, if its files are at hand."""
    dataset = args.dataset or card.extra.get("dataset")
    if not dataset or dataset == "folder":
        return None
    try:
        arrays = load_split(dataset, "test", data_dir=args.data_dir, download=False)
    except GMVAEError:
        return None
    return arrays.images[:n] if arrays.image_shape == card.image_shape else None


def _warn_if_it_cannot_generate(model: GMVAE, images: np.ndarray, x: torch.Tensor | None) -> None:
    use = latent_use(model, images, x)
    if use.collapsed:
        print(
            "gmvae: warning: this model's z carries no information about the image "
            f"(posterior collapse: {use.describe()}): the decoder gets nothing from z, so the "
            "grid shows average images, not samples. A lighter Gaussian KL against the "
            "reconstruction term (--model.loss.w_gaussian), longer training, and the last "
            "checkpoint instead of an early best-validation one (--checkpoint.monitor null) "
            "keep z informative",
            file=sys.stderr,
        )
        return
    contrast = category_contrast(images)
    if contrast is not None and contrast < MIN_CATEGORY_CONTRAST:
        print(
            "gmvae: warning: the rows hardly differ by category (their mean images differ "
            f"{contrast:.1f} times as much as chance makes them; models that draw their "
            "classes measure 5 or more): z ~ p(z|y) does not decode to images of category y. "
            "Longer training, and the last checkpoint instead of an early best-validation one "
            "(--checkpoint.monitor null), let p(z|y) take each category's place",
            file=sys.stderr,
        )
