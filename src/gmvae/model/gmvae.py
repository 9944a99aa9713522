"""The GMVAE of the paper (Sections 3, Appendix A) as one nn.Module."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from gmvae.config import NetworkConfig
from gmvae.model.gumbel import gumbel_softmax, reparameterize
from gmvae.model.networks import LEAKY_SLOPE, build_encoder_decoder


class GMVAEOutput(NamedTuple):
    """Outputs of one forward pass. G <= B is the number of leading rows that went
    through the generative path (all of them unless ``generative_rows`` was given)."""

    features: torch.Tensor  # x_hat = g(x), (B, fsz)
    logits: torch.Tensor  # q(y|x_hat) logits, (B, c)
    y: torch.Tensor  # Gumbel-Softmax sample (train) or softmax probabilities (eval), (G, c)
    z_mean: torch.Tensor  # q(z|x_hat, y), (G, gsz)
    z_var: torch.Tensor
    z: torch.Tensor  # reparameterised sample (train) or the mean (eval), (G, gsz)
    prior_mean: torch.Tensor  # p(z|y), (G, gsz)
    prior_var: torch.Tensor
    reconstruction_logits: torch.Tensor  # p(x|z) before the sigmoid, (G, C, H, W)

    @property
    def reconstruction(self) -> torch.Tensor:
        return torch.sigmoid(self.reconstruction_logits)


class GMVAE(nn.Module):
    """x -> x_hat -> q(y|x_hat) -> q(z|x_hat, y) -> p(x|z), with the learned prior p(z|y).

    In training mode y and z are sampled; in eval mode y is the softmax of the
    logits and z the posterior mean, so evaluation is deterministic.
    """

    def __init__(
        self, image_shape: tuple[int, int, int], num_classes: int, config: NetworkConfig
    ) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.num_classes = num_classes
        self.config = config
        fsz, gsz = config.feature_size, config.latent_size
        self.encoder, self.decoder = build_encoder_decoder(
            self.image_shape, config.network, fsz, gsz, config.mlp_hidden_size
        )
        act = nn.LeakyReLU(LEAKY_SLOPE)
        self.q_y = nn.Sequential(nn.Linear(fsz, fsz), act, nn.Linear(fsz, num_classes))
        self.q_z = nn.Sequential(nn.Linear(fsz + num_classes, gsz), act, nn.Linear(gsz, gsz), act)
        self.q_z_mean = nn.Linear(gsz, gsz)
        self.q_z_var = nn.Linear(gsz, gsz)
        self.p_z_mean = nn.Linear(num_classes, gsz)
        self.p_z_var = nn.Linear(num_classes, gsz)
        if config.init == "xavier":
            self.apply(_xavier_init)
        if config.prior == "standard":
            # p(z|y) is N(0, I): these layers get no gradient. Frozen, so that DDP (which
            # requires a gradient for every trainable parameter) runs without extra options.
            self.p_z_mean.requires_grad_(False)
            self.p_z_var.requires_grad_(False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x_hat = g(x), (B, fsz)."""
        return self.encoder(x)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of q(y|x_hat), (B, c)."""
        return self.q_y(self.encoder(x))

    def prior(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of p(z|y); N(0, I) when the config asks for the standard prior."""
        if self.config.prior == "standard":
            zeros = y.new_zeros(y.shape[0], self.config.latent_size)
            return zeros, zeros + 1.0
        return self.p_z_mean(y), F.softplus(self.p_z_var(y))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Logits of p(x|z), (B, C, H, W)."""
        return self.decoder(z)

    def forward(
        self,
        x: torch.Tensor,
        *,
        temperature: float = 1.0,
        hard: bool = False,
        generator: torch.Generator | None = None,
        generative_rows: int | None = None,
    ) -> GMVAEOutput:
        """``generative_rows``: run q(z|x_hat,y), p(z|y) and the decoder on the first
        that many rows only (features and logits cover the whole batch)."""
        features = self.encoder(x)
        logits = self.q_y(features)
        gen_features, gen_logits = features[:generative_rows], logits[:generative_rows]
        if self.training:
            y = gumbel_softmax(gen_logits, temperature, hard=hard, generator=generator)
        else:
            y = F.softmax(gen_logits, dim=-1)
        h = self.q_z(torch.cat([gen_features, y], dim=-1))
        z_mean, z_var = self.q_z_mean(h), F.softplus(self.q_z_var(h))
        z = reparameterize(z_mean, z_var, generator=generator) if self.training else z_mean
        prior_mean, prior_var = self.prior(y)
        return GMVAEOutput(
            features, logits, y, z_mean, z_var, z, prior_mean, prior_var, self.decode(z)
        )

    @torch.inference_mode()
    def sample(
        self, category: int, n: int, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """n images of one category: z ~ p(z|y = category), decoded; (n, C, H, W) in [0, 1]."""
        device = self.p_z_mean.weight.device
        y = F.one_hot(torch.full((n,), category, device=device), self.num_classes).float()
        mean, var = self.prior(y)
        z = mean + var.sqrt() * torch.randn(mean.shape, generator=generator, device=device)
        return torch.sigmoid(self.decode(z))


def _xavier_init(module: nn.Module) -> None:
    """Xavier-normal weights and zero biases for linear and (transposed) conv layers."""
    if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.xavier_normal_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
