"""bench/against_reference.py: the ratio bounds by hand, and both modes end to end with tiny
settings (its JSON line, and no busy process left behind, also after a SIGTERM)."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from against_reference import Progress, Ratio, median_ratio, ratio

from ..conftest import REPO

SCRIPT = REPO / "bench" / "against_reference.py"


def test_ratio_and_its_bounds():
    def side(minutes: float, reached_at: float | None = None) -> Progress:
        reached = {} if reached_at is None else {0.9: reached_at}
        return Progress((0.9,), minutes=minutes, reached=reached)

    assert ratio(side(2.0, 1.0), side(5.0, 4.0), 0.9) == Ratio(4.0, "=")
    assert ratio(side(2.0, 1.0), side(5.0), 0.9) == Ratio(5.0, ">")  # reference not there
    assert ratio(side(8.0), side(5.0, 4.0), 0.9) == Ratio(0.5, "<")  # gmvae not there
    assert ratio(side(8.0), side(5.0), 0.9) is None
    assert str(Ratio(5.0, ">")) == ">5.00x" and str(Ratio(4.0, "=")) == "4.00x"


def test_median_ratio_is_a_bound_only_when_a_bound_can_move_it():
    exact, more, less = (
        (lambda v: Ratio(v, "=")),
        (lambda v: Ratio(v, ">")),
        (lambda v: Ratio(v, "<")),
    )
    assert median_ratio([exact(1), exact(3), more(5)]) == Ratio(3, "=")  # stays above
    assert median_ratio([exact(1), more(2), exact(3)]) == Ratio(2, ">")
    assert median_ratio([less(1), exact(2), exact(3)]) == Ratio(2, "=")  # stays below
    assert median_ratio([exact(1), less(2), exact(3)]) == Ratio(2, "<")
    assert median_ratio([exact(1), more(4)]) == Ratio(2.5, ">")
    assert median_ratio([more(1), less(2), exact(3)]) is None
    assert median_ratio([]) is None


def bench_env() -> dict[str, str]:
    """This checkout's gmvae and bench/ first, whatever is installed."""
    path = [str(REPO / "src"), str(REPO / "bench"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}


def run_bench(*args: str, timeout: int = 600) -> tuple[dict, str]:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=bench_env(),
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stdout


def gone(pid: int) -> bool:
    """No such process, or only a zombie waiting for its parent."""
    try:
        return "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


@pytest.mark.slow
def test_throughput_with_a_background_load(real_data_dir):
    result, out = run_bench(
        "--data-dir", str(real_data_dir), "--warmup", "1", "--windows", "2", "--width", "2",
        "--background-load", "1",
    )  # fmt: skip
    assert result["mode"] == "throughput" and result["background_load"] == 1
    assert result["rows_per_step"] == {"gmvae": 200, "reference": 200}
    for name in ("gmvae", "reference"):
        assert result[f"{name}_samples_per_s"] > 0
        assert len(result[f"{name}_windows"]) == 2 and min(result[f"{name}_windows"]) > 0
        assert result[f"{name}_peak_rss_mb"] > 100  # each side's own process
        assert all(t >= 1 for t in result[f"{name}_threads"])
    assert result["ratio"] > 0 and result["median_window_ratio"] > 0
    assert len(result["load_average"]) == 2 and len(result["load_average"][0]) == 3
    assert "window 2:" in out and "peak RSS" in out
    assert len(result["background_pids"]) == 1
    assert all(gone(pid) for pid in result["background_pids"])


@pytest.mark.slow
def test_accuracy_table_and_bounds(real_data_dir):
    result, out = run_bench(
        "--data-dir", str(real_data_dir), "--mode", "accuracy", "--seeds", "0", "1",
        "--targets", "0.99", "0.02", "--eval-every", "2", "--max-minutes", "0.01",
        "--test-rows", "200", "--threads", "1",
    )  # fmt: skip
    assert result["mode"] == "accuracy" and result["targets"] == [0.02, 0.99]
    assert [r["seed"] for r in result["results"]] == [0, 1]
    for seed in result["results"]:
        for name in ("gmvae", "reference"):
            side = seed[name]
            # Argmax over 10 classes is right on at least one class's share of the images.
            assert side["minutes_to_target"]["0.02"] > 0
            assert side["minutes_to_target"]["0.99"] is None  # stopped by the cap
            assert side["minutes_trained"] >= 0.01 and side["steps"] % 2 == 0
            assert [h["step"] for h in side["history"]] == list(range(2, side["steps"] + 1, 2))
            assert all(0 <= h["test_accuracy"] <= 1 for h in side["history"])
    assert result["median_ratio"]["0.02"]["value"] > 0
    assert result["median_ratio"]["0.02"]["bound"] == "="
    assert result["median_ratio"]["0.99"] is None  # neither side reached it: no bound
    assert "median ratio over seeds" in out and "not reached in" in out


def read_until(stream, text: str, deadline: float) -> str:
    """Lines of ``stream`` up to the first holding ``text``."""
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    seen = ""
    while time.monotonic() < deadline:
        if selector.select(timeout=1.0):
            line = stream.readline()
            if not line:
                break
            seen += line
            if text in line:
                return seen
    raise AssertionError(f"no {text!r} in:\n{seen[-3000:]}")


@pytest.mark.slow
def test_sigterm_stops_the_sides_and_the_load(real_data_dir):
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--data-dir", str(real_data_dir), "--warmup", "1",
         "--windows", "1000", "--width", "2", "--background-load", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env=bench_env(),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        started = read_until(process.stdout, "background load:", deadline)
        pids = [int(p) for p in started.splitlines()[-1].split("pids")[1].split()]
        read_until(process.stdout, "window 1:", deadline)  # the sides are training
        children = [int(p) for p in subprocess.check_output(["ps", "-o", "pid=", "--ppid", str(process.pid)], text=True).split()]  # fmt: skip
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 143
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert len(pids) == 2 and set(pids) <= set(children)
    assert all(gone(pid) for pid in pids)
    time.sleep(2)  # multiprocessing's resource tracker ends once its pipe closes
    assert all(gone(pid) for pid in children)
