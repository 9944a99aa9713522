import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
DEMO = str(REPO / "configs" / "digits-demo.yaml")  # the offline digits demo
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
# A small MLP GMVAE for the 8x8 digits, for tests that drive a Trainer by hand.
TINY_NETWORK = {"network": "mlp", "feature_size": 16, "latent_size": 8, "mlp_hidden_size": 32}


def bare_trainer(tmp_path, **options):
    """A Lightning Trainer that trains only: no validation, logger, checkpoints or output."""
    import lightning as L

    defaults = dict(
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        default_root_dir=tmp_path,
    )
    return L.Trainer(**{**defaults, **options})


# Read once: tests run with GMVAE_DATA_DIR unset, so that only real_data_dir sees it.
_REAL_DATA_DIR = os.environ.get("GMVAE_DATA_DIR")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """No test reads the user's cache or $GMVAE_DATA_DIR: the cache points into tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("GMVAE_DATA_DIR", raising=False)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """The run directory of the README's first command, ``gmvae fit --config
    configs/digits-demo.yaml`` (its 200 epochs, one thread), trained once for the tests
    that read it."""
    from gmvae.cli.app import main

    run = tmp_path_factory.mktemp("digits-demo")
    main(
        ["fit", "--config", DEMO, "--trainer.default_root_dir", str(run), "--threads", "1", *QUIET]
    )
    return run


@pytest.fixture
def two_threads():
    """The stride-2 layers take their block matmuls only with two threads or more."""
    threads = torch.get_num_threads()
    torch.set_num_threads(max(threads, 2))
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def real_data_dir() -> Path:
    """A folder holding mnist/ (CI sets GMVAE_DATA_DIR to ../shared/data)."""
    for candidate in (_REAL_DATA_DIR, REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "mnist" / "train-labels-idx1-ubyte.gz").is_file():
            return Path(candidate)
    pytest.skip("MNIST files not available (set GMVAE_DATA_DIR)")
