"""generate / embed / reconstruct / curves on a tiny digits model trained once per session."""

import json

import matplotlib.image
import numpy as np
import pytest
import torch

from gmvae.cli.app import main
from gmvae.data import load_split
from gmvae.data.arrays import to_float
from gmvae.figures.arrays import epoch_metrics
from gmvae.figures.plotting import grid_figsize
from gmvae.io.model_file import load_model

from ..conftest import REPO

DEMO = str(REPO / "configs" / "digits-demo.yaml")
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """The run directory of `gmvae fit --config configs/digits-demo.yaml --trainer.max_epochs 2`."""
    run = tmp_path_factory.mktemp("digits-run")
    args = ["fit", "--config", DEMO, "--trainer.max_epochs", "2"]
    main([*args, "--trainer.default_root_dir", str(run), *QUIET])
    return run


@pytest.fixture
def model_file(digits_run):
    return json.loads((digits_run / "metrics.json").read_text())["model_file"]


def run_tool(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return exit_info.value.code


def read_png(path) -> np.ndarray:
    """(H, W, channels) floats; fails on anything that is not a readable PNG."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image[..., :3].std() > 0.01, "blank image"
    return image


@pytest.mark.slow
def test_generate_writes_one_row_per_category(model_file, tmp_path):
    out = tmp_path / "grid.png"
    assert run_tool("generate", model_file, "--out", str(out), "--per-class", "4") == 0
    assert grid_figsize(10, 4) == (3.3, 5.4)
    assert read_png(out).shape[:2] == (540, 330)  # (H, W) at 100 dpi
    data = np.load(tmp_path / "grid.npz")
    assert data["images"].shape == (10, 4, 1, 8, 8)
    assert data["images"].min() >= 0.0 and data["images"].max() <= 1.0
    assert list(data["row_labels"]) == [str(d) for d in range(10)]
    # Rows come from different p(z|y): they are not all the same picture.
    row_means = data["images"].mean(axis=1)
    assert np.abs(row_means - row_means.mean(axis=0)).max() > 1e-3


@pytest.mark.slow
def test_outputs_are_not_overwritten_without_force(model_file, tmp_path, capsys):
    out = tmp_path / "grid.png"
    out.write_bytes(b"mine")
    assert run_tool("generate", model_file, "--out", str(out)) == 2
    assert "pass --force" in capsys.readouterr().err and out.read_bytes() == b"mine"
    assert run_tool("generate", model_file, "--out", str(out), "--force", "--dpi", "50") == 0
    assert read_png(out).shape[:2] == (270, 315)  # 10 rows x 10 images at 50 dpi
    assert run_tool("generate", model_file, "--out", str(tmp_path / "grid.jpg")) == 2


@pytest.mark.slow
def test_reconstruct_pairs_test_images_with_reconstructions(model_file, tmp_path):
    out = tmp_path / "recon.png"
    args = ["reconstruct", model_file, "--out", str(out), "--count", "6", "--columns", "3"]
    assert run_tool(*args) == 0
    assert read_png(out).shape[:2] == (240, 280)  # 2 x (original, reconstruction) rows, 3 columns
    data = np.load(tmp_path / "recon.npz")
    test = load_split("digits", "test")
    np.testing.assert_array_equal(data["originals"], to_float(test.images[data["indices"]]).numpy())
    np.testing.assert_array_equal(data["labels"], test.labels[data["indices"]].numpy())
    assert data["reconstructions"].shape == (6, 1, 8, 8)
    # Eval mode: y = softmax, z = posterior mean, batch norm on running statistics, so the
    # reconstruction of an image does not depend on what else is in its batch.
    model, _ = load_model(model_file)
    with torch.inference_mode():
        alone = model(to_float(test.images[data["indices"][:1]])).reconstruction.numpy()
    np.testing.assert_allclose(data["reconstructions"][:1], alone, atol=1e-6)


@pytest.mark.slow
def test_embed_writes_a_tsne_of_the_test_features(model_file, tmp_path):
    out = tmp_path / "tsne.png"
    assert run_tool("embed", model_file, "--out", str(out), "--max-points", "200") == 0
    assert read_png(out).shape[:2] == (650, 800)
    rows = (tmp_path / "tsne.csv").read_text().splitlines()
    assert rows[0] == "index,label,x,y" and len(rows) == 201
    index, label = np.array([[int(c) for c in r.split(",")[:2]] for r in rows[1:]]).T
    np.testing.assert_array_equal(label, load_split("digits", "test").labels[index].numpy())
    points = np.array([[float(c) for c in r.split(",")[2:]] for r in rows[1:]])
    assert np.isfinite(points).all() and points.std(0).min() > 0


def test_embed_names_a_missing_data_set(tmp_path, capsys):
    # A model file without its data set recorded, and no --dataset: one clear error.
    from gmvae.config import NetworkConfig
    from gmvae.io.model_file import ModelCard, save_model
    from gmvae.model.gmvae import GMVAE

    card = ModelCard((1, 8, 8), 10, NetworkConfig(network="mlp", mlp_hidden_size=8))
    path = save_model(tmp_path / "m.safetensors", GMVAE((1, 8, 8), 10, card.network), card)
    assert run_tool("embed", str(path), "--out", str(tmp_path / "t.png")) == 2
    assert "--dataset" in capsys.readouterr().err


@pytest.mark.slow
def test_curves_plot_every_logged_term_per_epoch(digits_run, tmp_path):
    out = tmp_path / "curves.png"
    assert run_tool("curves", str(digits_run), "--out", str(out)) == 0
    # 10 panels (6 loss terms, temperature, lr, val/accuracy, val/loss): 4 rows x 3 of 4 x 2.8 in.
    assert read_png(out).shape[:2] == (1120, 1200)
    header, *rows = (tmp_path / "curves.csv").read_text().splitlines()
    assert header.split(",") == [
        "epoch",
        "train/assignment",
        "train/categorical",
        "train/gaussian",
        "train/lr",
        "train/metric",
        "train/reconstruction",
        "train/temperature",
        "train/total",
        "val/accuracy",
        "val/loss",
    ]
    assert [r.split(",")[0] for r in rows] == ["0", "1"]
    assert all("" not in r.split(",") for r in rows)  # train and val lines were merged


def test_epoch_metrics_merges_the_lines_of_one_epoch(tmp_path):
    csv = tmp_path / "metrics.csv"
    csv.write_text(
        "epoch,step,train/total,val/accuracy,test/accuracy\n"
        "0,9,,0.5,\n"
        "0,9,3.0,,\n"
        "1,19,2.0,,\n"
        "1,19,,,0.9\n"
        "2,19,,,0.9\n"  # the test after fit: no epoch of its own in the curves
    )
    epochs, series = epoch_metrics(csv)
    assert epochs.tolist() == [0, 1]
    assert series["train/total"].tolist() == [3.0, 2.0]
    assert series["val/accuracy"][0] == 0.5 and np.isnan(series["val/accuracy"][1])
    assert "test/accuracy" not in series


def test_curves_on_a_folder_without_metrics_is_a_clear_error(tmp_path, capsys):
    assert run_tool("curves", str(tmp_path), "--out", str(tmp_path / "c.png")) == 2
    assert "metrics.csv: missing" in capsys.readouterr().err
