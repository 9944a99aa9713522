"""``gmvae generate`` warns, with the measured cause, when a model's z carries no information.

Two real models of the digits demo, trained alike but for the weight of the Gaussian KL:
at the config's weight it wins and q(z|x,y) settles on the prior (collapse); at 1/64 (the
ELBO's own balance against the per-pixel mean L_R of the 8x8 images) z stays informative.
"""

import json

import numpy as np
import pytest

from gmvae.cli import main
from gmvae.figures.collapse import generated_spread

from ..conftest import DEMO, QUIET


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    out = {}
    for name, w_gaussian in (("collapsed", "1.0"), ("informative", "0.015625")):
        run = folder / name
        main(
            ["fit", "--config", DEMO, "--trainer.max_epochs", "5", "--model.loss.w_gaussian"]
            + [w_gaussian, "--trainer.default_root_dir", str(run), "--threads", "1", *QUIET]
        )
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


def test_an_informative_model_generates_without_a_warning(models, tmp_path, capsys):
    err = generate(capsys, models["informative"], tmp_path / "grid.png")
    assert "warning" not in err


def test_images_that_do_not_differ_have_no_spread():
    same = np.full((10, 4, 1, 8, 8), 0.3)
    assert generated_spread(same) < 1e-12
    varied = np.random.default_rng(0).random((10, 4, 1, 8, 8))
    assert generated_spread(varied) > 0.2
