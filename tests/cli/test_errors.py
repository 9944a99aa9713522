"""Bad input, as a user meets it on the command line: one clear ``gmvae: error:`` naming the
file or option, exit status 2, no traceback, nothing of the user's overwritten.

Each test runs the real CLI in-process (no training happens: every error is found at
parse time or while the data is set up) on tiny files the test writes itself.
"""

from __future__ import annotations

import dataclasses
import gzip

import numpy as np
import pytest
import scipy.io

from gmvae.cli.app import main
from gmvae.data import registry
from gmvae.data.locate import RemoteFile
from gmvae.errors import ConfigError

from ..conftest import DEMO, QUIET, REPO
from ..data.image_folder import digit_image, write_digit_folder
from ..data.writers import idx_bytes, write_idx, write_mnist_like, write_svhn_mat

MNIST = str(REPO / "configs" / "mnist-100.yaml")
SVHN = str(REPO / "configs" / "svhn-1000.yaml")
FOLDER = str(REPO / "configs" / "folder.yaml")


def fails(capsys, tmp_path, *args: str) -> str:
    """Run ``gmvae fit ...``; assert exit status 2 and return the error line(s)."""
    with pytest.raises(SystemExit) as exc:
        main(["fit", *args, "--trainer.default_root_dir", str(tmp_path / "run"), *QUIET])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("gmvae: error:")]
    assert len(lines) == 1, err
    return err[err.index("gmvae: error:") :]


def _mnist_files(tmp_path, **replace: np.ndarray):
    """A data dir with tiny MNIST-format files; ``replace`` swaps one array by file stem."""
    write_mnist_like(tmp_path / "data")
    for stem, array in replace.items():
        write_idx(tmp_path / "data" / "mnist" / f"{stem}.gz", array)
    return ["--data.data_dir", str(tmp_path / "data"), "--data.download", "false"]


def test_truncated_gz_names_the_file(capsys, tmp_path):
    data = _mnist_files(tmp_path)
    path = tmp_path / "data" / "mnist" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:200])
    err = fails(capsys, tmp_path, "--config", MNIST, *data)
    assert str(path) in err and "cannot read" in err


def test_idx_with_a_wrong_size_names_the_file(capsys, tmp_path):
    data = _mnist_files(tmp_path)
    path = tmp_path / "data" / "mnist" / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(60) % 10)[:-7]))
    err = fails(capsys, tmp_path, "--config", MNIST, *data)
    assert str(path) in err and "truncated" in err


def test_corrupt_idx_header_names_the_file(capsys, tmp_path):
    data = _mnist_files(tmp_path)
    path = tmp_path / "data" / "mnist" / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x0b\x03" + bytes(12)))
    err = fails(capsys, tmp_path, "--config", MNIST, *data)
    assert str(path) in err and "only unsigned byte" in err


def test_corrupt_mat_names_the_file(capsys, tmp_path):
    write_svhn_mat(tmp_path / "data" / "svhn" / "test_32x32.mat", n=10)  # fit checks it first
    path = write_svhn_mat(tmp_path / "data" / "svhn" / "train_32x32.mat", n=20)
    path.write_bytes(path.read_bytes()[:300])
    err = fails(capsys, tmp_path, "--config", SVHN, "--data.data_dir", str(tmp_path / "data"))
    assert str(path) in err and "not a readable MAT v5 file" in err


def test_checksum_mismatch_after_download(capsys, tmp_path, monkeypatch):
    """A real download (file:// URL) whose bytes do not match the published checksum."""
    mirror = tmp_path / "mirror"
    write_mnist_like(mirror)
    spec = registry.DATASETS["mnist"]
    files = {
        split: tuple(
            RemoteFile(f.name, f.digest, ((mirror / "mnist" / f.name).as_uri(),)) for f in remotes
        )
        for split, remotes in spec.files.items()
    }
    monkeypatch.setitem(registry.DATASETS, "mnist", dataclasses.replace(spec, files=files))
    target = tmp_path / "data"
    err = fails(capsys, tmp_path, "--config", MNIST, "--data.data_dir", str(target))
    assert "checksum mismatch for train-images-idx3-ubyte.gz" in err
    assert "not kept" in err and not list((target / "mnist").glob("*.gz"))


def test_images_of_the_wrong_shape_name_the_file(capsys, tmp_path):
    data = _mnist_files(tmp_path, **{"train-images-idx3-ubyte": np.zeros((60, 32, 32))})
    err = fails(capsys, tmp_path, "--config", MNIST, *data)
    assert "train-images-idx3-ubyte.gz" in err and "(1, 32, 32), expected (1, 28, 28)" in err


def test_wrong_channel_count_names_the_file(capsys, tmp_path):
    write_svhn_mat(tmp_path / "data" / "svhn" / "test_32x32.mat", n=10)  # fit checks it first
    path = tmp_path / "data" / "svhn" / "train_32x32.mat"
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.zeros((32, 32, 1, 20), dtype=np.uint8)  # grey images where SVHN has colour
    scipy.io.savemat(path, {"X": x, "y": (np.arange(20) % 10 + 1).reshape(-1, 1)})
    err = fails(capsys, tmp_path, "--config", SVHN, "--data.data_dir", str(tmp_path / "data"))
    assert str(path) in err and "1 colour channel(s), SVHN images have 3" in err


