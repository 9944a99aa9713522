"""The two sampling tricks, as pure functions that take an optional generator.

Both draw their noise and return their sample in float32 at least, whatever the inputs' dtype: under
bf16 autocast a bf16 uniform has about 1,700 distinct values in (0, 1), which cuts the
Gumbel tail off near 5.5 (float32 reaches about 16) and coarsens z's Gaussian noise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gumbel_softmax(
    logits: torch.Tensor,
    temperature: float,
    *,
    hard: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A relaxed one-hot sample of Cat(softmax(logits)) (Jang et al. 2017; Maddison et al. 2017).

    ``hard`` returns a one-hot vector whose gradient is the relaxed sample's
    (straight-through). Shapes: (B, c) -> (B, c), float32 or wider.
    """
    logits = logits.to(_sampling_dtype(logits))
    u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
    tiny = torch.finfo(logits.dtype).tiny
    neg_log_u = torch.log(u.clamp_min(tiny)).neg().clamp_min(tiny)  # -log(u) > 0
    gumbel = -torch.log(neg_log_u)
    soft = F.softmax((logits + gumbel) / temperature, dim=-1)
    if not hard:
        return soft
    one_hot = F.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype)
    return one_hot - soft.detach() + soft


def reparameterize(
    mean: torch.Tensor, var: torch.Tensor, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """z = mean + sqrt(var) * eps, eps ~ N(0, I) (Kingma & Welling 2014), in float32 or wider."""
    dtype = _sampling_dtype(mean)
    eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=dtype)
    return mean.to(dtype) + eps * var.to(dtype).sqrt()


def _sampling_dtype(t: torch.Tensor) -> torch.dtype:
    """float32, or the input's dtype where it is wider (float64 stays float64)."""
    return torch.promote_types(t.dtype, torch.float32)
