"""``gmvae predict``: the CSV a user gets from images, folders or an .npy, on a tiny model."""

import csv

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from gmvae.cli.app import main
from gmvae.data.images import SkippedFilesWarning
from gmvae.estimator import GMVAEClassifier


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 1-epoch model of the 8x8 digits (uint8 images), saved; and 12 digits to predict."""
    digits = load_digits()
    x = (digits.images * 255 / 16).round().astype(np.uint8)
    y = np.where(np.arange(len(x)) < 200, digits.target, -1)
    clf = GMVAEClassifier(
        feature_size=16, latent_size=8, mlp_hidden_size=32, knn_k=3, max_epochs=1, random_state=0
    ).fit(x[:600], y[:600])
    path = clf.save(tmp_path_factory.mktemp("model") / "tiny.safetensors")
    return path, clf, x[1000:1012]


def run(*args: str) -> int:
    with pytest.raises(SystemExit) as done:
        main(["predict", *args])
    return done.value.code


def read(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_images_and_folders_give_one_row_per_image_with_names_and_probabilities(tiny, tmp_path):
    model, clf, x = tiny
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    names = []
    for i, image in enumerate(x):
        name = folder / ("sub" if i % 2 else "") / f"d{i:02d}.png"
        Image.fromarray(image).save(name)
        names.append(str(name))
    (folder / "sub" / "readme.txt").write_text("not an image")
    out = tmp_path / "preds.csv"
    with pytest.warns(SkippedFilesWarning, match="readme.txt"):
        assert run(str(model), str(folder), "--out", str(out), "--batch-size", "5") == 0
    rows = read(out)
    assert rows[0] == ["file", "predicted", *(f"prob_{d}" for d in range(10))]
    by_file = {r[0]: r[1:] for r in rows[1:]}
    assert sorted(by_file) == sorted(names)
    # 8x8 grey PNGs decode to the very pixels: the CSV equals the estimator's predictions.
    proba = clf.predict_proba(x)
    for name, p in zip(names, proba, strict=True):
        predicted, *probs = by_file[name]
        assert predicted == str(int(np.argmax(p)))
        np.testing.assert_allclose(np.array(probs, dtype=float), p, rtol=1e-5, atol=1e-7)


def test_an_npy_gives_rows_by_index(tiny, tmp_path):
    model, clf, x = tiny
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "p.csv"
    assert run(str(model), str(tmp_path / "x.npy"), "--out", str(out)) == 0
    rows = read(out)
    assert rows[0][0] == "row" and [r[0] for r in rows[1:]] == [str(i) for i in range(len(x))]
    assert [r[1] for r in rows[1:]] == [str(c) for c in clf.predict(x)]


def test_an_existing_output_is_kept_unless_forced(tiny, tmp_path, capsys):
    model, _, x = tiny
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "p.csv"
    out.write_text("mine\n")
    assert run(str(model), str(tmp_path / "x.npy"), "--out", str(out)) == 2
    assert "exists; pass --force" in capsys.readouterr().err and out.read_text() == "mine\n"
    assert run(str(model), str(tmp_path / "x.npy"), "--out", str(out), "--force") == 0
    assert read(out)[0][0] == "row"


def test_bad_inputs_are_one_line_errors(tiny, tmp_path, capsys):
    model, _, x = tiny
    np.save(tmp_path / "x.npy", x[:, :4])
    out = str(tmp_path / "p.csv")
    assert run(str(model), str(tmp_path / "x.npy"), "--out", out) == 2
    assert "do not fit the model's images" in capsys.readouterr().err
    assert run(str(model), str(tmp_path / "missing.png"), "--out", out) == 2
    assert "no such file" in capsys.readouterr().err
    assert run(str(model), str(tmp_path / "x.npy"), str(tmp_path), "--out", out) == 2
    assert "not both" in capsys.readouterr().err
