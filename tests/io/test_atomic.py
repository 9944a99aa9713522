import os
import stat

from gmvae.io.atomic import atomic_write_bytes, atomic_write_json


def test_atomic_files_get_the_mode_a_plain_open_gives(tmp_path):
    mask = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"x")
        plain = tmp_path / "plain.bin"
        plain.write_bytes(b"x")
    finally:
        os.umask(mask)
    mode = stat.S_IMODE((tmp_path / "a.bin").stat().st_mode)
    assert mode == stat.S_IMODE(plain.stat().st_mode) == 0o644


def test_atomic_write_replaces_and_leaves_no_temporaries(tmp_path):
    atomic_write_json(tmp_path / "m.json", {"a": 1})
    atomic_write_json(tmp_path / "m.json", {"a": 2})
    assert (tmp_path / "m.json").read_text().strip().endswith("}")
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
