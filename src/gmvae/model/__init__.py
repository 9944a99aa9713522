"""The GMVAE: encoder g(x), q(y|x_hat), q(z|x_hat,y), p(z|y) and decoder p(x|z)."""

from gmvae.model.gmvae import GMVAE, GMVAEOutput
from gmvae.model.gumbel import gumbel_softmax, reparameterize

__all__ = ["GMVAE", "GMVAEOutput", "gumbel_softmax", "reparameterize"]
