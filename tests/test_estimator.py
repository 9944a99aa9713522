"""GMVAEClassifier: the scikit-learn contract, learning from 50 labels, files, the docstring."""

import doctest
import json

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import train_test_split

import gmvae.estimator
from gmvae.errors import ConfigError, DataError
from gmvae.estimator import GMVAEClassifier
from gmvae.training.module import GMVAEModule

SMALL = dict(feature_size=64, latent_size=32, mlp_hidden_size=256, knn_k=3, batch_size=64)


@pytest.fixture(scope="module")
def digits():
    """Digits (N, 8, 8) in [0, 1]: a stratified third held out; 5 labels per class kept."""
    data = load_digits()
    x, y = data.images / 16.0, data.target
    train, test = train_test_split(np.arange(len(y)), test_size=1 / 3, stratify=y, random_state=0)
    rng = np.random.default_rng(0)
    few = np.full(len(train), -1)
    for c in range(10):
        chosen = rng.choice(np.flatnonzero(y[train] == c), 5, replace=False)
        few[chosen] = c
    return x[train], few, x[test], y[test]


@pytest.fixture(scope="module")
def fitted(digits):
    x, few, _, _ = digits
    return GMVAEClassifier(max_epochs=20, random_state=0, **SMALL).fit(x, few)


