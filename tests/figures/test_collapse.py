"""``gmvae generate`` warns, with the measured cause, when a model cannot generate.

Three real models of the digits demo: with the Gaussian KL at weight 1 against the
per-pixel mean L_R it wins and q(z|x,y) settles on the prior (collapse); at the config's
1/64 but 10 epochs, z is used but p(z|y) has not yet learnt the categories (every row
draws the same blurred shapes); the config as it is (200 epochs) generates its classes.
"""

import json

import numpy as np
import pytest

from gmvae.cli import main
from gmvae.figures.collapse import MIN_CATEGORY_CONTRAST, category_contrast, generated_spread

from ..conftest import DEMO, QUIET


@pytest.fixture(scope="module")
def models(tmp_path_factory, demo_run):
    folder = tmp_path_factory.mktemp("models")
    out = {"generating": json.loads((demo_run / "metrics.json").read_text())["model_file"]}
    for name, options in (
        ("collapsed", ["--trainer.max_epochs", "5", "--model.loss.w_gaussian", "1.0"]),
        ("too short", ["--trainer.max_epochs", "10"]),
    ):
        run = folder / name.replace(" ", "-")
        main(["fit", "--config", DEMO, *options]
             + ["--trainer.default_root_dir", str(run), "--threads", "1", *QUIET])  # fmt: skip
        out[name] = json.loads((run / "metrics.json").read_text())["model_file"]
    return out


def generate(capsys, model, out) -> str:
    with pytest.raises(SystemExit) as done:
        main(["generate", str(model), "--out", str(out)])  # the data set named in the model
    assert done.value.code == 0 and out.is_file()
    return capsys.readouterr().err


def test_a_collapsed_model_is_named_with_its_measures(models, tmp_path, capsys):
    err = generate(capsys, models["collapsed"], tmp_path / "grid.png")
    assert "gmvae: warning: this model's z carries no information" in err
    assert "posterior collapse: 0 of 32 latent dimensions active" in err
    assert "nats per image on 599 images" in err  # the digits' test split


def test_rows_that_do_not_differ_by_category_are_named(models, tmp_path, capsys):
    err = generate(capsys, models["too short"], tmp_path / "grid.png")
    assert "carries no information" not in err
    assert "gmvae: warning: the rows hardly differ by category" in err


def test_the_demo_model_generates_without_a_warning(models, tmp_path, capsys):
    err = generate(capsys, models["generating"], tmp_path / "grid.png")
    assert "warning" not in err


def test_category_contrast_is_about_one_when_rows_share_one_distribution():
    rng = np.random.default_rng(0)
    alike = rng.random((10, 50, 1, 8, 8))
    assert 0.5 < category_contrast(alike) < 1.5 < MIN_CATEGORY_CONTRAST
    apart = alike + np.arange(10).reshape(10, 1, 1, 1, 1) / 10  # each row brighter
    assert category_contrast(apart) > 2 * MIN_CATEGORY_CONTRAST
    assert category_contrast(alike[:1]) is None and category_contrast(alike[:, :1]) is None


def test_images_that_do_not_differ_have_no_spread():
    same = np.full((10, 4, 1, 8, 8), 0.3)
    assert generated_spread(same) < 1e-12
    varied = np.random.default_rng(0).random((10, 4, 1, 8, 8))
    assert generated_spread(varied) > 0.2
