"""Encoder and decoder stacks (paper Tables 4 and 5) with paddings that give exact shapes.

The paper's printed (filters@size, stride, padding) triples do not produce a 1x1
feature map; we keep its layer counts, filter counts, kernel sizes and strides and
choose paddings so that shapes are exact (docs/ARCHITECTURE.md lists every shape):

encoder 28x28: 5/1/0 -> 24, 5/1/0 -> 20, 4/2/1 -> 10, 4/2/1 -> 5, 5/1/0 -> 1
encoder 32x32: 5/1/0 -> 28, 5/1/0 -> 24, 4/2/1 -> 12, 4/2/1 -> 6, 6/1/0 -> 1
The decoders mirror them with transposed convolutions.

The layers are PyTorch's own; :func:`gmvae.model.fast_kernels.convert_fast_kernels` swaps
seven of them for subclasses that compute the same maths with faster kernels.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gmvae.errors import ConfigError

LEAKY_SLOPE = 0.2
# (out_channels, kernel, stride, padding) of layers 1-4; layer 5's kernel depends on the size.
_HALVING = (4, 2, 1)  # kernel, stride, padding of the layers that halve (double) the size
_ENCODER_BODY = ((16, 5, 1, 0), (32, 5, 1, 0), (64, *_HALVING), (128, *_HALVING))
_LAST_KERNEL = {28: 5, 32: 6}
CONV_SIZES = tuple(_LAST_KERNEL)


def conv_supported(image_shape: tuple[int, int, int]) -> bool:
    _, h, w = image_shape
    return h == w and h in _LAST_KERNEL


class ConvEncoder(nn.Module):
    """x (B, C, S, S) -> x_hat (B, feature_size); BN + LeakyReLU after every conv (Table 4)."""

    def __init__(self, image_shape: tuple[int, int, int], feature_size: int) -> None:
        super().__init__()
        channels, size, _ = image_shape
        if not conv_supported(image_shape):
            raise ConfigError(
                f"the conv network takes square images of size {CONV_SIZES}, got {image_shape}; "
                "use network: mlp"
            )
        layers: list[nn.Module] = []
        for out, k, s, p in _ENCODER_BODY:
            layers += [
                nn.Conv2d(channels, out, k, s, p, bias=False),
                nn.BatchNorm2d(out),
                nn.LeakyReLU(LEAKY_SLOPE),
            ]
            channels = out
        layers += [
            nn.Conv2d(channels, feature_size, _LAST_KERNEL[size], bias=False),
            nn.BatchNorm2d(feature_size),
            nn.LeakyReLU(LEAKY_SLOPE),
        ]
        self.net = nn.Sequential(*layers, nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """z (B, latent) -> logits (B, C, S, S); BN + ReLU after every layer but the last (Table 5)."""

    def __init__(self, image_shape: tuple[int, int, int], latent_size: int) -> None:
        super().__init__()
        channels, size, _ = image_shape
        if not conv_supported(image_shape):
            raise ConfigError(
                f"the conv decoder makes images of size {CONV_SIZES}, not {image_shape}"
            )
        layers: list[nn.Module] = [
            nn.Unflatten(1, (latent_size, 1, 1)),
            nn.ConvTranspose2d(latent_size, 128, _LAST_KERNEL[size], bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(),
        ]
        in_ch = 128
        for out, k, s, p in ((64, *_HALVING), (32, *_HALVING), (16, 5, 1, 0)):
            layers += [
                nn.ConvTranspose2d(in_ch, out, k, s, p, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(),
            ]
            in_ch = out
        layers.append(nn.ConvTranspose2d(in_ch, channels, 5))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class MLPEncoder(nn.Module):
    """Flattened x (B, D) -> x_hat (B, feature_size), for flat or tiny inputs (the digits demo)."""

    def __init__(self, image_shape: tuple[int, int, int], feature_size: int, hidden: int) -> None:
        super().__init__()
        dim = math.prod(image_shape)
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(dim, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Linear(hidden, feature_size, bias=False),
            nn.BatchNorm1d(feature_size),
            nn.LeakyReLU(LEAKY_SLOPE),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MLPDecoder(nn.Module):
    """z (B, latent) -> logits of the image shape."""

    def __init__(self, image_shape: tuple[int, int, int], latent_size: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_size, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, math.prod(image_shape)),
            nn.Unflatten(1, tuple(image_shape)),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def build_encoder_decoder(
    image_shape: tuple[int, int, int],
    network: str,
    feature_size: int,
    latent_size: int,
    hidden: int,
) -> tuple[nn.Module, nn.Module]:
    """``auto`` picks conv where a conv stack exists for the image size, else mlp."""
    kind = network
    if kind == "auto":
        kind = "conv" if conv_supported(image_shape) else "mlp"
    if kind == "conv":
        return ConvEncoder(image_shape, feature_size), ConvDecoder(image_shape, latent_size)
    if kind == "mlp":
        return (
            MLPEncoder(image_shape, feature_size, hidden),
            MLPDecoder(image_shape, latent_size, hidden),
        )
    raise ConfigError(f"network={network!r} is not allowed; choose one of auto, conv, mlp")
