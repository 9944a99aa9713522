"""A folder of image files, as a user has it: `gmvae fit` trains on it, `gmvae predict` labels it."""

import csv
import json

import numpy as np
import pytest

from gmvae.cli.app import main
from gmvae.data.images import SkippedFilesWarning, decode_image
from gmvae.estimator import GMVAEClassifier

from .conftest import QUIET, REPO
from .data.image_folder import BAD_FILES, write_digit_folder


@pytest.mark.slow
def test_a_folder_of_png_and_jpeg_files_trains_warns_and_predicts(tmp_path):
    images = tmp_path / "my-images"
    truth = write_digit_folder(images, n=300, n_labeled=100)  # 16x16 and 28x28, RGBA, JPEG
    run = tmp_path / "run"
    with pytest.warns(SkippedFilesWarning) as caught:
        main(
            [
                "fit",
                "--config",
                str(REPO / "configs" / "folder.yaml"),
                "--data.data_dir",
                str(images),
                "--data.folder.image_size",
                "12",
                "--trainer.max_epochs",
                "10",
                "--trainer.default_root_dir",
                str(run),
                *QUIET,
            ]
        )
    skipped = [str(w.message) for w in caught if issubclass(w.category, SkippedFilesWarning)]
    assert len(set(skipped)) == 1 and all(bad in skipped[0] for bad in BAD_FILES)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["dataset"] == "folder" and metrics["test_accuracy"] >= 0.5, metrics
    card = json.loads((run / "model.json").read_text())
    assert card["class_names"] == [str(d) for d in range(10)] and card["image_shape"] == [1, 12, 12]

    out = tmp_path / "predictions.csv"
    with pytest.warns(SkippedFilesWarning, match="broken.png"), pytest.raises(SystemExit) as done:
        main(
            [
                "predict",
                str(run / "model.safetensors"),
                str(images / "unlabeled"),
                "--out",
                str(out),
            ]
        )
    assert done.value.code == 0
    rows = list(csv.DictReader(out.open()))
    unlabeled = {f"{images}/{f}": y for f, y in truth.items() if f.startswith("unlabeled/")}
    assert sorted(r["file"] for r in rows) == sorted(unlabeled)
    accuracy = np.mean([int(r["predicted"]) == unlabeled[r["file"]] for r in rows])
    assert accuracy >= 0.5, accuracy  # 10 epochs, 80 training labels; chance is 0.1

    # The same model file in the estimator gives the same classes as the CSV.
    clf = GMVAEClassifier.load(run / "model.safetensors")
    x = np.stack([decode_image(r["file"], 12, 1)[0] for r in rows])  # (N, 12, 12) uint8
    assert [str(p) for p in clf.predict(x)] == [r["predicted"] for r in rows]
