"""Failures as a user meets them, with the ``gmvae`` command run in a subprocess: a folder
with one labeled class, a disk that fills up during training, a typo and its correction.

Each ends in one ``gmvae: error:`` line and exit status 2, and loses nothing the run had
saved.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gmvae.io.checkpoint import load_checkpoint_safely

from ..conftest import DEMO, QUIET, REPO
from ..data.image_folder import digit_image

FOLDER = str(REPO / "configs" / "folder.yaml")


def gmvae(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gmvae", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
    )


def one_error(done: subprocess.CompletedProcess) -> str:
    """The single ``gmvae: error:`` line of a run that must have failed with status 2."""
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("gmvae: error:")]
    assert len(lines) == 1, done.stderr[-3000:]
    return lines[0]


def test_a_folder_with_one_labeled_class(tmp_path):
    images = tmp_path / "images"
    for i in range(30):
        path = images / ("3" if i < 10 else "unlabeled") / f"img{i:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        digit_image(i, 8).save(path)
    run = tmp_path / "run"
    done = gmvae(
        "fit", "--config", FOLDER, "--data.data_dir", str(images), "--trainer.default_root_dir",
        str(run), "--data.folder.image_size", "8", *QUIET,
    )  # fmt: skip
    error = one_error(done)
    assert str(images) in error and "only one class has labeled images ('3')" in error
    assert not run.exists()


def _can_mount_tmpfs(where: Path) -> bool:
    """A private tmpfs needs a user namespace (unshare -rm), which some systems forbid."""
    if shutil.which("unshare") is None:
        return False
    where.mkdir(parents=True, exist_ok=True)
    probe = subprocess.run(
        [
            "unshare",
            "-rm",
            "sh",
            "-c",
            f"mount -t tmpfs -o size=1m tmpfs {shlex.quote(str(where))}",
        ],
        capture_output=True,
    )
    return probe.returncode == 0


def test_a_disk_that_fills_up_during_training(tmp_path):
    """A real full file system (a 32 MiB tmpfs that a callback fills at step 25): one line
    naming the checkpoint and the full disk, the checkpoints saved before intact, and the
    same command with --ckpt_path last finishes once there is room again."""
    disk, out = tmp_path / "disk", tmp_path / "out"
    if not _can_mount_tmpfs(disk):
        pytest.skip("cannot mount a private tmpfs here (no user namespaces)")
    out.mkdir()
    run, filler = disk / "run", disk / "filler"
    filling = {
        "class_path": "tests.runs.crash.FillDiskAtStep",
        "init_args": {"step": 25, "filler": str(filler)},
    }
    fit = [
        sys.executable, "-m", "gmvae", "fit", "--config", DEMO, "--trainer.max_epochs", "2",
        "--trainer.default_root_dir", str(run), "--autosave.train_time_interval", "null",
        "--autosave.every_n_train_steps", "4", "--threads", "1", *QUIET,
    ]  # fmt: skip
    first = shlex.join([*fit, "--trainer.callbacks+=" + json.dumps(filling)])
    again = shlex.join([*fit, "--ckpt_path", "last"])
    script = f"""
        mount -t tmpfs -o size=32m tmpfs {disk}
        {first} 2> {out}/first.err; echo $? > {out}/first.rc
        cp -a {run} {out}/after-full
        rm {filler}
        {again} 2> {out}/again.err; echo $? > {out}/again.rc
        cp -a {run} {out}/after-rerun
    """
    subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=REPO, timeout=900, check=True)

    err = (out / "first.err").read_text()
    first_run = subprocess.CompletedProcess(first, int((out / "first.rc").read_text()), "", err)
    error = one_error(first_run)
    assert "the disk is full" in error and str(run / "checkpoints") in error, error
    assert "--ckpt_path last" in error
    saved = out / "after-full" / "checkpoints"
    assert not list(saved.glob(".*.tmp"))  # no half-written file left behind
    last = load_checkpoint_safely(saved / "last.ckpt")  # whole, and from before the fill
    assert 0 < last["global_step"] <= 25
    assert not (out / "after-full" / "metrics.json").exists()

    assert (out / "again.rc").read_text().strip() == "0", (out / "again.err").read_text()[-3000:]
    metrics = json.loads((out / "after-rerun" / "metrics.json").read_text())
    assert metrics["epochs"] == 2


def test_a_typo_leaves_the_run_directory_untouched_and_the_fix_just_runs(tmp_path):
    run = tmp_path / "run"
    common = ["fit", "--config", DEMO, "--trainer.default_root_dir", str(run), *QUIET]
    error = one_error(gmvae(*common, "--data.unlabeled_batch_size", "-5"))
    assert "unlabeled_batch_size=-5 must be >= 1" in error
    assert not run.exists()  # refused before anything was written
    error = one_error(gmvae(*common, "--model.loss.knn_k", "60"))  # model against data
    assert "knn_k=60" in error and not run.exists()
    done = gmvae(*common, "--trainer.max_epochs", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 1


def test_a_start_that_failed_before_training_blocks_nothing(tmp_path):
    """An option Lightning refuses only once fit has begun leaves config.yaml and
    hparams.yaml; the corrected command, new or resumed, takes the folder over."""
    for resumed in ([], ["--ckpt_path", "last"]):
        run = tmp_path / f"run{len(resumed)}"
        common = ["fit", "--config", DEMO, "--trainer.default_root_dir", str(run), *QUIET]
        failed = gmvae(*common, "--trainer.val_check_interval", "5000")
        assert one_error(failed).startswith(
            "gmvae: error: --trainer.val_check_interval: `val_check_interval` (5000) must be "
            "less than or equal to the number of the training batches"
        )
        assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "hparams.yaml"]
        done = gmvae(*common, "--trainer.max_epochs", "1", "--seed_everything", "3", *resumed)
        assert done.returncode == 0, done.stderr[-3000:]
        assert json.loads((run / "metrics.json").read_text())["seed"] == 3
        if not resumed:
            assert "of a start that never trained; this run replaces them" in done.stderr
