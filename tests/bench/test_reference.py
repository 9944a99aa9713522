"""The transcription of the author's model: shapes, each loss by hand, Adam as TensorFlow's."""

from __future__ import annotations

import math

import pytest
import torch
from reference.losses import AuthorWeights, author_losses, knn_majority
from reference.network import EPS, AuthorNetwork
from reference.train import AuthorSettings, AuthorTrainer, TFAdam


def test_network_shapes_and_initialisation():
    torch.manual_seed(0)
    net = AuthorNetwork()
    out = net(torch.rand(6, 784), temperature=0.7)
    assert out.features.shape == (6, 200) and (out.features >= 0).all()  # after a ReLU
    assert out.mean.shape == out.log_var.shape == out.z.shape == (6, 150)
    assert out.logits.shape == out.y.shape == (6, 10)
    assert out.reconstruction.shape == (6, 784)
    assert ((out.reconstruction > 0) & (out.reconstruction < 1)).all()
    assert torch.allclose(out.y.sum(1), torch.ones(6))
    conv = net.encoder[0]
    limit = math.sqrt(6 / (1 * 25 + 16 * 25))  # Glorot: fan_in + fan_out
    assert conv.weight.abs().max() <= limit and conv.weight.abs().max() > 0.9 * limit
    assert all(float(m.bias.detach().abs().max()) == 0 for m in (conv, net.mean, net.output))
    assert net.encoder[1].eps == 1e-3 and net.encoder[1].momentum == pytest.approx(0.01)
    assert net.classify(torch.rand(4, 784)).shape == (4,)


def test_knn_majority_by_hand_ties_go_to_the_lowest_class():
    # 2 unlabeled rows then 4 labeled, 1-D features
    features = torch.tensor([[0.0], [10.0], [1.0], [2.0], [9.0], [11.5]])
    labels = torch.tensor([3, 1, 1, 0])
    # row 0: nearest 3 are 1.0 (3), 2.0 (1), 9.0 (1) -> 1; row 1: 9, 11.5, 2 -> 1, 0, 1 -> 1
    assert knn_majority(features, labels, 3, 4).tolist() == [1, 1]
    # k = 2: one vote each, the lower class: row 0 (3, 1) -> 1, row 1 (1, 0) -> 0
    assert knn_majority(features, labels, 2, 4).tolist() == [1, 0]
    assert knn_majority(features, torch.tensor([3, 2, 2, 0]), 2, 4).tolist()[0] == 2


def test_each_loss_term_by_hand():
    torch.manual_seed(1)
    net = AuthorNetwork().double()
    x = torch.rand(8, 784, dtype=torch.float64)
    out = net(x, temperature=1.0)
    labels = torch.tensor([0, 1, 2, 3])
    w = AuthorWeights(knn=1)
    losses = author_losses(out, x, labels, w)
    p = out.reconstruction
    bce = (
        sum(
            -sum(
                float(
                    x[i, j] * math.log(p[i, j] + EPS) + (1 - x[i, j]) * math.log(1 - p[i, j] + EPS)
                )
                for j in range(784)
            )
            for i in range(8)
        )
        / 8
    )
    assert float(losses.reconstruction) == pytest.approx(bce, rel=1e-10)
    m, lv = out.mean, out.log_var
    kl = (
        sum(
            -0.5
            * sum(
                float(1 + lv[i, j] - math.exp(lv[i, j]) - (m[i, j] + EPS) ** 2) for j in range(150)
            )
            for i in range(8)
        )
        / 8
    )
    assert float(losses.gaussian) == pytest.approx(kl, rel=1e-10)
    q = out.prob
    kl_cat = (
        sum(
            float(q[i, j] * (math.log(q[i, j] + EPS) - math.log(0.1)))
            for i in range(8)
            for j in range(10)
        )
        / 8
    )
    assert float(losses.categorical) == pytest.approx(kl_cat, rel=1e-10)
    assert losses.assigned[4:].tolist() == labels.tolist()
    ce = (
        sum(
            float(torch.logsumexp(out.logits[i], 0) - out.logits[i, losses.assigned[i]])
            for i in range(8)
        )
        / 8
    )
    assert float(losses.assignment) == pytest.approx(ce, rel=1e-10)
    total = bce + 1.1 * kl + 1.2 * kl_cat + 4.7 * ce + 0.85 * float(losses.metric)
    assert float(losses.total) == pytest.approx(total, rel=1e-10)


def test_adam_steps_as_tensorflow_1_computes_them():
    grads = [torch.tensor([0.3, -1e-9]), torch.tensor([-0.1, 2e-9]), torch.tensor([0.2, 1e-9])]
    param = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))
    optimizer = TFAdam([param], lr=0.01)
    m = v = torch.zeros(2, dtype=torch.float64)
    expected = param.detach().clone()
    for t, g in enumerate(grads, start=1):
        g = g.double()
        param.grad = g.clone()
        optimizer.step()
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        lr_t = 0.01 * math.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        expected -= lr_t * m / (v.sqrt() + 1e-8)
        assert torch.allclose(param.detach(), expected, rtol=0, atol=1e-15)


def _images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g), torch.arange(
        n
    ) % 10


def test_trainer_schedules_batches_and_a_learning_step():
    images, labels = _images(300)
    trainer = AuthorTrainer(images, labels, seed=0)
    assert trainer.steps_per_epoch == 3
    assert trainer.labeled_y.tolist() == sorted(trainer.labeled_y.tolist())  # class by class
    assert torch.bincount(trainer.labeled_y).tolist() == [10] * 10
    seen = torch.cat([trainer._unlabeled_batch() for _ in range(3)])
    assert sorted((seen * 255).round().sum(1).tolist()) == sorted(
        images.flatten(1).sum(1).double().tolist()
    )  # one pass: every image once
    trainer.step_count = 29 * trainer.steps_per_epoch  # epoch 29: the 30th, the first halving
    assert trainer.learning_rate() == pytest.approx(5e-3)
    assert trainer.temperature() == pytest.approx(math.exp(-0.00693 * 29))
    trainer.step_count = 500 * 3
    assert trainer.temperature() == 0.5
    trainer.step_count = 0
    totals = [float(trainer.step().total) for _ in range(8)]
    assert totals[-1] < totals[0]
    assert 0.0 <= trainer.accuracy(images[:50], labels[:50]) <= 1.0


def test_same_seed_same_training():
    images, labels = _images(300)
    runs = []
    for _ in range(2):
        trainer = AuthorTrainer(images, labels, seed=3, settings=AuthorSettings())
        runs.append([float(trainer.step().total) for _ in range(2)])
    assert runs[0] == runs[1]
