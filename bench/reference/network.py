"""The author's MNIST networks (``CatVAENetwork.encoder_conv`` / ``decoder_conv``) in PyTorch.

TensorFlow 1 layers, translated one for one: ``tf.layers.conv2d`` / ``conv2d_transpose``
with "valid" padding and a bias, ``tf.layers.batch_normalization`` (momentum 0.99, i.e.
PyTorch's 0.01, epsilon 1e-3) and a ReLU after every convolution, the decoder's last
included; ``tf.layers.dense``; Glorot-uniform kernels and zero biases (TensorFlow's
defaults). Images enter and leave flat, (B, 784), as in the author's graph.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-8  # CatVAENetwork.eps: inside every log and square root

# (filters, kernel, stride) of encoder_conv and decoder_conv; the feature size ends each list
ENCODER = ((16, 5, 1), (32, 5, 1), (64, 4, 2), (128, 5, 2))
DECODER = ((128, 3, 1), (64, 5, 2), (32, 4, 2), (16, 5, 1), (1, 5, 1))


class AuthorOutput(NamedTuple):
    features: torch.Tensor  # (B, F) encoder output after its last BN + ReLU
    mean: torch.Tensor  # (B, G)
    log_var: torch.Tensor  # (B, G)
    z: torch.Tensor  # (B, G) mean + sqrt(exp(log_var) + eps) * noise
    logits: torch.Tensor  # (B, K)
    prob: torch.Tensor  # (B, K) softmax(logits)
    log_prob: torch.Tensor  # (B, K) log(prob + eps)
    y: torch.Tensor  # (B, K) Gumbel-Softmax sample
    reconstruction: torch.Tensor  # (B, 784) sigmoid output


def _conv_block(conv: nn.Module, channels: int) -> list[nn.Module]:
    return [conv, nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01), nn.ReLU()]


def glorot_init(module: nn.Module) -> None:
    """TensorFlow's default initialisers: Glorot-uniform kernels, zero biases.

    The Glorot limit depends on fan_in + fan_out only, so PyTorch's layout of a
    transposed convolution's weight (in, out, k, k) gives TensorFlow's limit too.
    """
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)


class AuthorNetwork(nn.Module):
    """Encoder, Gaussian and categorical heads, and decoder of the author's MNIST model."""

    def __init__(self, num_classes: int = 10, feature_size: int = 200, gaussian_size: int = 150):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for filters, kernel, stride in (*ENCODER, (feature_size, 3, 1)):
            layers += _conv_block(nn.Conv2d(channels, filters, kernel, stride), filters)
            channels = filters
        self.encoder = nn.Sequential(*layers, nn.Flatten())  # 28 -> 24 -> 20 -> 9 -> 3 -> 1
        self.mean = nn.Linear(feature_size, gaussian_size)
        self.log_var = nn.Linear(feature_size, gaussian_size)
        self.logits = nn.Linear(feature_size, num_classes)
        self.from_z = nn.Linear(gaussian_size, feature_size)
        self.from_y = nn.Linear(num_classes, feature_size)
        layers, channels = [], feature_size
        for filters, kernel, stride in DECODER:
            layers += _conv_block(nn.ConvTranspose2d(channels, filters, kernel, stride), filters)
            channels = filters
        self.decoder = nn.Sequential(*layers, nn.Flatten())  # 1 -> 3 -> 9 -> 20 -> 24 -> 28
        self.output = nn.Linear(28 * 28, 28 * 28)
        self.feature_size = feature_size
        glorot_init(self)

    def forward(
        self,
        x: torch.Tensor,
        temperature: float,
        noise: torch.Tensor | None = None,
        uniform: torch.Tensor | None = None,
    ) -> AuthorOutput:
        """x (B, 784) in [0, 1]; ``noise`` (B, G) ~ N(0, 1) and ``uniform`` (B, K) ~ U(0, 1)
        are drawn when not given (given: the TensorFlow comparison feeds the same draws)."""
        features = self.encoder(x.view(-1, 1, 28, 28))
        mean, log_var = self.mean(features), self.log_var(features)
        if noise is None:
            noise = torch.randn_like(mean)
        z = mean + torch.sqrt(torch.exp(log_var) + EPS) * noise
        logits = self.logits(features)
        if uniform is None:
            uniform = torch.rand_like(logits)
        gumbel = -torch.log(-torch.log(uniform + EPS) + EPS)
        y = F.softmax((logits + gumbel) / temperature, dim=-1)
        prob = F.softmax(logits, dim=-1)
        hidden = (self.from_z(z) + self.from_y(y)).view(-1, self.feature_size, 1, 1)
        reconstruction = torch.sigmoid(self.output(self.decoder(hidden)))
        return AuthorOutput(
            features, mean, log_var, z, logits, prob, torch.log(prob + EPS), y, reconstruction
        )

    @torch.inference_mode()
    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """argmax q(y|x) (``SSVAE.test``): the encoder and the logits only. x (B, 784) -> (B,)."""
        return self.logits(self.encoder(x.view(-1, 1, 28, 28))).argmax(-1)
