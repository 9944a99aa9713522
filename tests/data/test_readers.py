import gzip

import numpy as np
import pytest

from gmvae.data.idx import read_idx, read_idx_pair
from gmvae.data.registry import load_split
from gmvae.data.svhn import read_svhn_mat
from gmvae.errors import DataError

from .writers import idx_bytes, write_idx, write_mnist_like, write_svhn_mat


@pytest.mark.parametrize("name", ["a-idx3-ubyte.gz", "a-idx3-ubyte"])
def test_idx_round_trip_gz_and_raw(tmp_path, name):
    arr = np.random.default_rng(0).integers(0, 256, (5, 28, 28))
    assert (read_idx(write_idx(tmp_path / name, arr)) == arr).all()


@pytest.mark.parametrize("cut", [2, 10, 40, -1])
def test_truncated_idx_names_the_file(tmp_path, cut):
    data = idx_bytes(np.zeros((3, 4, 4)))
    path = tmp_path / "t.idx"
    path.write_bytes(data[:cut])
    with pytest.raises(DataError, match="t.idx"):
        read_idx(path)


def test_truncated_gzip_is_a_data_error(tmp_path):
    data = gzip.compress(idx_bytes(np.zeros((30, 28, 28))))
    path = tmp_path / "t.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="t.gz: cannot read"):
        read_idx(path)


def test_bad_magic_and_type(tmp_path):
    (tmp_path / "m").write_bytes(b"\x01\x00\x08\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(DataError, match="magic"):
        read_idx(tmp_path / "m")
    (tmp_path / "f").write_bytes(b"\x00\x00\x0d\x01" + (1).to_bytes(4, "big") + b"abcd")
    with pytest.raises(DataError, match="only unsigned byte"):
        read_idx(tmp_path / "f")


def test_pair_checks_counts_and_label_range(tmp_path):
    images = write_idx(tmp_path / "i", np.zeros((4, 28, 28)))
    labels = write_idx(tmp_path / "l", np.array([0, 1, 2]))
    with pytest.raises(DataError, match="4 images"):
        read_idx_pair(images, labels, 10)
    labels = write_idx(tmp_path / "l", np.array([0, 1, 2, 12]))
    with pytest.raises(DataError, match="out of range"):
        read_idx_pair(images, labels, 10)


def test_svhn_mat_reader_maps_label_10_to_0(tmp_path):
    path = write_svhn_mat(tmp_path / "train_32x32.mat", n=12)
    images, labels = read_svhn_mat(path)
    assert images.shape == (12, 3, 32, 32) and images.dtype == np.uint8
    assert labels.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2]


def test_svhn_channel_order(tmp_path):
    import scipy.io

    x = np.zeros((32, 32, 3, 1), dtype=np.uint8)
    x[5, 7, 2, 0] = 200  # row 5, column 7, channel 2
    scipy.io.savemat(tmp_path / "s.mat", {"X": x, "y": np.array([[3]], dtype=np.uint8)})
    images, _ = read_svhn_mat(tmp_path / "s.mat")
    assert images[0, 2, 5, 7] == 200


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9])
def test_truncated_mat_is_a_data_error(tmp_path, cut):
    path = write_svhn_mat(tmp_path / "train_32x32.mat", n=8)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(DataError, match="train_32x32.mat"):
        read_svhn_mat(path)


def test_mat_with_bad_labels(tmp_path):
    path = write_svhn_mat(tmp_path / "s.mat", n=3, labels=np.array([1, 11, 2]))
    with pytest.raises(DataError, match="1..10"):
        read_svhn_mat(path)


def test_load_split_from_a_data_dir(tmp_path):
    write_mnist_like(tmp_path, "fashion-mnist")
    train = load_split("fashion-mnist", "train", data_dir=tmp_path, download=False)
    test = load_split("fashion-mnist", "test", data_dir=tmp_path, download=False)
    assert train.images.shape == (60, 1, 28, 28) and test.images.shape == (20, 1, 28, 28)
    write_svhn_mat(tmp_path / "svhn" / "test_32x32.mat", n=7)
    assert load_split("svhn", "test", data_dir=tmp_path, download=False).images.shape == (
        7,
        3,
        32,
        32,
    )


def test_real_mnist(real_data_dir):
    train = load_split("mnist", "train", data_dir=real_data_dir, download=False)
    assert train.images.shape == (60000, 1, 28, 28)
    assert np.bincount(train.labels.numpy()).tolist()[0] == 5923


def test_digits_demo_split_is_fixed():
    a, b = load_split("digits", "train"), load_split("digits", "test")
    assert len(a) + len(b) == 1797 and a.image_shape == (1, 8, 8)
    assert (load_split("digits", "test").labels == b.labels).all()
