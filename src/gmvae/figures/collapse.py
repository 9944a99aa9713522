"""Posterior collapse, measured: whether a model's z carries information about the image.

When the Gaussian KL term wins over the reconstruction term, q(z|x,y) settles on the
prior p(z|y) for every image: z then tells the decoder nothing, and every z ~ p(z|y)
decodes to the same average image, whatever y. Classification may still be good (it
uses q(y|x)), so the run's scores do not show it; ``gmvae generate`` does, and says so.

Two measures: on a batch of images, KL(q(z|x,y) || p(z|y)) per image and the active
latent dimensions (those whose posterior mean varies over the batch by more than
:data:`ACTIVE_VARIANCE`, the criterion of Burda et al., 2016); and, needing no data, how
much the generated images differ from one another. A third, :func:`category_contrast`,
tells whether the rows of z ~ p(z|y) differ by category at all: a model whose z is used
may still draw the same kind of image for every y.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gmvae.data.arrays import to_float
from gmvae.model.gmvae import GMVAE

ACTIVE_VARIANCE = 0.01
# Pixels in [0, 1]: generated digits differ by ~0.2 per pixel; a collapsed model by ~0.
MIN_SPREAD = 0.02
# How much more the rows' mean images differ than sampling alone makes them (about 1 when
# the rows do not depend on y). Measured with 10 per row: 1.1-1.2 for digits-demo models
# whose samples a separate classifier labels at chance, 2.1 at 32 % judged as the asked
# class, 5.5-9.2 for MNIST and digits models judged 85-99 %.
MIN_CATEGORY_CONTRAST = 2.5


@dataclass(frozen=True)
class LatentUse:
    """What z carries: ``spread`` of the generated images; on data, KL and active dims."""

    spread: float  # mean over pixels of the std over all generated images
    latent_size: int
    kl: float | None = None  # nats per image, KL(q(z|x,y) || p(z|y)), mean over the batch
    active: int | None = None  # latent dimensions whose posterior mean varies
    images: int = 0  # rows of the batch KL and active were measured on

    @property
    def collapsed(self) -> bool:
        return self.active == 0 if self.active is not None else self.spread < MIN_SPREAD

    def describe(self) -> str:
        """One sentence with the numbers, for a warning."""
        parts = []
        if self.active is not None:
            parts.append(
                f"{self.active} of {self.latent_size} latent dimensions active and "
                f"KL(q(z|x,y) || p(z|y)) = {self.kl:.3f} nats per image on {self.images} "
                "images"
            )
        parts.append(f"the generated images differ by {self.spread:.3f} per pixel (std)")
        return "; ".join(parts)


def category_contrast(images: np.ndarray) -> float | None:
    """Spread of the row means of ``images`` (categories, per row, C, H, W) over the spread
    that chance gives them (the within-row spread over sqrt(per row)); None below two rows
    of two images."""
    grid = np.asarray(images, dtype=np.float64)
    if grid.ndim != 5 or grid.shape[0] < 2 or grid.shape[1] < 2:
        return None
    rows = grid.reshape(*grid.shape[:2], -1)
    between = rows.mean(axis=1).std(axis=0).mean()
    within = rows.std(axis=1).mean() / np.sqrt(rows.shape[1])
    return float(between / within) if within > 0 else None


def generated_spread(images: np.ndarray) -> float:
    """Mean over pixels of the standard deviation over every generated image (any layout
    whose last three axes are C, H, W)."""
    flat = np.asarray(images, dtype=np.float64).reshape(-1, *np.shape(images)[-3:])
    return float(flat.std(axis=0).mean()) if len(flat) > 1 else 0.0


@torch.inference_mode()
def latent_use(model: GMVAE, images: np.ndarray, x: torch.Tensor | None = None) -> LatentUse:
    """:class:`LatentUse` of ``model`` from its generated ``images`` and, when given, a batch
    ``x`` of real images (uint8 or floats in [0, 1], (N, C, H, W))."""
    spread = generated_spread(images)
    size = model.config.latent_size
    if x is None or len(x) < 2:
        return LatentUse(spread, size)
    was_training = model.training
    model.eval()
    try:
        device = model.p_z_mean.weight.device
        out = model(to_float(x).to(device))
    finally:
        model.train(was_training)
    q_mean, q_var = out.z_mean.double(), out.z_var.double()
    p_mean, p_var = out.prior_mean.double(), out.prior_var.double()
    kl = 0.5 * (torch.log(p_var / q_var) + (q_var + (q_mean - p_mean) ** 2) / p_var - 1.0)
    active = int((q_mean.var(dim=0) > ACTIVE_VARIANCE).sum())
    return LatentUse(spread, size, float(kl.sum(dim=1).mean()), active, len(x))
