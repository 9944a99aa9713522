"""``model.augment_shift``: each training image moves by its own offset within the bound,
evaluation sees the images as they are, and a bound the image cannot hold is refused."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch

from gmvae.cli.app import main
from gmvae.data.augment import check_shift, random_shift
from gmvae.errors import ConfigError
from gmvae.training.datamodule import GMVAEDataModule
from gmvae.training.module import GMVAEModule

from ..conftest import DEMO, QUIET, TINY_NETWORK, bare_trainer


def _offset_of(shifted: torch.Tensor, image: torch.Tensor, bound: int) -> tuple[int, int]:
    """The (dy, dx) that turns ``image`` (C, H, W) into ``shifted`` with edge fill."""
    padded = torch.nn.functional.pad(image[None], (bound,) * 4, mode="replicate")[0]
    height, width = image.shape[1:]
    found = [
        (dy - bound, dx - bound)
        for dy in range(2 * bound + 1)
        for dx in range(2 * bound + 1)
        if torch.equal(padded[:, dy : dy + height, dx : dx + width], shifted)
    ]
    assert found, "the output is not a shift of the input"
    return found[0]


def test_every_image_is_a_shift_of_its_own_within_the_bound():
    torch.manual_seed(0)
    x = torch.rand(64, 3, 9, 7).contiguous(memory_format=torch.channels_last)
    out = random_shift(x, 2)
    assert out.shape == x.shape and out.is_contiguous(memory_format=torch.channels_last)
    offsets = {_offset_of(out[i], x[i], 2) for i in range(len(x))}
    assert all(abs(dy) <= 2 and abs(dx) <= 2 for dy, dx in offsets)
    assert len(offsets) > 10  # drawn per image, not one offset for the batch
    assert random_shift(x, 0) is x


@pytest.mark.parametrize("bad", [-1, 1.5, True, 4, "2", None, float("nan"), float("inf")])
def test_a_bound_the_image_cannot_hold_is_refused(bad):
    with pytest.raises(ConfigError, match="augment_shift"):
        check_shift(bad, (1, 8, 8))
    assert check_shift(3, (1, 8, 8)) == 3
    assert check_shift(np.int64(2), (1, 8, 8)) == 2 and check_shift(2.0, (1, 8, 8)) == 2


class _Inputs(L.Callback):
    """The images the encoder sees in training and in validation."""

    def __init__(self) -> None:
        self.seen: dict[str, list[torch.Tensor]] = {"train": [], "val": []}

    def on_fit_start(self, trainer, pl_module) -> None:
        def record(_, args):
            stage = "train" if pl_module.training else "val"
            self.seen[stage].append(args[0].detach().clone())

        pl_module.model.encoder.register_forward_pre_hook(record)


def _encoder_inputs(tmp_path, shift: int) -> dict[str, list[torch.Tensor]]:
    L.seed_everything(0)
    dm = GMVAEDataModule(
        "digits", num_labeled=50, unlabeled_batch_size=64, labeled_batch_size=50, seed=0
    )
    module = GMVAEModule((1, 8, 8), 10, network=TINY_NETWORK, augment_shift=shift)
    recorder = _Inputs()
    trainer = bare_trainer(
        tmp_path, max_steps=1, callbacks=[recorder], limit_val_batches=1, val_check_interval=1
    )
    trainer.fit(module, datamodule=dm)
    return recorder.seen


def test_training_sees_shifted_images_and_validation_the_images_as_they_are(tmp_path):
    plain = _encoder_inputs(tmp_path / "plain", 0)
    shifted = _encoder_inputs(tmp_path / "shifted", 2)
    assert not torch.equal(plain["train"][0], shifted["train"][0])
    assert plain["val"] and torch.equal(plain["val"][-1], shifted["val"][-1])


def test_fit_with_a_bound_too_large_fails_before_writing(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(
            ["fit", "--config", DEMO, "--model.augment_shift", "4"]
            + ["--trainer.default_root_dir", str(tmp_path / "run"), *QUIET]
        )
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "augment_shift=4 must be below half" in err
    assert not (tmp_path / "run").exists()
