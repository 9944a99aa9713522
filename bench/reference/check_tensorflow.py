"""Check the PyTorch transcription against the author's TensorFlow graph on the same batch.

Builds the author's training graph with ``SSVAE.create_model`` from a checkout of
github.com/jariasf/semisupervised-vae-metric-embedding (its own files, run under
``tf.compat.v1``; only ``tf.contrib``'s lifted loss, gone from TensorFlow 2, is supplied
here, in TensorFlow ops as TensorFlow 1.x's ``metric_loss_ops.lifted_struct_loss``
computes it). Copies its initial weights into :class:`AuthorNetwork`, feeds both the
same MNIST batch and the same Gaussian and Gumbel noise, and prints, for a few Adam
steps, each loss term of both, the largest gradient difference and, at the end, the
largest weight and batch-norm statistic differences. Run it with TensorFlow installed
(``pip install tensorflow-cpu tf-keras``), in an environment that also has gmvae::

    TF_USE_LEGACY_KERAS=1 python bench/reference/check_tensorflow.py --author-code DIR
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import types
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # bench/: the reference package

from reference.losses import author_losses  # noqa: E402
from reference.network import AuthorNetwork  # noqa: E402
from reference.train import AuthorSettings, TFAdam, balanced_labeled, flat_float  # noqa: E402

TERMS = ("reconstruction", "gaussian", "categorical", "assignment", "metric", "total")
TF_TERMS = ("loss_rec", "loss_kl", "loss_kl_cat", "loss_assign", "loss_metric", "loss_total")


def tf_lifted_struct_loss(tf, labels, embeddings, margin=1.0):
    """TensorFlow 1.x contrib's lifted structured loss, op for op, in tf.compat.v1 ops."""
    labels = tf.reshape(labels, [-1, 1])
    squared = (
        tf.reduce_sum(tf.square(embeddings), axis=1, keepdims=True)
        + tf.reduce_sum(tf.square(tf.transpose(embeddings)), axis=0, keepdims=True)
        - 2.0 * tf.matmul(embeddings, tf.transpose(embeddings))
    )
    squared = tf.maximum(squared, 0.0)
    error = tf.cast(tf.less_equal(squared, 0.0), tf.float32)
    distances = tf.sqrt(squared + error * 1e-16) * (1.0 - error)
    n = tf.shape(embeddings)[0]
    distances = distances * (tf.ones_like(distances) - tf.linalg.diag(tf.ones([n])))
    adjacency = tf.equal(labels, tf.transpose(labels))
    diff = margin - distances
    mask = tf.cast(tf.logical_not(adjacency), tf.float32)
    row_min = tf.reduce_min(diff, 1, keepdims=True)
    row_neg_max = tf.reduce_max((diff - row_min) * mask, 1, keepdims=True) + row_min
    max_elements = tf.maximum(row_neg_max, tf.transpose(row_neg_max))
    diff_tiled, mask_tiled = tf.tile(diff, [n, 1]), tf.tile(mask, [n, 1])
    max_vect = tf.reshape(tf.transpose(max_elements), [-1, 1])
    left = tf.reshape(
        tf.reduce_sum(tf.exp(diff_tiled - max_vect) * mask_tiled, 1, keepdims=True), [n, n]
    )
    loss_mat = max_elements + tf.log(left + tf.transpose(left)) + distances
    positives = tf.cast(adjacency, tf.float32) - tf.linalg.diag(tf.ones([n]))
    count = tf.reduce_sum(positives) / 2.0
    return 0.25 * tf.reduce_sum(tf.square(tf.maximum(loss_mat * positives, 0.0))) / count


