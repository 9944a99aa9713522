import hashlib

import pytest

from gmvae.data import locate
from gmvae.data.locate import RemoteFile, download_file, locate_files
from gmvae.errors import DataError

from .writers import write_mnist_like


def _files():
    return (RemoteFile("train-images-idx3-ubyte.gz", "sha256:0", ()),)


def test_search_order_data_dir_then_env_then_cache(tmp_path, monkeypatch):
    a, b = write_mnist_like(tmp_path / "a"), write_mnist_like(tmp_path / "b")
    monkeypatch.setenv("GMVAE_DATA_DIR", str(b))
    found = locate_files("mnist", _files(), data_dir=a, download=False)
    assert found["train-images-idx3-ubyte.gz"].parent == a / "mnist"
    found = locate_files("mnist", _files(), data_dir=None, download=False)
    assert found["train-images-idx3-ubyte.gz"].parent == b / "mnist"
    monkeypatch.delenv("GMVAE_DATA_DIR")
    cache = write_mnist_like(tmp_path / "cache" / "gmvae")  # XDG_CACHE_HOME is tmp/cache
    assert (
        locate_files("mnist", _files(), download=False)["train-images-idx3-ubyte.gz"].parent
        == cache / "mnist"
    )


def test_system_folder_is_searched(tmp_path, monkeypatch):
    system = write_mnist_like(tmp_path / "usr-share-datasets", "fashion-mnist")
    monkeypatch.setattr(locate, "SYSTEM_DATA_DIRS", (system,))
    found = locate_files("fashion-mnist", _files(), download=False)
    assert found["train-images-idx3-ubyte.gz"].parent == system / "fashion-mnist"


def test_uncompressed_idx_is_accepted(tmp_path):
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "train-images-idx3-ubyte").write_bytes(b"x")
    found = locate_files("mnist", _files(), data_dir=tmp_path, download=False)
    assert found["train-images-idx3-ubyte.gz"].name == "train-images-idx3-ubyte"


def test_not_found_lists_every_place(tmp_path, monkeypatch):
    monkeypatch.delenv("GMVAE_DATA_DIR", raising=False)
    with pytest.raises(DataError) as info:
        locate_files(
            "svhn", (RemoteFile("train_32x32.mat", "md5:0", ()),), data_dir=tmp_path, download=False
        )
    msg = str(info.value)
    assert "train_32x32.mat" in msg and str(tmp_path / "svhn") in msg
    assert (
        "$GMVAE_DATA_DIR: not set" in msg
        and "user cache" in msg
        and "/usr/share/datasets/svhn" in msg
    )


def test_download_verifies_checksum(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload")
    good = RemoteFile("f.bin", "sha256:" + hashlib.sha256(b"payload").hexdigest(), (src.as_uri(),))
    path = download_file(good, tmp_path / "out")
    assert path.read_bytes() == b"payload"
    bad = RemoteFile("g.bin", "md5:" + "0" * 32, (src.as_uri(),))
    with pytest.raises(DataError, match="checksum mismatch"):
        download_file(bad, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["f.bin"]  # nothing half-kept


def test_download_falls_back_to_the_next_mirror_and_reports_failures(tmp_path, monkeypatch):
    src = tmp_path / "src.bin"
    src.write_bytes(b"data")
    digest = "sha256:" + hashlib.sha256(b"data").hexdigest()
    missing = (tmp_path / "nope.bin").as_uri()
    remote = RemoteFile("mnist-file", digest, (missing, src.as_uri()))
    monkeypatch.delenv("GMVAE_DATA_DIR", raising=False)
    found = locate_files("mnist", (remote,), data_dir=tmp_path / "dd", download=True)
    assert found["mnist-file"] == tmp_path / "dd" / "mnist" / "mnist-file"
    dead = RemoteFile("other", digest, (missing,))
    with pytest.raises(DataError, match="download failed"):
        locate_files("mnist", (dead,), data_dir=tmp_path / "dd", download=True)
