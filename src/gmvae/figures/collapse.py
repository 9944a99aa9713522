"""Posterior collapse, measured: whether a model's z carries information about the image.

When the Gaussian KL term wins over the reconstruction term, q(z|x,y) settles on the
prior p(z|y) for every image: z then tells the decoder nothing, and every z ~ p(z|y)
decodes to the same average image, whatever y. Classification may still be good (it
uses q(y|x)), so the run's scores do not show it; ``gmvae generate`` does, and says so.

Two measures: on a batch of images, KL(q(z|x,y) || p(z|y)) per image and the active
latent dimensions (those whose posterior mean varies over the batch by more than
:data:`ACTIVE_VARIANCE`, the criterion of Burda et al., 2016); and, needing no data, how
much the generated images differ from one another.
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
