"""Loss terms of L_total = wR*L_R + wG*L_G + wC*L_C + wA*L_A + wM*L_M (paper Sections 3.2, 4)."""

from gmvae.losses.assignment import AlignedAssignment, knn_assign
from gmvae.losses.elbo import categorical_kl, gaussian_kl, log_normal, reconstruction_loss
from gmvae.losses.embedding import build_metric_loss, lifted_structured_loss
from gmvae.losses.total import GMVAELoss, LossTerms

__all__ = [
    "AlignedAssignment",
    "GMVAELoss",
    "LossTerms",
    "build_metric_loss",
    "categorical_kl",
    "gaussian_kl",
    "knn_assign",
    "lifted_structured_loss",
    "log_normal",
    "reconstruction_loss",
]