def test_a_network_that_cannot_take_the_images(capsys, tmp_path):
    err = fails(capsys, tmp_path, "--config", DEMO, "--model.network.network", "conv")
    assert "(1, 8, 8)" in err and "network: mlp" in err


def test_nan_in_the_data_names_the_file(capsys, tmp_path):
    write_svhn_mat(tmp_path / "data" / "svhn" / "test_32x32.mat", n=10)  # fit checks it first
    path = tmp_path / "data" / "svhn" / "train_32x32.mat"
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.random.default_rng(0).random((32, 32, 3, 20))
    x[3, 4, 0, 5] = np.nan
    scipy.io.savemat(path, {"X": x, "y": (np.arange(20) % 10 + 1).reshape(-1, 1)})
    err = fails(capsys, tmp_path, "--config", SVHN, "--data.data_dir", str(tmp_path / "data"))
    assert str(path) in err and "NaN or Inf" in err


def test_labels_out_of_range_name_the_file(capsys, tmp_path):
    labels = np.arange(60) % 10
    labels[7] = 12
    data = _mnist_files(tmp_path, **{"train-labels-idx1-ubyte": labels})
    err = fails(capsys, tmp_path, "--config", MNIST, *data)
    assert "train-labels-idx1-ubyte.gz" in err and "label 12 is out of range 0..9" in err


def test_labeled_count_not_divisible_by_the_classes(capsys, tmp_path):
    err = fails(capsys, tmp_path, "--config", DEMO, "--data.num_labeled", "55")
    assert "num_labeled=55" in err and "multiple of the 10 classes" in err


def test_more_labeled_examples_than_a_class_holds(capsys, tmp_path):
    err = fails(capsys, tmp_path, "--config", DEMO, "--data.num_labeled", "5000")
    assert "num_labeled=5000" in err and "holds only" in err


def test_knn_k_larger_than_the_labeled_part_of_a_batch(capsys, tmp_path):
    err = fails(capsys, tmp_path, "--config", DEMO, "--model.loss.knn_k", "60")
    assert "model.loss.knn_k=60" in err and "data.labeled_batch_size=50" in err
    assert not (tmp_path / "run" / "checkpoints").exists()  # found before any training


def test_an_averaging_decay_out_of_range(capsys, tmp_path):
    err = fails(capsys, tmp_path, "--config", DEMO, "--model.ema_decay", "1.0")
    assert "ema_decay=1.0 must be in [0, 1)" in err


@pytest.mark.parametrize(
    "option,value,expected",
    [
        # refused by Lightning as the Trainer is built
        ("max_epochs", "-3", "--trainer.max_epochs: `max_epochs` must be a non-negative integer"),
        ("accelerator", "nonsense", "--trainer.accelerator: You selected an invalid accelerator"),
        ("accelerator", "gpu", "--trainer.accelerator: No supported gpu backend found!"),
        ("devices", "0", "--trainer.devices: `Trainer(devices='0')` value is not a valid input"),
        ("limit_train_batches", "2.5", "--trainer.limit_train_batches: You have passed invalid"),
        ("strategy", "bogus", "--trainer.strategy: You selected an invalid strategy name"),
        # taken by Lightning unchecked, then a division by zero after config.yaml was written
        ("check_val_every_n_epoch", "0", "--trainer.check_val_every_n_epoch=0 must be an integer"),
        ("accumulate_grad_batches", "0", "--trainer.accumulate_grad_batches=0 must be an integer"),
        ("val_check_interval", "0", "--trainer.val_check_interval=0 must be > 0"),
        # a precision the model cannot train in; a max_time Lightning would have ignored
        ("precision", "bf16-true", "--trainer.precision='bf16-true' must be 32-true, bf16-mixed"),
        ("max_time", "soon", "--trainer.max_time='soon': expected DD:HH:MM:SS"),
        # refused by the parser
        ("precision", "bogus", "--trainer.precision: expected "),
        ("gradient_clip_val", "abc", "--trainer.gradient_clip_val: expected "),
    ],
)
def test_a_bad_trainer_option_is_one_line_before_the_run_directory(
    capsys, tmp_path, option, value, expected
):
    err = fails(capsys, tmp_path, "--config", DEMO, f"--trainer.{option}", value)
    assert err.startswith(f"gmvae: error: {expected}") and value in err, err
    assert not (tmp_path / "run").exists()


def test_verbose_shows_lightnings_refusal_as_the_cause(tmp_path):
    with pytest.raises(ConfigError, match="`max_epochs` must be a non-negative integer") as exc:
        main(
            ["fit", "--config", DEMO, "--trainer.max_epochs", "-3", "--verbose"]
            + ["--trainer.default_root_dir", str(tmp_path / "run"), *QUIET]
        )
    assert type(exc.value.__cause__).__name__ == "MisconfigurationException"


