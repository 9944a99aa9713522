"""The weighted total loss, each term named so that it can be logged."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from gmvae.config import LossConfig
from gmvae.errors import ConfigError
from gmvae.losses.assignment import AlignedAssignment, knn_assign
from gmvae.losses.elbo import categorical_kl, gaussian_kl, reconstruction_loss
from gmvae.losses.embedding import build_metric_loss
from gmvae.losses.propagation import PropagatedAssignment
from gmvae.model.gmvae import GMVAEOutput


@dataclass
class LossTerms:
    """Unweighted terms (None when switched off), the weighted total and the k-NN targets."""

    total: torch.Tensor
    reconstruction: torch.Tensor | None = None
    gaussian: torch.Tensor | None = None
    categorical: torch.Tensor | None = None
    assignment: torch.Tensor | None = None
    metric: torch.Tensor | None = None
    targets: torch.Tensor | None = None  # true labels where known, k-NN assignments elsewhere

    def named(self) -> dict[str, torch.Tensor]:
        """{name: value} of the total and every active term, for logging."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and f.name != "targets":
                out[f.name] = value
        return out


class GMVAELoss(nn.Module):
    """L_total = wR*L_R + wG*L_G + wC*L_C + wA*L_A + wM*L_M (paper Eq. 1, 7; Section 4).

    ``labels`` uses -1 for unlabeled rows. L_A and L_M need labeled rows in the
    batch; with ``include_auxiliary=False`` only the variational terms are
    computed (the label-free validation loss).
    """

    def __init__(
        self, config: LossConfig, num_classes: int, *, feature_size: int | None = None
    ) -> None:
        super().__init__()
        self.config = config
        self.num_classes = num_classes
        self.metric_loss = (
            build_metric_loss(config.metric, config.metric_margin, dict(config.metric_kwargs))
            if config.w_metric > 0
            else None
        )
        # Only when asked for: its buffers would be missing from older checkpoints.
        self.aligner = AlignedAssignment(num_classes) if config.align_assignments else None
        self.propagator = None
        if config.pseudo_labels == "propagation":
            if feature_size is None:
                raise ConfigError("pseudo_labels='propagation' needs the feature size of x_hat")
            self.propagator = PropagatedAssignment(num_classes, feature_size)

    def forward(
        self,
        out: GMVAEOutput,
        x: torch.Tensor,
        labels: torch.Tensor,
        *,
        include_auxiliary: bool = True,
        pseudo_label_weight: float = 1.0,
        pseudo_targets: torch.Tensor | None = None,
    ) -> LossTerms:
        """``pseudo_label_weight`` in [0, 1] scales what rests on k-NN labels: the
        unlabeled rows' share of L_A and all of L_M (the warm-up ramp).
        ``pseudo_targets`` (B,) are the unlabeled rows' targets when they come from outside
        the batch (``pseudo_labels='epoch_propagation'``); labeled rows keep their labels."""
        cfg = self.config
        terms = LossTerms(total=x.new_zeros((), dtype=torch.float32))
        if cfg.w_reconstruction > 0:
            generated = x[: out.reconstruction_logits.shape[0]]  # rows that were decoded
            terms.reconstruction = reconstruction_loss(
                generated.float(),
                out.reconstruction_logits.float(),
                cfg.reconstruction,
                cfg.reconstruction_reduction,
            )
            terms.total = terms.total + cfg.w_reconstruction * terms.reconstruction
        if cfg.w_gaussian > 0:
            terms.gaussian = gaussian_kl(
                *(t.float() for t in (out.z, out.z_mean, out.z_var, out.prior_mean, out.prior_var))
            )
            terms.total = terms.total + cfg.w_gaussian * terms.gaussian
        if cfg.w_categorical > 0:
            terms.categorical = categorical_kl(out.logits.float())
            terms.total = terms.total + cfg.w_categorical * terms.categorical
        if not (include_auxiliary and cfg.uses_labels):
            return terms

        features = out.features.float()
        labeled = labels >= 0
        if pseudo_targets is not None:
            assigned = pseudo_targets
        elif cfg.pseudo_labels == "epoch_propagation":
            raise ValueError(
                "pseudo_labels='epoch_propagation' takes its targets as pseudo_targets"
            )
        elif self.propagator is not None:
            assigned = self.propagator(features.detach(), labels)
        elif self.aligner is not None:
            assigned = self.aligner(features.detach(), labels, k=cfg.knn_k)
        else:
            assigned = knn_assign(
                features.detach(),
                features.detach(),
                labels,
                k=cfg.knn_k,
                num_classes=self.num_classes,
                reference_mask=labeled,
            )
        terms.targets = torch.where(labeled, labels, assigned)
        if cfg.w_assignment > 0:
            per_row = F.cross_entropy(out.logits.float(), terms.targets, reduction="none")
            terms.assignment = per_row.mean()
            row_weight = torch.where(labeled, 1.0, pseudo_label_weight)
            terms.total = terms.total + cfg.w_assignment * (per_row * row_weight).mean()
        if self.metric_loss is not None:
            terms.metric = self.metric_loss(features, terms.targets)
            terms.total = terms.total + pseudo_label_weight * cfg.w_metric * terms.metric
        return terms
