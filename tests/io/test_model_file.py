"""Loading a model file never runs code from it: a pickle payload under a model's name
is refused with a DataError, and its side effect never happens."""

from __future__ import annotations

import pickle

import pytest
import torch

from gmvae.config import NetworkConfig
from gmvae.errors import DataError
from gmvae.io.model_file import ModelCard, load_model, save_model
from gmvae.model.gmvae import GMVAE


class _Payload:
    """Unpickling this creates a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _saved(tmp_path):
    config = NetworkConfig(network="mlp", feature_size=8, latent_size=4, mlp_hidden_size=16)
    model = GMVAE((1, 8, 8), 10, config)
    return save_model(tmp_path / "model.safetensors", model, ModelCard((1, 8, 8), 10, config))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_a_model_file_holding_a_pickle_payload_is_refused_not_run(tmp_path, writer):
    path = _saved(tmp_path)
    assert load_model(path)[1].num_classes == 10  # the genuine file loads
    marker = tmp_path / "pwned"
    if writer == "pickle":
        path.write_bytes(pickle.dumps({"w": _Payload(str(marker))}))
    else:
        torch.save({"w": _Payload(str(marker))}, path)
    with pytest.raises(DataError, match="not a readable safetensors file"):
        load_model(path)
    assert not marker.exists()
