"""The strict MAT v5 reader against files written by scipy.io.savemat (and MATLAB's layout)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from gmvae.data.matfile import read_mat_arrays
from gmvae.errors import DataError

DTYPES = ["uint8", "int8", "int16", "uint16", "int32", "uint32", "int64", "float32", "float64"]


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "compressed"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_of_every_numeric_type(tmp_path, dtype, compress):
    rng = np.random.default_rng(0)
    x = (rng.random((4, 3, 2, 5)) * 100).astype(dtype)
    path = tmp_path / "a.mat"
    scipy.io.savemat(
        path, {"X": x, "other": np.ones(3), "y": np.arange(5.0)}, do_compression=compress
    )
    got = read_mat_arrays(path, ("X", "y"))
    assert set(got) == {"X", "y"}
    assert got["X"].dtype == x.dtype and got["X"].shape == x.shape and (got["X"] == x).all()
    assert got["y"].shape == (1, 5) and got["y"].tolist() == [[0, 1, 2, 3, 4]]


def test_matches_scipy_on_an_svhn_shaped_file(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (32, 32, 3, 7)).astype(np.uint8)
    y = (np.arange(7) % 10 + 1).reshape(-1, 1).astype(np.uint8)
    for compress in (False, True):
        scipy.io.savemat(tmp_path / "s.mat", {"X": x, "y": y}, do_compression=compress)
        ours = read_mat_arrays(tmp_path / "s.mat", ("X", "y"))
        theirs = scipy.io.loadmat(tmp_path / "s.mat")
        for name in ("X", "y"):
            np.testing.assert_array_equal(ours[name], theirs[name])


def test_small_elements_and_absent_names(tmp_path):
    scipy.io.savemat(tmp_path / "s.mat", {"a": np.array([[7]], dtype=np.uint8)})
    assert read_mat_arrays(tmp_path / "s.mat", ("a", "b"))["a"].tolist() == [[7]]
    assert read_mat_arrays(tmp_path / "s.mat", ("b",)) == {}


@pytest.mark.parametrize(
    "value,match",
    [
        (np.array([1 + 2j]), "complex"),
        ({"field": np.ones(2)}, "not a numeric array"),
        (np.array(["text"]), "not a numeric array"),
    ],
)
def test_non_numeric_variables_are_refused(tmp_path, value, match):
    scipy.io.savemat(tmp_path / "s.mat", {"X": value})
    with pytest.raises(DataError, match=match):
        read_mat_arrays(tmp_path / "s.mat", ("X",))


def test_other_formats_are_named(tmp_path):
    scipy.io.savemat(tmp_path / "v4.mat", {"X": np.ones(3)}, format="4")
    with pytest.raises(DataError, match="MAT v4"):
        read_mat_arrays(tmp_path / "v4.mat", ("X",))
    (tmp_path / "h5.mat").write_bytes(b"MATLAB 7.3 MAT-file" + bytes(200))
    with pytest.raises(DataError, match="v7.3"):
        read_mat_arrays(tmp_path / "h5.mat", ("X",))


def test_a_file_that_crashes_scipy_is_a_data_error(tmp_path):
    """The case the fuzz test found: one flipped byte in the type of the last element's data
    makes scipy.io.loadmat (1.17) crash the interpreter; here it is one clear error."""
    x = np.random.default_rng(0).integers(0, 256, (32, 32, 3, 4)).astype(np.uint8)
    y = (np.arange(4) % 10 + 1).reshape(-1, 1).astype(np.uint8)
    path = tmp_path / "train_32x32.mat"
    scipy.io.savemat(path, {"X": x, "y": y})
    data = bytearray(path.read_bytes())
    data[-8] ^= 72  # y's data element: a small-format tag whose type becomes 74
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="unknown type 74"):
        read_mat_arrays(path, ("X", "y"))
