"""``gmvae suggest``: the sheet it writes trains as it is, on a folder and on a built-in set."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gmvae.cli import main
from gmvae.data.folders import scan_folder
from gmvae.data.registry import load_split

from ..conftest import DEMO, QUIET, REPO
from ..data.image_folder import digit_image

FOLDER_CONFIG = str(REPO / "configs" / "folder.yaml")


def gmvae(*args: str) -> int:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    return done.value.code


def fails(capsys, *args: str) -> str:
    """Run ``gmvae ...``; assert one ``gmvae: error:`` line, exit status 2; return it."""
    assert gmvae(*args) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("gmvae: error:")]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


def unlabeled_folder(root: Path, n: int = 240, n_test: int = 60) -> dict[str, int]:
    """``n`` digits in ``unlabeled/`` (no label anywhere), ``n_test`` in ``test/<digit>/``."""
    from sklearn.datasets import load_digits

    target = load_digits().target
    truth = {}
    for i in range(n + n_test):
        rel = f"unlabeled/d{i:04d}.png" if i < n else f"test/{target[i]}/d{i:04d}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        digit_image(i, 16).save(root / rel)
        truth[rel] = int(target[i])
    return truth


def sheet_rows(path: Path) -> list[list[str]]:
    return list(csv.reader(path.open()))


@pytest.mark.slow
def test_a_filled_sheet_trains_gmvae_fit_on_the_folder(tmp_path):
    images = tmp_path / "my-images"
    truth = unlabeled_folder(images)
    sheet = tmp_path / "sheet"
    code = gmvae(
        "suggest", str(images), "--budget", "20", "--out", str(sheet),
        "--epochs", "2", "--image-size", "12",
    )  # fmt: skip
    assert code == 0
    rows = sheet_rows(sheet / "labels.csv")
    assert rows[0] == ["filename", "label"] and len(rows) == 21
    assert all(name.startswith("unlabeled/") and label == "" for name, label in rows[1:])
    with Image.open(sheet / "contact-sheet.png") as png:
        assert png.size[0] >= 500  # 10 numbered thumbnails a row
    details = list(csv.DictReader((sheet / "suggestions.csv").open()))
    assert [d["filename"] for d in details] == [name for name, _ in rows[1:]]
    assert (sheet / "model.safetensors").is_file()

    # A user fills in what they can; a row left blank keeps its image unlabeled.
    filled = [rows[0], *([name, str(truth[name])] for name, _ in rows[1:-1]), [rows[-1][0], ""]]
    with open(sheet / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows(filled)
    listing = scan_folder(images, sheet / "labels.csv")
    labeled = {e.path: e.label for e in listing.entries if e.label is not None and not e.test}
    assert labeled == {name: label for name, label in filled[1:-1]}

    run = tmp_path / "run"
    gmvae_fit = [
        "fit", "--config", FOLDER_CONFIG, "--data.data_dir", str(images),
        "--data.folder.labels_file", str(sheet / "labels.csv"), "--data.folder.image_size", "12",
        "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(run), *QUIET,
    ]  # fmt: skip
    main(gmvae_fit)
    metrics = json.loads((run / "metrics.json").read_text())
    card = json.loads((run / "model.json").read_text())
    assert metrics["dataset"] == "folder" and 0 <= metrics["test_error"] <= 100
    assert card["class_names"] == sorted({label for _, label in filled[1:-1]}, key=int)

    # With that model and those labels, the next suggestions are other images.
    again = tmp_path / "sheet2"
    code = gmvae(
        "suggest", str(images), "--budget", "5", "--out", str(again),
        "--model", str(run / "model.safetensors"),
    )  # fmt: skip
    assert code == 0  # reads the folder's own labels.csv: none; so copy the sheet in
    (images / "labels.csv").write_text((sheet / "labels.csv").read_text())
    code = gmvae(
        "suggest", str(images), "--budget", "5", "--out", str(again), "--force",
        "--model", str(run / "model.safetensors"),
    )  # fmt: skip
    assert code == 0
    new = sheet_rows(again / "labels.csv")
    picked = [name for name, label in new[1:6]]
    assert all(label == "" for _, label in new[1:6]) and len(new) == 1 + 5 + 19
    assert not set(picked) & {name for name, _ in filled[1:-1]}
    assert {tuple(r) for r in new[6:]} == {tuple(r) for r in filled[1:-1]}  # kept labels


@pytest.mark.slow
def test_an_index_sheet_trains_with_exactly_those_digits(tmp_path):
    sheet = tmp_path / "sheet"
    assert gmvae("suggest", "digits", "--budget", "10", "--out", str(sheet), "--epochs", "2") == 0
    rows = sheet_rows(sheet / "labels.csv")
    assert rows[0] == ["index", "label"] and len(rows) == 11
    truth = load_split("digits", "train").labels.numpy()
    indices = [int(i) for i, _ in rows[1:]]
    with open(sheet / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([rows[0], *([i, truth[i]] for i in indices)])
    run = tmp_path / "run"
    main(
        [
            "fit", "--config", DEMO, "--data.labeled_indices", str(sheet / "labels.csv"),
            "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(run), *QUIET,
        ]
    )  # fmt: skip
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["num_labeled"] == 10


def test_the_datamodule_takes_the_sheets_rows_and_labels(tmp_path):
    from gmvae.training.datamodule import GMVAEDataModule

    probe = GMVAEDataModule("digits", num_labeled=0, labeled_batch_size=0)
    probe.setup("fit")
    rows = probe.train_rows[[3, 50, 700]]
    path = tmp_path / "labels.csv"
    path.write_text(f"index,label\n{rows[0]},7\n{rows[1]},2\n{rows[2]},0\n")
    dm = GMVAEDataModule(
        "digits", num_labeled=100, labeled_batch_size=10, labeled_indices=str(path)
    )
    dm.setup("fit")
    assert dm.num_labeled == 3 and sorted(dm.train_rows[dm.labeled_index]) == sorted(rows)
    by_row = dict(
        zip(
            dm.train_rows[dm.labeled_index],
            dm.train_set.labels[dm.labeled_index].tolist(),
            strict=True,
        )
    )
    assert [by_row[r] for r in rows] == [7, 2, 0]  # the file's labels, as a user typed them
    path.write_text(f"index\n{rows[0]}\n{rows[1]}\n")  # no labels: the data set's own
    dm = GMVAEDataModule("digits", labeled_batch_size=10, labeled_indices=str(path))
    dm.setup("fit")
    assert (
        dm.train_set.labels[dm.labeled_index].tolist() == probe.train_set.labels[[3, 50]].tolist()
    )


def test_the_random_draw_ignores_the_classes_and_repeats_with_the_seed():
    from gmvae.training.datamodule import GMVAEDataModule

    draws = []
    for seed in (0, 0, 1):
        dm = GMVAEDataModule(
            "digits", num_labeled=20, labeled_batch_size=20, labeled_draw="random", seed=seed
        )
        dm.setup("fit")
        draws.append(dm.labeled_index.tolist())
    assert draws[0] == draws[1] != draws[2] and len(set(draws[0])) == 20
    balanced = GMVAEDataModule("digits", num_labeled=20, labeled_batch_size=20, seed=0)
    balanced.setup("fit")
    counts = np.bincount(balanced.train_set.labels[balanced.labeled_index], minlength=10)
    assert (counts == 2).all()  # the default stays the paper's balanced draw


def test_suggest_errors_are_one_line(capsys, tmp_path):
    images = tmp_path / "imgs"
    unlabeled_folder(images, n=12, n_test=2)
    out = str(tmp_path / "out")
    assert "--budget 0 must be >= 1" in fails(
        capsys, "suggest", "digits", "--budget", "0", "--out", out
    )
    err = fails(capsys, "suggest", str(tmp_path / "nope"), "--budget", "3", "--out", out)
    assert "neither a folder of images nor a data set" in err
    err = fails(capsys, "suggest", str(images), "--budget", "13", "--out", out)
    assert "--budget 13" in err and "only 12 unlabeled images" in err
    err = fails(capsys, "suggest", str(images), "--budget", "3", "--out", str(images / "sheet"))
    assert "lies inside" in err
    err = fails(
        capsys, "suggest", "digits", "--budget", "3", "--out", out, "--model", "m.safetensors"
    )
    assert "--model m.safetensors: no such file" in err
    err = fails(capsys, "suggest", str(images), "--budget", "3", "--out", out, "--labeled", "x.csv")
    assert "--labeled is for the built-in data sets" in err
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "labels.csv").write_text("filename,label\n")
    err = fails(capsys, "suggest", str(images), "--budget", "3", "--out", out)
    assert "labels.csv exists; pass --force" in err
    assert (tmp_path / "out" / "labels.csv").read_text() == "filename,label\n"


def test_bad_label_sheets_and_draws_are_one_line(capsys, tmp_path):
    sheet = tmp_path / "labels.csv"
    run = ["--trainer.default_root_dir", str(tmp_path / "run"), *QUIET]
    fit = ["fit", "--config", DEMO, "--data.labeled_indices", str(sheet), *run]
    sheet.write_text("index,label\n0,3\n1,\n")
    assert "index 1 has no label" in fails(capsys, *fit)
    sheet.write_text("index,label\n0,cat\n")
    assert "label 'cat' is not a class" in fails(capsys, *fit)
    sheet.write_text("index,label\n0,1\n0,1\n")
    assert "index 0 is listed twice" in fails(capsys, *fit)
    sheet.write_text("index,label\n99999,1\n")
    assert "beyond the 1198 training images" in fails(capsys, *fit)
    from gmvae.data.registry import load_split as split
    from gmvae.data.split import train_val_split

    _, val = train_val_split(split("digits", "train").labels.numpy(), 0.2, 0)
    sheet.write_text(f"index,label\n{val[0]},1\n")
    assert "in the validation part of seed 0's split" in fails(capsys, *fit)
    err = fails(capsys, "fit", "--config", DEMO, "--data.labeled_draw", "classes", *run)
    assert "labeled_draw='classes' is not allowed" in err
    err = fails(
        capsys,
        "fit",
        "--config",
        FOLDER_CONFIG,
        "--data.data_dir",
        str(tmp_path),
        "--data.labeled_indices",
        str(sheet),
        *run,
    )
    assert "labeled_indices is for the built-in data sets" in err
