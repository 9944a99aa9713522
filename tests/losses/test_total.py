import pytest
import torch

from gmvae.config import LossConfig, NetworkConfig
from gmvae.losses import (
    GMVAELoss,
    categorical_kl,
    gaussian_kl,
    lifted_structured_loss,
    reconstruction_loss,
)
from gmvae.model import GMVAE


@pytest.fixture
def batch():
    torch.manual_seed(0)
    model = GMVAE(
        (1, 8, 8),
        3,
        NetworkConfig(network="mlp", feature_size=16, latent_size=4, mlp_hidden_size=32),
    )
    x = torch.rand(12, 1, 8, 8)
    labels = torch.tensor([-1] * 6 + [0, 1, 2, 0, 1, 2])
    return model(x, temperature=0.7), x, labels


def test_total_is_the_weighted_sum_of_named_terms(batch):
    out, x, labels = batch
    cfg = LossConfig(
        w_reconstruction=0.5,
        w_gaussian=2.0,
        w_categorical=3.0,
        w_assignment=4.0,
        w_metric=5.0,
        knn_k=2,
        metric_margin=1.0,
    )
    terms = GMVAELoss(cfg, 3)(out, x, labels)
    expected = (
        0.5 * reconstruction_loss(x, out.reconstruction_logits, "mse")
        + 2.0 * gaussian_kl(out.z, out.z_mean, out.z_var, out.prior_mean, out.prior_var)
        + 3.0 * categorical_kl(out.logits)
        + 4.0 * torch.nn.functional.cross_entropy(out.logits, terms.targets)
        + 5.0 * lifted_structured_loss(out.features, terms.targets, 1.0)
    )
    assert terms.total.item() == pytest.approx(expected.item(), rel=1e-5)
    assert set(terms.named()) == {
        "total",
        "reconstruction",
        "gaussian",
        "categorical",
        "assignment",
        "metric",
    }


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_reconstruction_term_uses_the_configured_reduction(batch, reduction):
    out, x, labels = batch
    cfg = LossConfig(reconstruction_reduction=reduction, knn_k=2)
    terms = GMVAELoss(cfg, 3)(out, x, labels)
    expected = reconstruction_loss(x, out.reconstruction_logits, "mse", reduction)
    assert terms.reconstruction.item() == pytest.approx(expected.item(), rel=1e-6)
    pixels = 64
    if reduction == "mean":  # the term is 1/D of the summed one
        summed = reconstruction_loss(x, out.reconstruction_logits, "mse", "sum")
        assert terms.reconstruction.item() == pytest.approx(summed.item() / pixels, rel=1e-6)


def test_targets_keep_true_labels_and_assign_the_rest(batch):
    out, x, labels = batch
    terms = GMVAELoss(LossConfig(knn_k=2), 3)(out, x, labels)
    assert terms.targets[6:].tolist() == labels[6:].tolist()
    assert ((terms.targets[:6] >= 0) & (terms.targets[:6] < 3)).all()


def test_switched_off_terms_are_not_computed(batch):
    out, x, labels = batch
    terms = GMVAELoss(LossConfig(w_metric=0.0, w_gaussian=0.0, knn_k=2), 3)(out, x, labels)
    assert terms.metric is None and terms.gaussian is None
    assert "metric" not in terms.named() and "assignment" in terms.named()


def test_validation_loss_uses_no_labels(batch):
    out, x, labels = batch
    terms = GMVAELoss(LossConfig(knn_k=2), 3)(out, x, labels, include_auxiliary=False)
    assert terms.assignment is None and terms.metric is None and terms.targets is None


def test_labeled_generative_off_decodes_only_the_leading_rows():
    torch.manual_seed(0)
    model = GMVAE((1, 8, 8), 3, NetworkConfig(network="mlp", feature_size=16, latent_size=4))
    x = torch.rand(10, 1, 8, 8)
    labels = torch.tensor([-1] * 6 + [0, 1, 2, 0])
    out = model(x, temperature=0.7, generative_rows=6)
    assert out.features.shape[0] == out.logits.shape[0] == 10
    assert out.z.shape[0] == out.reconstruction_logits.shape[0] == 6
    terms = GMVAELoss(LossConfig(knn_k=2, labeled_generative=False), 3)(out, x, labels)
    expected = reconstruction_loss(x[:6], out.reconstruction_logits, "mse")
    assert terms.reconstruction.item() == pytest.approx(expected.item())
    assert terms.targets.shape == (10,) and torch.isfinite(terms.total)


@pytest.mark.parametrize("weight", [0.0, 0.25])
def test_pseudo_label_weight_scales_only_what_rests_on_knn_labels(batch, weight):
    out, x, labels = batch
    cfg = LossConfig(w_assignment=4.0, w_metric=5.0, knn_k=2, metric_margin=1.0)
    full = GMVAELoss(cfg, 3)(out, x, labels)
    ramped = GMVAELoss(cfg, 3)(out, x, labels, pseudo_label_weight=weight)
    ce = torch.nn.functional.cross_entropy(out.logits, full.targets, reduction="none")
    labeled = labels >= 0
    variational = full.reconstruction + full.gaussian + full.categorical
    expected = (
        variational
        + 4.0 * (ce[labeled].sum() + weight * ce[~labeled].sum()) / len(ce)
        + weight * 5.0 * full.metric
    )
    assert ramped.total.item() == pytest.approx(expected.item(), rel=1e-5)
    assert ramped.assignment.item() == pytest.approx(full.assignment.item())  # logged unscaled
