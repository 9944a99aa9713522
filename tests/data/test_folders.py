"""Image folders: layout and labels, decoding, the skipped-files warning, the split, the cache."""

import json
import os
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from gmvae.config import FolderConfig
from gmvae.data.folders import cache_folder, load_folder, scan_folder
from gmvae.data.images import SkippedFilesWarning, decode_image
from gmvae.data.split import holdout_split
from gmvae.errors import ConfigError, DataError
from gmvae.training import GMVAEDataModule

from .image_folder import BAD_FILES, write_digit_folder


def _load(root, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        splits = load_folder(root, FolderConfig(**kw), val_fraction=0.2)
    return splits, [w for w in caught if issubclass(w.category, SkippedFilesWarning)]


def _save(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)


def test_class_folders_csv_rows_and_unlabeled_images_get_their_labels(tmp_path):
    grey = np.zeros((4, 4), np.uint8)
    for rel in ("cat/a.png", "cat/deeper/b.png", "dog/c.png", "d.png", "e.png", "unlabeled/f.png"):
        _save(tmp_path / rel, grey)
    (tmp_path / "labels.csv").write_text("filename,label\nd.png,dog\nunlabeled/f.png,cat\n")
    listing = scan_folder(tmp_path)
    labels = {e.path: e.label for e in listing.entries}
    assert listing.class_names == ("cat", "dog")
    assert labels == {
        "cat/a.png": "cat",
        "cat/deeper/b.png": "cat",
        "dog/c.png": "dog",
        "d.png": "dog",
        "e.png": None,
        "unlabeled/f.png": "cat",
    }


def test_numeric_class_names_sort_as_numbers(tmp_path):
    for name in ("10", "2", "1"):
        _save(tmp_path / name / "x.png", np.zeros((4, 4), np.uint8))
    assert scan_folder(tmp_path).class_names == ("1", "2", "10")


@pytest.mark.parametrize(
    "table,match",
    [
        ("a.png,cat,extra\n", "expected 'filename,label'"),
        ("a.png,cat\na.png,dog\n", "labeled twice"),
        ("cat/b.png,dog\n", "class folder 'cat'"),
    ],
)
def test_a_bad_labels_table_names_the_file_and_line(tmp_path, table, match):
    _save(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    _save(tmp_path / "cat" / "b.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "labels.csv").write_text(table)
    with pytest.raises(DataError, match=match) as err:
        scan_folder(tmp_path)
    assert "labels.csv" in str(err.value)


def test_a_folder_without_labels_or_images_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        scan_folder(tmp_path / "missing")
    _save(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match="no labeled images"):
        scan_folder(tmp_path)


def test_decoding_resizes_converts_and_makes_transparent_pixels_black(tmp_path):
    rgba = np.zeros((10, 20, 4), np.uint8)
    rgba[..., 0] = 255  # red everywhere...
    rgba[:, :10, 3] = 255  # ...opaque on the left half, transparent on the right
    _save(tmp_path / "a.png", rgba, "RGBA")
    rgb = decode_image(tmp_path / "a.png", 8, 3)
    assert rgb.shape == (3, 8, 8) and rgb.dtype == np.uint8
    # Lanczos filtering rings by a level or two next to the edge.
    assert (rgb[0, :, :3] >= 253).all() and (rgb[1:, :, :3] <= 2).all()  # left: pure red
    assert (rgb[:, :, 5:] <= 2).all()  # right: black
    grey = decode_image(tmp_path / "a.png", 8, 1)
    assert grey.shape == (1, 8, 8)
    assert grey[0, 0, 0] == round(0.299 * 255)  # ITU-R 601 luma of pure red, as Pillow's "L"
    (tmp_path / "b.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not an image"):
        decode_image(tmp_path / "b.png", 8, 1)


def test_bad_files_are_listed_in_one_warning_and_left_out(tmp_path):
    truth = write_digit_folder(tmp_path, n=60, n_labeled=30)
    splits, caught = _load(tmp_path, image_size=12)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "skipped 2 file(s)" in message and all(bad in message for bad in BAD_FILES)
    total = sum(len(s) for s in (splits.train, splits.val, splits.test))
    assert total == len(truth)  # every good image, none of the bad ones
    files = [f for part in splits.files.values() for f in part]
    assert sorted(files) == sorted(truth)
    assert splits.train.images.shape[1:] == (1, 12, 12)
    # Each row's label is the true label of its file (the labeled ones) or -1.
    for part, arrays in (("train", splits.train), ("val", splits.val), ("test", splits.test)):
        for name, label in zip(splits.files[part], arrays.labels.tolist(), strict=True):
            labeled = not name.startswith("unlabeled/")
            assert label == (truth[name] if labeled else -1)


def test_the_flat_layout_with_a_csv_gives_the_same_labels(tmp_path):
    truth = write_digit_folder(tmp_path, n=60, n_labeled=30, layout="csv")
    splits, caught = _load(tmp_path, image_size=12)
    assert len(caught) == 1  # the corrupt PNG and the text file
    labeled = sum(int((s.labels >= 0).sum()) for s in (splits.train, splits.val, splits.test))
    assert labeled == 30
    assert sum(len(s) for s in (splits.train, splits.val, splits.test)) == len(truth)


def test_the_split_is_fixed_stratified_and_a_test_folder_is_the_test_set(tmp_path):
    root = tmp_path / "images"  # beside the cache ($XDG_CACHE_HOME is tmp_path/cache), not above it
    truth = write_digit_folder(root, n=120, n_labeled=60)
    per_class = np.bincount([y for f, y in truth.items() if not f.startswith("unlabeled/")])
    splits, _ = _load(root, image_size=8)
    test = splits.test.labels.numpy()
    # 20 % of each class, at least one: 4 to 8 labeled digits per class give 1 or 2.
    expected = [min(n - 1, max(1, round(0.2 * n))) for n in per_class]
    assert np.bincount(test, minlength=10).tolist() == expected
    assert (splits.val.labels >= 0).sum() >= 10 and (splits.val.labels < 0).sum() > 0
    assert (splits.test.labels >= 0).all()  # unlabeled images never go to the test set
    again, _ = _load(root, image_size=8)
    assert again.files == splits.files

    for i in range(4):
        _save(root / "test" / str(i % 2) / f"t{i}.png", np.full((8, 8), 50 * i, np.uint8))
    with_test, _ = _load(root, image_size=8)
    assert sorted(with_test.files["test"]) == sorted(f"test/{i % 2}/t{i}.png" for i in range(4))
    assert with_test.test.labels.tolist() == [0, 0, 1, 1]
    labeled = sum(int((s.labels >= 0).sum()) for s in (with_test.train, with_test.val))
    assert labeled == 60  # no labeled training image is given up for testing


def test_unlabeled_test_images_are_refused(tmp_path):
    write_digit_folder(tmp_path, n=20, n_labeled=20)
    _save(tmp_path / "test" / "x.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match="have no label"):
        scan_folder(tmp_path)


def test_the_cache_is_one_memory_map_reused_until_a_file_changes(tmp_path):
    root = tmp_path / "images"
    write_digit_folder(root, n=40, n_labeled=20)
    config = FolderConfig(image_size=8)
    first, _ = _load(root, image_size=8)
    cache = cache_folder(root, config)
    inode = os.stat(cache / "images.npy").st_ino
    # train, val and test are views into one mapped buffer, at their offsets: no copies.
    parts = json.loads((cache / "meta.json").read_text())["parts"]
    base = first.train.images.data_ptr()
    assert parts["train"] == [0, len(first.train)]
    assert first.val.images.data_ptr() - base == parts["val"][0] * 8 * 8
    assert first.test.images.data_ptr() - base == parts["test"][0] * 8 * 8

    second, _ = _load(root, image_size=8)
    assert os.stat(cache / "images.npy").st_ino == inode  # not decoded again

    changed = next(f for f in second.files["train"] if f.startswith("unlabeled/"))
    _save(root / changed, np.full((8, 8), 255, np.uint8))  # the file now holds white pixels
    third, _ = _load(root, image_size=8)
    assert os.stat(cache / "images.npy").st_ino != inode
    row_of = third.files["train"].index(changed)
    assert (third.train.images[row_of] == 255).all()

    _save(root / "unlabeled" / "new.png", np.zeros((8, 8), np.uint8))
    fourth, _ = _load(root, image_size=8)
    assert (
        sum(len(f) for f in fourth.files.values()) == sum(len(f) for f in third.files.values()) + 1
    )
    assert cache_folder(root, FolderConfig(image_size=16)) != cache


def test_the_datamodule_reads_a_folder_with_every_labeled_row(tmp_path):
    write_digit_folder(tmp_path, n=80, n_labeled=40)
    dm = GMVAEDataModule(
        "folder",
        data_dir=str(tmp_path),
        num_labeled=None,
        labeled_batch_size=8,
        unlabeled_batch_size=16,
        folder={"image_size": 10, "channels": 3},
    )
    assert dm.image_shape == (3, 10, 10) and dm.class_names == tuple(str(d) for d in range(10))
    with pytest.warns(SkippedFilesWarning):
        dm.prepare_data()
    dm.setup("fit")
    dm.setup("test")
    assert len(dm.labeled_index) == int((dm.train_set.labels >= 0).sum()) == 40 - 10 - 10
    x, labels, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (16 + 8, 3, 10, 10) and x.dtype == torch.float32
    assert (labels[16:] >= 0).all() and (labels[:16] < 0).all()


def test_folder_options_need_the_folder_dataset(tmp_path):
    with pytest.raises(ConfigError, match="dataset: folder"):
        GMVAEDataModule("digits", folder={"image_size": 8})
    with pytest.raises(ConfigError, match="data_dir"):
        GMVAEDataModule("folder")
    with pytest.raises(ConfigError, match="choose 1 or 3"):
        FolderConfig(channels=4)


def test_holdout_split_is_stratified_and_leaves_rare_classes_whole():
    labels = np.array([0] * 10 + [1] * 5 + [2] * 1 + [-1] * 50)
    kept, held = holdout_split(labels, 0.2, seed=0)
    assert not set(kept) & set(held) and len(kept) + len(held) == len(labels)
    counts = {c: int((labels[held] == c).sum()) for c in (-1, 0, 1, 2)}
    assert counts == {-1: 10, 0: 2, 1: 1, 2: 0}
    kept_few, held_few = holdout_split(labels, 0.2, seed=0, min_per_class=10)
    assert {c: int((labels[held_few] == c).sum()) for c in (-1, 0, 1, 2)} == {
        -1: 10,
        0: 2,
        1: 0,
        2: 0,
    }
    _, only_labeled = holdout_split(labels, 0.2, seed=0, unlabeled=False)
    assert (labels[only_labeled] >= 0).all()
    assert (holdout_split(labels, 0.2, seed=0)[1] == held).all()
    assert not (holdout_split(labels, 0.2, seed=1)[1] == held).all()
    assert len(holdout_split(labels, 0.0, seed=0)[1]) == 0