def test_unknown_option_on_the_command_line(capsys, tmp_path):
    err = fails(capsys, tmp_path, "--config", DEMO, "--model.loss.knn", "3")
    assert "unknown option --model.loss.knn; did you mean --model.loss.knn_k?\n" in err
    assert "gmvae fit --help" in err


def test_unknown_key_in_a_config_file(capsys, tmp_path):
    config = tmp_path / "typo.yaml"
    config.write_text("model:\n  loss:\n    wieght_metric: 0.5\n")
    err = fails(capsys, tmp_path, "--config", DEMO, "--config", str(config))
    assert "unknown option --model.loss.wieght_metric" in err


def test_a_value_of_the_wrong_type(capsys, tmp_path):
    err = fails(capsys, tmp_path, "--config", DEMO, "--model.loss.knn_k", "three")
    assert "--model.loss.knn_k" in err and "three" in err


def test_unknown_value_names_the_allowed_ones(capsys, tmp_path):
    err = fails(capsys, tmp_path, "--config", DEMO, "--model.network.prior", "flat")
    assert "prior='flat'" in err and "mixture, standard" in err


def test_a_finished_run_is_not_overwritten(capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text('{"test_error": 1.0}\n')
    err = fails(capsys, tmp_path, "--config", DEMO)
    assert str(run) in err and "finished run" in err
    assert (run / "metrics.json").read_text() == '{"test_error": 1.0}\n'


def test_an_unfinished_run_points_to_resume(capsys, tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("seed_everything: 0\n")
    err = fails(capsys, tmp_path, "--config", DEMO)
    assert "did not finish" in err and "--ckpt_path last" in err


def test_verbose_shows_the_traceback(tmp_path):
    with pytest.raises(Exception, match="num_labeled=55"):
        main(
            ["fit", "--config", DEMO, "--data.num_labeled", "55", "--verbose"]
            + ["--trainer.default_root_dir", str(tmp_path / "run"), *QUIET]
        )


def test_gmvae_test_refuses_a_checkpoint_with_a_pickle_payload(capsys, tmp_path):
    import torch

    marker = tmp_path / "pwned"
    evil = tmp_path / "shared.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"lr": _Payload(str(marker))}}, evil)
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "test",
                "--config",
                DEMO,
                "--ckpt_path",
                str(evil),
                "--trainer.default_root_dir",
                str(tmp_path),
                *QUIET,
            ]
        )
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert str(evil) in err and "refusing to load it" in err and "model.safetensors" in err
    assert not marker.exists()


class _Payload:
    """Unpickling this creates a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _folder(tmp_path, layout: str = "classes"):
    """A folder of digit images (10 classes) and the options that train on it."""
    images = tmp_path / "images"
    write_digit_folder(images, n=120, n_labeled=60, layout=layout)
    options = ["--config", FOLDER, "--data.data_dir", str(images), "--data.folder.image_size", "8"]
    return images, options


def test_a_word_among_integer_labels_names_the_csv_line(capsys, tmp_path):
    images, options = _folder(tmp_path, layout="csv")
    rows = (images / "labels.csv").read_text().splitlines()
    rows.append("img0061.png,cat")  # an unlabeled PNG, labeled with a word
    (images / "labels.csv").write_text("\n".join(rows) + "\n")
    err = fails(capsys, tmp_path, *options)
    assert f"{images / 'labels.csv'}, line {len(rows)}: label 'cat' is a word" in err
    assert "0, 1, 2" in err and not (tmp_path / "run").exists()


def test_an_empty_class_folder_is_refused(capsys, tmp_path):
    images, options = _folder(tmp_path)
    (images / "7-extra").mkdir()
    (images / "7-extra" / ".DS_Store").write_bytes(b"\0")  # hidden: not an image
    err = fails(capsys, tmp_path, *options)
    assert f"{images / '7-extra'}: an empty class folder" in err


def test_a_class_whose_images_are_all_unreadable(capsys, tmp_path):
    images, options = _folder(tmp_path)
    (images / "bird").mkdir()
    for i in range(3):
        (images / "bird" / f"b{i}.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    err = fails(capsys, tmp_path, *options)
    assert "class 'bird' has no readable labeled training image" in err


def test_a_class_only_in_the_test_folder(capsys, tmp_path):
    images, options = _folder(tmp_path)
    (images / "test" / "bird").mkdir(parents=True)
    digit_image(0, 8).save(images / "test" / "bird" / "b.png")
    err = fails(capsys, tmp_path, *options)
    assert "class 'bird' has test images but no labeled training image" in err


@pytest.mark.parametrize(
    "text,where,problem",
    [
        ("model:\n  lr: [0.001,\n", "line 3, column 1", "expected the node content"),
        ("model:\n\tlr: 0.001\n", "line 2, column 1", "found character '\\t'"),
    ],
)
def test_invalid_yaml_names_the_file_line_and_column(capsys, tmp_path, text, where, problem):
    config = tmp_path / "broken.yaml"
    config.write_text(text)
    err = fails(capsys, tmp_path, "--config", DEMO, "--config", str(config))
    assert f"{config}, {where}: not valid YAML" in err and problem in err
    assert "<unicode string>" not in err