def _load(path: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def author_graph(author: Path, settings: AuthorSettings, batch: int, labeled: int):
    """The author's SSVAE and its training graph (``create_model(True, ...)``)."""
    import tensorflow as tf

    v1 = tf.compat.v1
    v1.disable_eager_execution()
    shim = types.SimpleNamespace(**{k: getattr(v1, k) for k in dir(v1) if not k.startswith("_")})
    lifted = types.SimpleNamespace(
        lifted_struct_loss=lambda *a, **k: tf_lifted_struct_loss(v1, *a, **k)
    )
    shim.contrib = types.SimpleNamespace(losses=types.SimpleNamespace(metric_learning=lifted))
    sys.path.insert(0, str(author))
    modules = {}
    for name, file in (
        ("networks.CatVAENetwork", "networks/CatVAENetwork.py"),
        ("losses.LossFunctions", "losses/LossFunctions.py"),
        ("utils.assignment", "utils/assignment.py"),
        ("utils.partition", "utils/partition.py"),
        ("model.SSVAE", "model/SSVAE.py"),
    ):
        modules[name] = _load(author / file, name)
        modules[name].tf = shim  # their `import tensorflow as tf`, as TensorFlow 1 was
    ssvae = modules["model.SSVAE"]
    ssvae.CatVAENetwork.tf = shim
    w = settings.weights
    params = types.SimpleNamespace(
        batch_size=batch, batch_size_val=200, temperature=1.0, decay_temperature=1,
        num_epochs=1, loss_type="bce", num_classes=10, w_gaussian=w.gaussian,
        w_categorical=w.categorical, w_reconstruction=w.reconstruction,
        decay_temp_rate=settings.decay_temp_rate, gaussian_size=settings.gaussian_size,
        feature_size=settings.feature_size, min_temperature=0.5, verbose=0,
        w_assign=w.assignment, num_labeled=settings.num_labeled, knn=w.knn,
        metric_loss="lifted", w_metric=w.metric, anneal_w_metric=0,
        learning_rate=settings.learning_rate, decay_epoch=settings.decay_epoch,
        lr_decay=settings.lr_decay, pretrain=0, num_labeled_batch=labeled, dataset="mnist",
        metric_margin=w.margin, hard_gumbel=0, gpu=0,
    )  # fmt: skip
    model = ssvae.SSVAE(params)
    inputs = {
        "data": v1.placeholder(tf.float32, [batch, 784]),
        "labels": v1.placeholder(tf.int64, [batch]),
        "labels_semisupervised": v1.placeholder(tf.int64, [labeled]),
    }
    spec = model.create_model(True, inputs, 784)
    return v1, model, spec


def _tf_variables(v1) -> list:
    """The model's variables in creation order, without Adam's slots and powers."""
    return [v for v in v1.global_variables() if "Adam" not in v.name and "power" not in v.name]


def copy_weights(session, variables, network: AuthorNetwork) -> None:
    """TensorFlow's values (kernels (H, W, in, out) / (H, W, out, in) / (in, out)) into PyTorch."""
    values = session.run(variables)
    targets = _torch_tensors(network)
    assert len(values) == len(targets), (len(values), len(targets))
    with torch.no_grad():
        for value, target in zip(values, targets, strict=True):
            target.copy_(torch.from_numpy(_torch_layout(value)))


def _noise_tensors(v1):
    """The draws of z's noise and of the Gumbel uniforms (U(0, 1) needs no shift or scale)."""
    names = {o.name: o for o in v1.get_default_graph().get_operations()}
    normal = names["encoder_cnn/random_normal"]
    uniform = (
        names.get("encoder_cnn/random_uniform") or names["encoder_cnn/random_uniform/RandomUniform"]
    )
    return normal.outputs[0], uniform.outputs[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--author-code", type=Path, required=True)
    parser.add_argument("--data-dir", default=os.environ.get("GMVAE_DATA_DIR", "../shared/data"))
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--temperature", type=float, default=0.8)
    args = parser.parse_args()
    from reference.train import load_mnist

    settings = AuthorSettings()
    batch, labeled = 200, settings.num_labeled
    train_x, train_y, _, _ = load_mnist(args.data_dir)
    rng = np.random.default_rng(0)
    labeled_idx = balanced_labeled(train_y.numpy(), labeled // 10, rng)
    x_labeled, y_labeled = flat_float(train_x[labeled_idx]), train_y[labeled_idx]

    v1, model, spec = author_graph(args.author_code, settings, batch, labeled)
    normal, uniform = _noise_tensors(v1)
    session = model.sess
    session.run(spec["variable_init_op"])
    torch.set_num_threads(1)
    network = AuthorNetwork(10, settings.feature_size, settings.gaussian_size)
    copy_weights(session, _tf_variables(v1), network)
    optimizer = TFAdam(network.parameters(), lr=settings.learning_rate)
    tf_grads = v1.gradients(spec["loss_total"], v1.trainable_variables())
    params = list(network.parameters())

    lr = settings.learning_rate
    for step in range(args.steps):
        copy_weights(session, _tf_variables(v1), network)  # every step from the same weights
        unlabeled = flat_float(train_x[torch.from_numpy(rng.choice(len(train_x), batch - labeled))])
        x = torch.cat([unlabeled, x_labeled])
        noise, u = torch.randn(batch, settings.gaussian_size), torch.rand(batch, 10)
        feed = {
            spec["data"]: x.numpy(),
            spec["labels"]: np.zeros(batch, np.int64),
            spec["labels_semisupervised"]: y_labeled.numpy(),
            model.network.temperature: args.temperature,
            model.w_metric: settings.weights.metric,
            model.learning_rate: lr,
            normal: noise.numpy(),
            uniform: u.numpy(),
        }
        fetches = [spec[k] for k in TF_TERMS] + [spec["predicted_labels"], *tf_grads]
        fetched = session.run(fetches, feed)
        tf_losses, tf_assigned, grads = fetched[:6], fetched[6], fetched[7:]
        session.run(spec["train_op"], feed)

        network.train()
        out = network(x, args.temperature, noise=noise, uniform=u)
        losses = author_losses(out, x, y_labeled, settings.weights)
        optimizer.zero_grad()
        losses.total.backward()
        same = bool((torch.from_numpy(tf_assigned) == losses.assigned).all())
        print(f"step {step + 1} (both from TensorFlow's weights): k-NN labels equal: {same}")
        for name, tf_value in zip(TERMS, tf_losses, strict=True):
            ours = float(getattr(losses, name).detach())
            diff = abs(ours - tf_value) / max(abs(tf_value), 1e-12)
            print(
                f"  {name:15s} tensorflow {tf_value:12.6f}  pytorch {ours:12.6f}  rel. diff {diff:.1e}"
            )
        tf_grad = [torch.from_numpy(_torch_layout(g)) for g in grads]
        scale = max(float(g.abs().max()) for g in tf_grad)
        zero = [i for i, g in enumerate(tf_grad) if float(g.abs().max()) < 1e-5 * scale]
        worst = max(
            _relative(g, p.grad)
            for i, (g, p) in enumerate(zip(tf_grad, params, strict=True))
            if i not in zero
        )
        print(
            f"  gradients: largest difference {worst:.1e} of the tensor's largest entry; "
            f"{len(zero)} tensors zero by construction (biases before batch norm), max |g| "
            f"{max((float(tf_grad[i].abs().max()) for i in zero), default=0):.1e}"
        )
        optimizer.step()
        if step == 0:  # Adam's first update and the batch-norm statistics, from the same state
            after = [torch.from_numpy(_torch_layout(v)) for v in session.run(_tf_variables(v1))]
            ours = _torch_tensors(network)
            stats = [i for i, t in enumerate(ours) if not t.requires_grad]
            param_index = [i for i, t in enumerate(ours) if t.requires_grad]
            update = 0.0
            for g, i in zip(tf_grad, param_index, strict=True):
                sure = g.abs() > 1e-3 * g.abs().max()  # rounding cannot flip these signs
                diff = (after[i] - ours[i].detach())[sure].abs()
                update = max(update, float(diff.max()) / lr if diff.numel() else 0.0)
            stat = max(_relative(after[i], ours[i].detach()) for i in stats)
            print(
                f"  Adam step: largest weight difference {update:.1e} x lr where the gradient is "
                f"not near 0; batch-norm running statistics: largest difference {stat:.1e}"
            )


def _torch_layout(value: np.ndarray) -> np.ndarray:
    if value.ndim == 4:
        return np.ascontiguousarray(value.transpose(3, 2, 0, 1))
    return np.ascontiguousarray(value.T) if value.ndim == 2 else value


def _torch_tensors(network: AuthorNetwork) -> list[torch.Tensor]:
    out = []
    for layer in network.modules():
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
            out += [layer.weight, layer.bias]
        elif isinstance(layer, torch.nn.BatchNorm2d):
            out += [layer.weight, layer.bias, layer.running_mean, layer.running_var]
    return out


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| over max |a| (one number per tensor)."""
    return float((a - b).abs().max() / a.abs().max().clamp_min(1e-12))


if __name__ == "__main__":
    main()
