"""Every experiment of ``gmvae reproduce`` parses: its config and overrides are valid
``gmvae fit`` options, and a ``-paper`` variant gives back the paper's setting."""

from __future__ import annotations

import pytest
import yaml

from gmvae.cli.app import main
from gmvae.reproduce.experiments import EXPERIMENTS

from ..conftest import REPO


def _parsed(capsys, name: str) -> dict:
    experiment = EXPERIMENTS[name]
    config = str(REPO / "configs" / experiment.config)
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--config", config, *experiment.overrides, "--print_config"])
    assert exc.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_every_experiment_parses_as_gmvae_fit_options(capsys, name):
    assert _parsed(capsys, name)["model"]["network"]["network"] in ("conv", "mlp")


def test_fashion_100_shifts_its_images_and_the_paper_variant_does_not(capsys):
    assert _parsed(capsys, "fashion-100")["model"]["augment_shift"] == 2
    assert _parsed(capsys, "fashion-100-paper")["model"]["augment_shift"] == 0
