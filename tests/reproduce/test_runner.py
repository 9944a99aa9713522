"""The results runner on the offline digits demo: runs, tabulates, resumes."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from gmvae.cli.app import main
from gmvae.io.checkpoint import load_checkpoint_safely
from gmvae.reproduce.results import BEGIN, END, _summary, write_table

from ..conftest import REPO


def reproduce(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(["reproduce", *args])
    return exit_info.value.code


def table_row(table: str, experiment: str) -> list[str]:
    line = next(ln for ln in table.splitlines() if ln.startswith(f"| {experiment} |"))
    return [c.strip() for c in line.strip("|").split(" | ")]


@pytest.mark.slow
def test_runner_writes_the_table_and_skips_finished_runs(tmp_path, capsys):
    out, table = tmp_path / "runs", tmp_path / "RESULTS.md"
    args = ["--experiments", "digits-demo", "--seeds", "2", "--max-epochs", "1"]
    args += ["--out-dir", str(out), "--table", str(table)]
    assert reproduce(*args) == 0
    first = capsys.readouterr().out
    assert first.count("finished in") == 2 and "skipped" not in first

    runs = [out / "digits-demo" / "epochs-1" / f"seed-{s}" for s in (0, 1)]
    metrics = [json.loads((r / "metrics.json").read_text()) for r in runs]
    assert [m["seed"] for m in metrics] == [0, 1] and all(m["epochs"] == 1 for m in metrics)
    record = json.loads((runs[1] / "reproduce.json").read_text())
    assert record["status"] == "finished" and record["wall_seconds"] > 0
    assert "--seed_everything 1" in record["command"]

    text = table.read_text()
    assert text.startswith("# Results") and BEGIN in text and END in text
    row = table_row(text, "digits-demo")
    errors = [m["test_error"] for m in metrics]
    mean, std = sum(errors) / 2, abs(errors[0] - errors[1]) / 2**0.5
    assert row[3] == f"{mean:.2f} ± {std:.2f}"
    assert row[4] == "-"  # no k-means baseline: not a clustering run
    assert row[5] == "0, 1" and row[6] == "1"
    assert "--seed_everything $SEED" in row[8] and "seed-$SEED" in row[8]
    # The paper's experiments that were not run say so.
    assert "not measured: not run" in table_row(text, "svhn-1000")[3]
    assert table_row(text, "svhn-1000")[4:] == ["-"] * 5
    assert table_row(text, "mnist-100")[2] == "1.94 ± 0.49, Table 1"

    stamps = [(r / "metrics.json").stat().st_mtime_ns for r in runs]
    assert reproduce(*args) == 0  # resumes: nothing left to run
    second = capsys.readouterr().out
    assert second.count("finished earlier, skipped") == 2 and "running" not in second
    assert [(r / "metrics.json").stat().st_mtime_ns for r in runs] == stamps
    assert table_row(table.read_text(), "digits-demo") == row


def test_a_failed_run_is_not_measured_with_its_reason(tmp_path, capsys):
    out, table = tmp_path / "runs", tmp_path / "RESULTS.md"
    args = ["--experiments", "svhn-1000", "--seeds", "1", "--max-epochs", "1", "--no-download"]
    args += ["--data-dir", str(tmp_path / "empty"), "--out-dir", str(out), "--table", str(table)]
    assert reproduce(*args) == 1
    assert "FAILED" in capsys.readouterr().out
    row = table_row(table.read_text(), "svhn-1000")
    assert row[3] == "not measured: svhn data not found: need train_32x32.mat"
    assert "| digits-demo |" not in table.read_text()  # not in the paper and not run: no row
    record = json.loads((out / "svhn-1000" / "epochs-1" / "seed-0" / "reproduce.json").read_text())
    assert record["status"] == "failed" and record["returncode"] == 2
    # A second call retries it, keeping the failed attempt aside.
    assert reproduce(*args) == 1
    assert "moved to" in capsys.readouterr().out
    assert (out / "svhn-1000" / "epochs-1" / "seed-0.attempt-1" / "fit.log").is_file()


def test_dry_run_prints_the_commands_and_runs_nothing(tmp_path, capsys):
    out = tmp_path / "runs"
    args = ["--experiments", "mnist-100-la", "mnist-cluster", "--seeds", "2", "--max-epochs", "3"]
    assert reproduce(*args, "--out-dir", str(out), "--dry-run") == 0
    printed = capsys.readouterr().out
    assert printed.count("would run") == 4
    order = [ln.split(":")[0].split("] ")[1] for ln in printed.splitlines() if "would run" in ln]
    assert order == [  # seed by seed, so a call cut short covers every experiment
        "mnist-100-la (epochs 3) seed 0",
        "mnist-cluster (epochs 3) seed 0",
        "mnist-100-la (epochs 3) seed 1",
        "mnist-cluster (epochs 3) seed 1",
    ]
    assert "--model.loss.w_metric 0" in printed  # the L_A-only ablation cell
    assert "configs/mnist-cluster.yaml --trainer.max_epochs 3 --seed_everything 1" in printed
    assert not out.exists()


def test_unknown_experiment_names_the_choices(capsys):
    assert reproduce("--experiments", "mnist-10") == 2
    assert "mnist-100" in capsys.readouterr().err


def test_a_table_file_without_the_markers_is_never_overwritten(tmp_path):
    mine = tmp_path / "RESULTS.md"
    mine.write_text("my notes\n")
    with pytest.raises(ValueError, match="refusing to overwrite"):
        write_table(mine, f"{BEGIN}\nnew\n{END}")
    assert mine.read_text() == "my notes\n"
    mine.write_text(f"intro\n{BEGIN}\nold\n{END}\noutro\n")
    write_table(mine, f"{BEGIN}\nnew\n{END}")
    assert mine.read_text() == f"intro\n{BEGIN}\nnew\n{END}\noutro\n"


def test_summary_is_mean_sample_std_and_best():
    assert _summary([1.0, 2.0, 3.0], lower_is_better=True, best=False) == "2.00 ± 1.00"
    assert _summary([90.0, 94.0], lower_is_better=False, best=True) == "92.00 ± 2.83 (best 94.00)"
    assert _summary([5.0], lower_is_better=True, best=True) == "5.00 (1 seed)"


@pytest.mark.slow
def test_a_run_killed_midway_resumes_from_its_last_checkpoint(tmp_path):
    """A call killed during a run (preemption, out of memory) continues that run from its
    last.ckpt on the next call, instead of setting it aside and starting again."""
    out, table = tmp_path / "runs", tmp_path / "RESULTS.md"
    command = [sys.executable, "-m", "gmvae", "reproduce", "--experiments", "digits-demo"]
    command += ["--seeds", "1", "--max-epochs", "6", "--out-dir", str(out), "--table", str(table)]
    run = out / "digits-demo" / "epochs-6" / "seed-0"
    first = subprocess.Popen(command, cwd=REPO, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not (run / "checkpoints" / "best-epoch001.ckpt").exists():
            assert first.poll() is None and time.monotonic() < deadline, "finished before the kill"
            time.sleep(0.02)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert not (run / "metrics.json").exists()
    saved = load_checkpoint_safely(run / "checkpoints" / "last.ckpt")["global_step"]
    assert saved > 0

    second = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "resuming the unfinished earlier attempt" in second.stdout
    assert not list(run.parent.glob("seed-0.attempt-*"))  # nothing set aside
    record = json.loads((run / "reproduce.json").read_text())
    assert record["status"] == "finished" and record["attempts"] == 2
    log = (run / "fit.log").read_text()
    assert "Restoring states from the checkpoint" in log  # continued, not restarted
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 6
