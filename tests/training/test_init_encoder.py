"""``model.init_encoder``: the encoder starts from a saved model's, the rest at random, and
an encoder of another shape is refused before anything is trained or written."""

from __future__ import annotations

import pytest
import torch

from gmvae.cli.app import main
from gmvae.config import NetworkConfig
from gmvae.errors import ConfigError
from gmvae.io.model_file import ModelCard, save_model
from gmvae.model.gmvae import GMVAE
from gmvae.training.module import GMVAEModule

from ..conftest import DEMO, QUIET

SHAPE = (1, 8, 8)


def _network(**sizes) -> NetworkConfig:
    return NetworkConfig(network="mlp", mlp_hidden_size=32, **{"feature_size": 16, **sizes})


def _saved(tmp_path, network: NetworkConfig):
    torch.manual_seed(1)
    source = GMVAE(SHAPE, 10, network)
    path = save_model(tmp_path / "clusters.safetensors", source, ModelCard(SHAPE, 10, network))
    return source, path


def test_the_encoder_is_copied_and_the_other_layers_start_fresh(tmp_path):
    # The saved model has another latent size, as a clustering model often has.
    source, path = _saved(tmp_path, _network(latent_size=4))
    torch.manual_seed(2)
    module = GMVAEModule(SHAPE, 10, _network(latent_size=8), init_encoder=str(path))
    copied = module.model.encoder.state_dict()
    for name, tensor in source.encoder.state_dict().items():
        torch.testing.assert_close(copied[name], tensor, msg=name)
    assert not torch.equal(module.model.q_y[0].weight, source.q_y[0].weight)
    assert module.hparams["init_encoder"] == str(path)
    torch.manual_seed(2)
    fresh = GMVAEModule(SHAPE, 10, _network(latent_size=8)).model.encoder.state_dict()
    first = next(k for k in fresh if k.endswith("weight"))
    assert not torch.equal(fresh[first], copied[first])


def test_an_encoder_of_another_feature_size_is_refused(tmp_path):
    _, path = _saved(tmp_path, _network(feature_size=12, latent_size=4))
    with pytest.raises(ConfigError, match=r"model.init_encoder=.*does not fit this config's"):
        GMVAEModule(SHAPE, 10, _network(latent_size=8), init_encoder=str(path))


def test_fit_with_a_missing_encoder_file_fails_before_writing(capsys, tmp_path):
    missing = tmp_path / "nowhere" / "model.safetensors"
    with pytest.raises(SystemExit) as exc:
        main(
            ["fit", "--config", DEMO, "--model.init_encoder", str(missing)]
            + ["--trainer.default_root_dir", str(tmp_path / "run"), *QUIET]
        )
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert (
        "Traceback" not in err
        and "gmvae: error:" in err
        and "nowhere/model.safetensors: no such file" in err
    )
    assert not (tmp_path / "run").exists()
