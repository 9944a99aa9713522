"""Checkpoints: atomic saves that survive a SIGKILL mid-write; loads that never unpickle."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest
import torch

from gmvae.errors import ConfigError, DataError
from gmvae.io.checkpoint import SafeCheckpointIO, load_checkpoint_safely

# The child saves a first checkpoint, then starts a second save whose serialiser writes
# part of the file and SIGKILLs the process: the state a power cut or an OOM kill leaves.
_KILLED_MID_SAVE = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    from gmvae.io.checkpoint import SafeCheckpointIO

    io = SafeCheckpointIO()
    path = sys.argv[1]
    io.save_checkpoint({"state_dict": {"w": torch.full((1000,), 1.0)}, "global_step": 1}, path)
    real_save = torch.save

    def dying_save(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        if hasattr(f, "seek"):  # a file object: keep the first half, as if cut off mid-write
            f.flush()
            f.truncate(f.tell() // 2)
            f.flush()
        else:  # a path
            with open(f, "r+b") as g:
                g.truncate(os.path.getsize(f) // 2)
        os.kill(os.getpid(), signal.SIGKILL)

    torch.save = dying_save
    io.save_checkpoint({"state_dict": {"w": torch.full((1000,), 2.0)}, "global_step": 2}, path)
    """
)


def test_a_kill_during_a_save_leaves_the_previous_checkpoint_whole(tmp_path):
    """Were the writer not atomic, ``last.ckpt`` itself would now be half a file."""
    path = tmp_path / "checkpoints" / "last.ckpt"
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_MID_SAVE, str(path)], capture_output=True, timeout=120
    )
    assert done.returncode == -9, done.stderr.decode()  # really killed by SIGKILL
    checkpoint = load_checkpoint_safely(path)
    assert checkpoint["global_step"] == 1 and checkpoint["state_dict"]["w"].eq(1.0).all()
    leftovers = list(path.parent.glob(".last.ckpt.*.tmp"))
    assert len(leftovers) == 1  # the half-written temporary, never under the real name
    SafeCheckpointIO().save_checkpoint({"state_dict": {}, "global_step": 3}, path)
    assert not list(path.parent.glob(".last.ckpt.*.tmp"))  # cleaned by the next save
    assert load_checkpoint_safely(path)["global_step"] == 3


class _Payload:
    """Unpickling this creates a marker file: code run by merely loading a file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_payload_in_a_checkpoint_is_refused_not_run(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "extra": _Payload(str(marker))}, evil)
    with pytest.raises(DataError) as info:
        SafeCheckpointIO().load_checkpoint(evil)
    assert not marker.exists()
    message = str(info.value)
    assert (
        str(evil) in message
        and "refusing" in message
        and re.search(r"asks for [\w.]*open\b", message)
    )
    assert "model.safetensors" in message  # points to the shareable format


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", None])
def test_corrupt_or_missing_checkpoints_are_data_errors(tmp_path, content):
    path = tmp_path / "bad.ckpt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match="bad.ckpt"):
        load_checkpoint_safely(path)


def test_a_checkpoint_without_weights_is_refused(tmp_path):
    torch.save({"epoch": 3}, tmp_path / "x.ckpt")
    with pytest.raises(DataError, match="not a Lightning checkpoint"):
        load_checkpoint_safely(tmp_path / "x.ckpt")


def test_asking_for_an_unsafe_load_is_refused(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "ok.ckpt")
    with pytest.raises(ConfigError, match="never unpickles"):
        SafeCheckpointIO().load_checkpoint(tmp_path / "ok.ckpt", weights_only=False)
    assert SafeCheckpointIO().load_checkpoint(tmp_path / "ok.ckpt")["state_dict"] == {}


def test_saves_go_through_a_temporary_and_keep_permissions_private(tmp_path):
    path = tmp_path / "a.ckpt"
    SafeCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(2)}}, path)
    assert os.listdir(tmp_path) == ["a.ckpt"]
    assert torch.load(path, weights_only=True)["state_dict"]["w"].tolist() == [1.0, 1.0]
