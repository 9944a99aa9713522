"""Random shifts of training images, drawn per image on the batch's device.

Not in the paper. With 100 labels every batch holds the same labeled images, and the
k-NN targets of the unlabeled rows are read off them; shifting each image by a few
pixels shows the networks a class's examples at several positions, so that the
features of a class spread beyond its few labeled images (docs/RESULTS.md, "Shifted
training images").
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F

from gmvae.errors import ConfigError


def check_shift(max_shift: int, image_shape: tuple[int, int, int]) -> int:
    """``max_shift`` as an int, refused where it is negative or not below half the image."""
    whole = (
        isinstance(max_shift, numbers.Real)
        and not isinstance(max_shift, bool)
        and math.isfinite(max_shift)
    )
    if not whole or int(max_shift) != max_shift or max_shift < 0:
        raise ConfigError(f"augment_shift={max_shift!r} must be a whole number of pixels >= 0")
    if 2 * max_shift >= min(image_shape[1:]):
        raise ConfigError(
            f"augment_shift={max_shift} must be below half the image's "
            f"{image_shape[1]}x{image_shape[2]} pixels"
        )
    return int(max_shift)


def random_shift(x: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Each image of ``x`` (B, C, H, W) moved by its own whole-pixel offset in
    [-max_shift, max_shift] along each axis; the edge pixels fill what comes in.

    The edge fill keeps a dark background dark and a photo's border colour; the
    result keeps ``x``'s memory format. ``max_shift`` 0 returns ``x`` itself.
    """
    if max_shift == 0:
        return x
    batch, _, height, width = x.shape
    padded = F.pad(x, (max_shift,) * 4, mode="replicate")
    offsets = torch.randint(0, 2 * max_shift + 1, (2, batch), device=x.device)
    rows = offsets[0, :, None] + torch.arange(height, device=x.device)  # (B, H)
    cols = offsets[1, :, None] + torch.arange(width, device=x.device)  # (B, W)
    index = torch.arange(batch, device=x.device)[:, None, None]
    # Advanced indexing on dims 0, 2, 3 puts the channel last: (B, H, W, C).
    shifted = padded.permute(0, 2, 3, 1)[index, rows[:, :, None], cols[:, None, :]]
    memory_format = torch.contiguous_format if x.is_contiguous() else torch.channels_last
    return shifted.permute(0, 3, 1, 2).contiguous(memory_format=memory_format)