@pytest.mark.slow
def test_fifty_labels_predict_held_out_digits(fitted, digits):
    _, few, x_test, y_test = digits
    assert (few >= 0).sum() == 50
    accuracy = fitted.score(x_test, y_test)
    assert accuracy >= 0.85, accuracy
    proba = fitted.predict_proba(x_test)
    assert proba.shape == (len(x_test), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert (fitted.predict(x_test) == fitted.classes_[proba.argmax(axis=1)]).all()
    assert fitted.best_epoch_ is not None and len(fitted.history_) == 20
    assert {"train/assignment", "train/metric", "val/loss"} <= set(fitted.history_[-1])


def test_features_and_samples_have_the_callers_shapes(fitted, digits):
    x_test = digits[2]
    assert fitted.transform(x_test[:7]).shape == (7, 64)
    images = fitted.sample(5, category=3, random_state=1)
    assert images.shape == (5, 8, 8) and images.min() >= 0 and images.max() <= 1
    np.testing.assert_array_equal(images, fitted.sample(5, category=3, random_state=1))
    with pytest.raises(ValueError, match="not one of"):
        fitted.sample(1, category=11)
    with pytest.raises(DataError, match="do not fit"):
        fitted.predict(np.zeros((2, 7, 7)))


def test_get_params_and_clone_follow_the_sklearn_contract(fitted):
    params = fitted.get_params()
    assert params["max_epochs"] == 20 and params["knn_k"] == 3 and params["random_state"] == 0
    twin = clone(fitted)
    assert twin.get_params() == params and twin is not fitted
    assert not hasattr(twin, "model_")
    with pytest.raises(NotFittedError):
        twin.predict(np.zeros((1, 8, 8)))
    assert twin.set_params(lr=0.01).lr == 0.01 and fitted.lr == 1e-3


@pytest.mark.parametrize("method", ["predict", "predict_proba", "transform", "score", "save"])
def test_use_before_fit_raises_not_fitted(method, tmp_path):
    args = {
        "predict": (np.zeros((1, 8, 8)),),
        "predict_proba": (np.zeros((1, 8, 8)),),
        "transform": (np.zeros((1, 8, 8)),),
        "score": (np.zeros((1, 8, 8)), np.zeros(1)),
        "save": (tmp_path / "m.safetensors",),
    }[method]
    with pytest.raises(NotFittedError):
        getattr(GMVAEClassifier(), method)(*args)


def test_save_and_load_give_identical_predictions(fitted, digits, tmp_path):
    x_test = digits[2]
    path = fitted.save(tmp_path / "digits.safetensors")
    assert json.loads(path.with_suffix(".json").read_text())["extra"]["estimator"][
        "classes"
    ] == list(range(10))
    loaded = GMVAEClassifier.load(path)
    assert loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(loaded.classes_, fitted.classes_)
    np.testing.assert_array_equal(loaded.predict_proba(x_test), fitted.predict_proba(x_test))
    np.testing.assert_array_equal(loaded.predict(x_test), fitted.predict(x_test))
    np.testing.assert_array_equal(loaded.transform(x_test), fitted.transform(x_test))


def test_any_integer_labels_and_channels_last_uint8_images():
    data = load_digits()
    x = np.repeat(data.images[:300, :, :, None], 3, axis=3)  # (300, 8, 8, 3)
    x = (x * 255 / 16).astype(np.uint8)
    y = np.where(np.arange(300) < 100, data.target[:300] * 10 + 5, -1)  # labels 5, 15, ..., 95
    clf = GMVAEClassifier(max_epochs=1, random_state=0, **SMALL).fit(x, y)
    assert clf.classes_.tolist() == list(range(5, 100, 10))
    assert set(clf.predict(x[:50])) <= set(clf.classes_)
    assert clf.image_shape_ == (3, 8, 8)
    assert clf.sample(2, category=35).shape == (2, 8, 8, 3)


def test_all_unlabeled_rows_cluster(digits):
    x = digits[0][:300]
    with pytest.raises(ConfigError, match="n_classes"):
        GMVAEClassifier(max_epochs=1).fit(x, np.full(len(x), -1))
    clf = GMVAEClassifier(n_classes=10, max_epochs=2, random_state=0, **SMALL).fit(x)
    assert clf.classes_.tolist() == list(range(10))
    assert set(clf.predict(x)) <= set(range(10))
    last = clf.history_[-1]
    assert "train/assignment" not in last and "train/metric" not in last  # auxiliary losses off
    assert "val/loss" in last


@pytest.mark.parametrize(
    "y,match",
    [
        (np.full(5, 0.5), "integers"),
        (np.zeros(4), "shape"),
        (np.array([0, 0, -1, -1, -1]), "2 classes"),
    ],
)
def test_bad_labels_are_refused(y, match):
    with pytest.raises(GMVAEErrorTypes, match=match):
        GMVAEClassifier(max_epochs=1).fit(np.zeros((5, 8, 8)), y)


GMVAEErrorTypes = (ConfigError, DataError)


def test_pseudo_label_warmup_reaches_the_loss_config(digits):
    x, few, _, _ = digits
    with pytest.raises(ConfigError, match="pseudo_label_warmup"):
        GMVAEClassifier(max_epochs=1, pseudo_label_warmup=-1.0, **SMALL).fit(x, few)


def test_reconstruction_reduction_reaches_the_loss_config(digits):
    x, few, _, _ = digits
    with pytest.raises(ConfigError, match="reconstruction_reduction"):
        GMVAEClassifier(max_epochs=1, reconstruction_reduction="max", **SMALL).fit(x, few)


def test_the_docstring_example_runs():
    result = doctest.testmod(
        gmvae.estimator, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted >= 8 and result.failed == 0


def test_threads_fixes_the_count_while_fitting_and_restores_it(digits, monkeypatch):
    x, few, _, _ = digits
    with pytest.raises(ConfigError, match="'auto' or a whole number"):
        GMVAEClassifier(max_epochs=1, threads=0, **SMALL).fit(x, few)
    seen = []
    original = GMVAEModule.training_step

    def spy(self, batch, batch_idx):
        seen.append(torch.get_num_threads())
        return original(self, batch, batch_idx)

    monkeypatch.setattr(GMVAEModule, "training_step", spy)
    before = torch.get_num_threads()
    target = 2 if before == 1 else 1
    GMVAEClassifier(max_epochs=1, threads=target, random_state=0, **SMALL).fit(x, few)
    assert seen and set(seen) == {target}
    assert torch.get_num_threads() == before


def test_every_config_field_is_an_option_of_the_same_name():
    """The model and loss options are derived from the configs, not copied by hand."""
    import dataclasses

    from gmvae.config import LossConfig, NetworkConfig, TemperatureConfig

    params = GMVAEClassifier().get_params()
    for cls, prefix in ((NetworkConfig, ""), (LossConfig, ""), (TemperatureConfig, "temperature_")):
        for field in dataclasses.fields(cls):
            assert prefix + field.name in params, field.name
    assert {"w_reconstruction", "metric", "labeled_generative", "pseudo_labels"} <= set(params)
    with pytest.raises(TypeError, match="hidden_size"):
        GMVAEClassifier(hidden_size=3)


def test_the_options_reach_the_configs():
    clf = GMVAEClassifier(
        w_reconstruction=0.5,
        labeled_generative=False,
        mlp_hidden_size=7,
        temperature_hard=True,
        metric_kwargs={"margin": 0.1},
        max_epochs=8,
    )
    network, loss, temperature = clf._configs(clustering=False)
    assert network.mlp_hidden_size == 7
    assert loss.w_reconstruction == 0.5 and loss.labeled_generative is False
    assert loss.metric_kwargs == {"margin": 0.1}
    assert temperature.hard is True and temperature.epochs == 2  # a quarter of max_epochs
    _, clustering_loss, _ = clf._configs(clustering=True)
    assert clustering_loss.w_assignment == clustering_loss.w_metric == 0.0


def test_fit_trains_on_the_trainer_of_gmvae_fit(digits, monkeypatch):
    """The same precision, guards, random state and checkpoint IO as `gmvae fit`."""
    from gmvae.io.checkpoint import SafeCheckpointIO
    from gmvae.runs.guard import NonFiniteLossGuard
    from gmvae.runs.rng_state import RNGState
    from gmvae.training.precision import fastest_precision

    built = []
    original = gmvae.estimator.build_trainer

    def spy(**options):
        built.append(original(**options))
        return built[-1]

    monkeypatch.setattr(gmvae.estimator, "build_trainer", spy)
    x, few, _, _ = digits
    GMVAEClassifier(max_epochs=1, random_state=0, **SMALL).fit(x, few)
    (trainer,) = built
    assert trainer.precision == fastest_precision()
    assert {NonFiniteLossGuard, RNGState} <= {type(c) for c in trainer.callbacks}
    assert isinstance(trainer.strategy.checkpoint_io, SafeCheckpointIO)


def test_real_valued_features_are_scaled_by_the_range_learned_at_fit(digits):
    x, few, x_test, _ = digits
    x = x.reshape(len(x), -1)
    x[0, 0], x[1, 0] = 0.0, 1.0  # the range is exactly [0, 1]
    x_test = x_test.reshape(len(x_test), -1)
    plain = GMVAEClassifier(max_epochs=1, random_state=0, precision="32-true", **SMALL)
    plain.fit(x, few)
    assert plain.scaling_ is None
    shifted = GMVAEClassifier(max_epochs=1, random_state=0, precision="32-true", **SMALL)
    shifted.fit(x * 255.0 - 10.0, few)
    assert float(shifted.scaling_.offset) == -10.0 and float(shifted.scaling_.scale) == 255.0
    np.testing.assert_allclose(
        shifted.predict_proba(x_test * 255.0 - 10.0), plain.predict_proba(x_test), atol=1e-4
    )
    samples = shifted.sample(3, category=0, random_state=0)
    assert samples.min() >= -10.0 and samples.max() <= 245.0 and samples.max() > 1.0
    per_feature = GMVAEClassifier(scaling="feature").set_params(max_epochs=1, **SMALL)
    per_feature.fit(x * np.arange(1, 65) - 3.0, few)
    assert per_feature.scaling_.offset.shape == (64,)
    with pytest.raises(DataError, match="values lie in"):
        GMVAEClassifier(scaling="none", max_epochs=1).fit(x * 2.0, few)
    with pytest.raises(ConfigError, match="scaling"):
        GMVAEClassifier(scaling="minmax", max_epochs=1).fit(x, few)


def test_sparse_input_is_refused_clearly():
    import scipy.sparse

    with pytest.raises(TypeError, match="[Ss]parse"):
        GMVAEClassifier(max_epochs=1).fit(scipy.sparse.csr_matrix(np.eye(4)), [0, 1, 0, 1])


def test_suggest_picks_digits_of_most_classes_and_skips_labeled_rows(fitted, digits):
    _, _, x_test, y_test = digits
    picks = fitted.suggest(x_test, 10, random_state=0)
    assert (
        len(set(picks.tolist())) == 10
        and (picks == fitted.suggest(x_test, 10, random_state=0)).all()
    )
    assert len(set(y_test[picks])) >= 8  # 10 random picks cover 6.5 classes on average
    known = np.where(np.arange(len(y_test)) < 300, y_test, -1)
    more = fitted.suggest(x_test, 10, known, random_state=0)
    assert (more >= 300).all()
    with pytest.raises(ConfigError, match="only 299 unlabeled"):
        fitted.suggest(x_test, 300, known)
