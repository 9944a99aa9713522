"""gmvae against the author's training (``bench/reference``): throughput, and time to test accuracy.

Two sides, each in a process of its own, so that each has its own peak RSS and thread
settings and warms up once, then stays alive between windows:

- **gmvae**: ``configs/mnist-100.yaml`` built as ``gmvae fit`` builds it (the same
  parser, ``build_trainer`` and callbacks: bf16 where native, the fast kernels, the
  weight average, ``--threads auto``), trained by one ``Trainer.fit`` that pauses
  between windows;
- **reference**: :class:`reference.train.AuthorTrainer`, the author's TensorFlow model
  and schedule transcribed to eager fp32 PyTorch, at PyTorch's default thread count.

This process runs windows of steps on the two in turn, the side that goes first
alternating from round to round, so that both see the same state of the machine.
A window's time runs from the parent's go to the next step's start, every callback's
work of the last step included; the wait for the parent is outside it, for gmvae's
thread tuner too (its clock stops while the fit waits).

``--mode throughput`` (the default) times ``--windows`` windows of ``--width`` steps
after one untimed warm-up window, and prints per window the samples/s of each side
(200 rows a step for both: 100 unlabeled + 100 labeled), their ratio, each side's
thread count and the load average, then the medians and each process's peak RSS.

``--mode accuracy`` trains a fresh pair of processes per seed, in alternating windows
of ``--eval-every`` steps (fairer on a shared machine than one side after the other),
and evaluates the TEST set after every window: gmvae through Lightning's validation
loop run on the test set, i.e. argmax q(y|x) with the weight average where the config
evaluates it (``model.ema_decay``); the reference with batch norm's moving statistics,
as the author's ``SSVAE.test``. Evaluation time is not on the training clock, nor is
start-up (data loading, the Trainer's set-up). A side stops when it has reached every
``--targets`` accuracy or trained ``--max-minutes``; the other continues alone. The
table gives the training minutes until the test accuracy first reached each target
(to the resolution of one window), and the ratio reference / gmvae, as a bound (``>x``,
``<x``) where a side did not reach the target.

``--background-load K`` starts K busy processes before the sides and stops them at the
end, also on Ctrl-C, an error or SIGTERM (they also exit by themselves when this
process dies). Each spins ``while True: pass`` in pure Python: it holds one core all
the time with one thread, no memory traffic and no BLAS threads of its own, so the load
is the same on every machine and build: exactly the "another process holds a core"
case of docs/PERFORMANCE.md ("Threads on a busy machine"), where a numpy matmul loop
would add cache and memory-bandwidth contention that depends on the BLAS build and its
thread count.

Every option not named below is a gmvae fit option for the gmvae side, e.g.
``--trainer.precision=32-true``. Ends with one JSON line.

    python bench/against_reference.py                                # throughput, quiet machine
    python bench/against_reference.py --background-load 2            # with 2 busy processes
    python bench/against_reference.py --threads 1                    # both sides at 1 thread
    python bench/against_reference.py --mode accuracy --seeds 0 1 2 --targets 0.95 0.97 0.98 --max-minutes 20
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import signal
import statistics
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

# Only the standard library at the top: the spawned processes (busy loops included)
# import this module, and torch is imported by the sides that need it.
REPO = Path(__file__).resolve().parents[1]
SIDES = ("gmvae", "reference")
SPAWN = mp.get_context("spawn")  # fresh interpreters: no memory or thread state inherited


@dataclass(frozen=True)
class SideOptions:
    """What a side's process needs to build its training."""

    config: str
    data_dir: str
    seed: int
    threads: int | None  # None: gmvae --threads auto, the reference PyTorch's default
    eval_every: int | None  # steps between test evaluations; None: never (throughput)
    test_rows: int | None  # evaluate on the first N test images only (quick checks)
    gmvae_options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Window:
    """A side's answer to one window of steps."""

    steps: int
    seconds: float  # training only: no evaluation, no waiting for the parent
    threads: int  # torch's thread count at the window's end
    peak_rss_mb: float  # the side's process, so far
    accuracy: float | None = None  # test accuracy after the window, when asked
    eval_seconds: float = 0.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------------------
# The sides (each runs in its own process)


def serve(conn: Connection, side: str, options: SideOptions) -> None:
    """A side's process: build, say ready, then run the windows the parent asks for."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        (serve_gmvae if side == "gmvae" else serve_reference)(conn, options)
    except (EOFError, BrokenPipeError):
        pass  # the parent went away
    except BaseException:
        with suppress(OSError, EOFError):
            conn.send({"error": traceback.format_exc()})
    finally:
        conn.close()


def serve_reference(conn: Connection, options: SideOptions) -> None:
    import torch
    from reference.train import AuthorTrainer, load_mnist

    if options.threads is not None:
        torch.set_num_threads(options.threads)
    train_x, train_y, test_x, test_y = load_mnist(options.data_dir)
    if options.test_rows is not None:
        test_x, test_y = test_x[: options.test_rows], test_y[: options.test_rows]
    trainer = AuthorTrainer(train_x, train_y, seed=options.seed)
    rows = trainer.settings.unlabeled_batch + len(trainer.labeled_x)
    conn.send({"ready": True, "rows": rows, "precision": "32-true (eager)"})
    while (request := conn.recv())["command"] == "window":
        start = time.perf_counter()
        for _ in range(request["steps"]):
            trainer.step()
        seconds = time.perf_counter() - start
        accuracy, eval_seconds = None, 0.0
        if request["evaluate"]:
            start = time.perf_counter()
            accuracy = trainer.accuracy(test_x, test_y)
            eval_seconds = time.perf_counter() - start
        window = Window(
            request["steps"],
            seconds,
            torch.get_num_threads(),
            peak_rss_mb(),
            accuracy,
            eval_seconds,
        )
        conn.send(asdict(window))


def serve_gmvae(conn: Connection, options: SideOptions) -> None:
    import warnings

    import lightning as L
    import numpy as np
    import torch
    from train_throughput import BARE_TRAINER, build

    from gmvae.training.threads import AUTO, ThreadTuner
    from gmvae.training.trainer import build_trainer, quiet_lightning

    class Gate(L.Callback):
        """Pauses the fit at a step's start until the parent asks for the next window.

        The pause is left off ``clock``, which the thread tuner times steps with.
        """

        def __init__(self) -> None:
            self.paused = 0.0
            self.steps = self.left = 0  # the window's steps, and those left of it
            self.start: float | None = None  # the window's start (None: none yet)
            self.eval_seconds, self.accuracy = 0.0, None
            self._eval_start = 0.0

        def clock(self) -> float:
            return time.perf_counter() - self.paused

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> int | None:
            if self.left:
                self.left -= 1
                return None
            now = time.perf_counter()
            if self.start is None:
                rows = len(batch[0])
                conn.send({"ready": True, "rows": rows, "precision": str(trainer.precision)})
            else:
                window = Window(
                    self.steps,
                    now - self.start - self.eval_seconds,
                    torch.get_num_threads(),
                    peak_rss_mb(),
                    self.accuracy,
                    self.eval_seconds,
                )
                conn.send(asdict(window))
            request = conn.recv()
            resumed = time.perf_counter()
            self.paused += resumed - now
            if request["command"] != "window":
                trainer.should_stop = True
                return -1  # ends the epoch, hence the fit (should_stop)
            self.steps = self.left = request["steps"]
            self.left -= 1  # this step is the window's first
            self.start, self.eval_seconds, self.accuracy = resumed, 0.0, None
            return None

        def on_validation_start(self, trainer, pl_module) -> None:
            self._eval_start = time.perf_counter()

        def on_validation_end(self, trainer, pl_module) -> None:
            self.eval_seconds += time.perf_counter() - self._eval_start
            self.accuracy = float(trainer.callback_metrics["val/accuracy"])

    sys.argv = sys.argv[:1]  # the parser reads only the overrides (spawn copies our argv)
    # Lightning's notices that gmvae fit shows too: noise in a table of windows.
    warnings.filterwarnings("ignore", message=".*overridden `on_after_batch_transfer`.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated.*")
    overrides = [
        "--data.data_dir",
        options.data_dir,
        f"--seed_everything={options.seed}",
        *options.gmvae_options,
    ]
    with quiet_lightning():
        module, dm, precision = build(options.config, overrides)
    dm.setup("fit")  # loaded before the first window
    evaluation: dict[str, Any] = {"limit_val_batches": 0}
    if options.eval_every is not None:
        dm.setup("test")
        rows = len(dm.test_set) if options.test_rows is None else options.test_rows
        dm.val_set = dm.test_set.subset(np.arange(rows))  # validation runs on the test set
        evaluation = {"val_check_interval": options.eval_every, "check_val_every_n_epoch": None}
    gate = Gate()
    with quiet_lightning():
        trainer = build_trainer(
            precision=precision,
            max_epochs=-1,  # the parent decides when to stop
            callbacks=[gate],
            threads=AUTO if options.threads is None else options.threads,
            **evaluation,
            **BARE_TRAINER,
        )
        for callback in trainer.callbacks:
            if isinstance(callback, ThreadTuner):
                callback.clock = gate.clock
        trainer.fit(module, datamodule=dm)


# --------------------------------------------------------------------------------------
# The parent: side processes, background load, the two modes


class Side:
    """The parent's handle on one side's process."""

    def __init__(self, name: str, options: SideOptions) -> None:
        self.name = name
        self.conn, child = SPAWN.Pipe()
        self.process = SPAWN.Process(
            target=serve, args=(child, name, options), name=f"against-reference-{name}"
        )
        self.process.start()
        child.close()
        self.rows = 0
        self.precision = ""

    def _receive(self) -> dict[str, Any]:
        try:
            message = self.conn.recv()
        except EOFError:
            self.process.join(5)
            raise RuntimeError(
                f"the {self.name} process ended (exit code {self.process.exitcode})"
            ) from None
        if "error" in message:
            raise RuntimeError(f"the {self.name} process failed:\n{message['error']}")
        return message

    def wait_ready(self) -> None:
        ready = self._receive()
        self.rows, self.precision = ready["rows"], ready["precision"]

    def window(self, steps: int, evaluate: bool = False) -> Window:
        self.conn.send({"command": "window", "steps": steps, "evaluate": evaluate})
        return Window(**self._receive())

    def stop(self) -> None:
        """Ask the process to end; end it by force if it does not within a minute."""
        if self.process.is_alive():
            with suppress(OSError):
                self.conn.send({"command": "stop"})
        self.conn.close()  # a process still waiting for a window sees EOF and ends
        self.process.join(60)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


@contextmanager
def sides(options: dict[str, SideOptions]) -> Iterator[dict[str, Side]]:
    """Both sides started (they load their data at the same time), ready, and stopped at the end."""
    started: dict[str, Side] = {}
    try:
        for name, opts in options.items():
            started[name] = Side(name, opts)
        for side in started.values():
            side.wait_ready()
        yield started
    finally:
        for side in started.values():
            side.stop()


def spin(parent: int) -> None:
    """A busy loop (one core, one thread) until stopped, or until the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while os.getppid() == parent:
        for _ in range(1_000_000):  # about 20 ms between checks of the parent
            pass


@contextmanager
def background_load(count: int) -> Iterator[list[int]]:
    """``count`` busy processes for the duration of the block; yields their process ids."""
    processes = [
        SPAWN.Process(target=spin, args=(os.getpid(),), name=f"background-load-{i}", daemon=True)
        for i in range(count)
    ]
    try:
        for process in processes:
            process.start()
        yield [p.pid for p in processes if p.pid is not None]
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            if process.pid is not None:
                process.join(10)
                if process.is_alive():
                    process.kill()
                    process.join()


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def side_options(args: argparse.Namespace, gmvae_options: list[str], seed: int) -> SideOptions:
    evaluate = args.mode == "accuracy"
    return SideOptions(
        config=args.config,
        data_dir=args.data_dir,
        seed=seed,
        threads=args.threads,
        eval_every=args.eval_every if evaluate else None,
        test_rows=args.test_rows,
        gmvae_options=tuple(gmvae_options),
    )


def round_order(index: int) -> tuple[str, ...]:
    """gmvae first in even rounds, the reference first in odd ones."""
    return SIDES if index % 2 == 0 else SIDES[::-1]


def throughput(args: argparse.Namespace, gmvae_options: list[str]) -> dict[str, Any]:
    options = side_options(args, gmvae_options, seed=0)
    rates: dict[str, list[float]] = {name: [] for name in SIDES}
    threads: dict[str, list[int]] = {name: [] for name in SIDES}
    loads: list[list[float]] = []
    last: dict[str, Window] = {}
    with sides(dict.fromkeys(SIDES, options)) as running:
        for side in running.values():
            side.window(args.warmup)
        for i in range(args.windows):
            for name in round_order(i):
                last[name] = window = running[name].window(args.width)
                rates[name].append(running[name].rows * window.steps / window.seconds)
                threads[name].append(window.threads)
            loads.append(load_average())
            g, r = rates["gmvae"][-1], rates["reference"][-1]
            print(
                f"window {i + 1}: gmvae {g:,.0f} samples/s (threads {threads['gmvae'][-1]}), "
                f"reference {r:,.0f} (threads {threads['reference'][-1]}), ratio {g / r:.2f}x; "
                f"load {' '.join(f'{x:.2f}' for x in loads[-1])}",
                flush=True,
            )
        precision = running["gmvae"].precision
        rows = {name: side.rows for name, side in running.items()}
    medians = {name: statistics.median(rates[name]) for name in SIDES}
    ratios = [g / r for g, r in zip(rates["gmvae"], rates["reference"], strict=True)]
    rss = {name: last[name].peak_rss_mb for name in SIDES}
    ratio = medians["gmvae"] / medians["reference"]
    print(
        f"median: gmvae {medians['gmvae']:,.0f} samples/s ({precision}), reference "
        f"{medians['reference']:,.0f} (fp32 eager): {ratio:.2f}x "
        f"(median of per-window ratios {statistics.median(ratios):.2f}x)"
    )
    print(f"peak RSS: gmvae {rss['gmvae']:,.0f} MB, reference {rss['reference']:,.0f} MB")
    return {
        "gmvae_precision": precision,
        "windows": args.windows,
        "width": args.width,
        "warmup": args.warmup,
        "rows_per_step": rows,
        "gmvae_samples_per_s": round(medians["gmvae"], 1),
        "reference_samples_per_s": round(medians["reference"], 1),
        "ratio": round(ratio, 3),
        "median_window_ratio": round(statistics.median(ratios), 3),
        "gmvae_peak_rss_mb": round(rss["gmvae"]),
        "reference_peak_rss_mb": round(rss["reference"]),
        "gmvae_windows": [round(x, 1) for x in rates["gmvae"]],
        "reference_windows": [round(x, 1) for x in rates["reference"]],
        "gmvae_threads": threads["gmvae"],
        "reference_threads": threads["reference"],
        "load_average": loads,
    }


@dataclass
class Progress:
    """One side's training clock and test accuracies in the accuracy mode."""

    targets: tuple[float, ...]
    steps: int = 0
    minutes: float = 0.0
    reached: dict[float, float] = field(default_factory=dict)  # target -> minutes
    history: list[dict[str, float]] = field(default_factory=list)

    def add(self, window: Window) -> None:
        assert window.accuracy is not None
        self.steps += window.steps
        self.minutes += window.seconds / 60
        for target in self.targets:
            if window.accuracy >= target and target not in self.reached:
                self.reached[target] = self.minutes
        self.history.append(
            {
                "step": self.steps,
                "minutes": round(self.minutes, 3),
                "test_accuracy": round(window.accuracy, 4),
                "eval_seconds": round(window.eval_seconds, 2),
                "threads": window.threads,
                "load_1min": load_average()[0],
            }
        )

    def done(self, max_minutes: float) -> bool:
        return len(self.reached) == len(self.targets) or self.minutes >= max_minutes


def train_seed(
    args: argparse.Namespace, gmvae_options: list[str], seed: int
) -> dict[str, Progress]:
    """Both sides of one seed in alternating windows, each until its targets or the cap."""
    options = side_options(args, gmvae_options, seed)
    progress = {name: Progress(tuple(args.targets)) for name in SIDES}
    with sides(dict.fromkeys(SIDES, options)) as running:
        active = dict(running)
        i = 0
        while active:
            for name in round_order(i):
                if name not in active:
                    continue
                window = active[name].window(args.eval_every, evaluate=True)
                side = progress[name]
                side.add(window)
                print(
                    f"seed {seed} {name}: step {side.steps}, test accuracy {window.accuracy:.4f} "
                    f"after {side.minutes:.2f} min of training (evaluation {window.eval_seconds:.1f} s, "
                    f"threads {window.threads}, load {side.history[-1]['load_1min']:.2f})",
                    flush=True,
                )
                if side.done(args.max_minutes):
                    active.pop(name).stop()
            i += 1
    return progress


@dataclass(frozen=True)
class Ratio:
    """reference minutes / gmvae minutes, or a bound on it: ``kind`` is "=", ">" or "<"."""

    value: float
    kind: str

    def __str__(self) -> str:
        return f"{'' if self.kind == '=' else self.kind}{self.value:.2f}x"


def ratio(gmvae: Progress, reference: Progress, target: float) -> Ratio | None:
    """None where neither side reached the target (no bound either way)."""
    g, r = gmvae.reached.get(target), reference.reached.get(target)
    if g is not None and r is not None:
        return Ratio(r / g, "=")
    if g is not None:  # the reference would have needed more than it trained
        return Ratio(reference.minutes / g, ">")
    if r is not None:
        return Ratio(r / gmvae.minutes, "<")
    return None


def median_ratio(ratios: list[Ratio]) -> Ratio | None:
    """The median over seeds; a bound when a bound can move it, None when it can move both ways."""
    if not ratios:
        return None
    ordered = sorted(ratios, key=lambda x: x.value)
    n = len(ordered)
    middle = [n // 2] if n % 2 else [n // 2 - 1, n // 2]
    value = statistics.median(x.value for x in ordered)
    # A lower bound at or below the middle can raise the median, an upper bound at or above
    # it can lower it; bounds beyond the middle stay beyond it.
    up = any(x.kind == ">" and i <= middle[-1] for i, x in enumerate(ordered))
    down = any(x.kind == "<" and i >= middle[0] for i, x in enumerate(ordered))
    if up and down:
        return None
    return Ratio(value, ">" if up else "<" if down else "=")


def minutes_text(side: Progress, target: float) -> str:
    if target in side.reached:
        return f"{side.reached[target]:.2f}"
    return f"not reached in {side.minutes:.1f} min"


def accuracy(args: argparse.Namespace, gmvae_options: list[str]) -> dict[str, Any]:
    runs = {seed: train_seed(args, gmvae_options, seed) for seed in args.seeds}
    print(
        f"\n{'seed':>4}  {'target':>6}  {'gmvae min':>24}  {'reference min':>24}  ratio ref/gmvae"
    )
    per_target: dict[float, list[Ratio]] = {t: [] for t in args.targets}
    results = []
    for seed, progress in runs.items():
        g, r = progress["gmvae"], progress["reference"]
        for target in args.targets:
            found = ratio(g, r, target)
            if found is not None:
                per_target[target].append(found)
            print(
                f"{seed:>4}  {target:>6.1%}  {minutes_text(g, target):>24}  "
                f"{minutes_text(r, target):>24}  {found if found is not None else 'n/a'}"
            )
        results.append(
            {
                "seed": seed,
                **{
                    name: {
                        "minutes_to_target": {
                            str(t): None if t not in p.reached else round(p.reached[t], 3)
                            for t in args.targets
                        },
                        "minutes_trained": round(p.minutes, 3),
                        "steps": p.steps,
                        "best_test_accuracy": max(h["test_accuracy"] for h in p.history),
                        "history": p.history,
                    }
                    for name, p in progress.items()
                },
            }
        )
    medians = {t: median_ratio(per_target[t]) for t in args.targets}
    print(
        "median ratio over seeds: "
        + "; ".join(
            f"{t:.1%} {m if m is not None else 'n/a'}"
            + (
                f" ({len(per_target[t])} of {len(runs)} seeds)"
                if len(per_target[t]) < len(runs)
                else ""
            )
            for t, m in medians.items()
        )
    )
    return {
        "seeds": args.seeds,
        "targets": args.targets,
        "max_minutes": args.max_minutes,
        "eval_every": args.eval_every,
        "results": results,
        "median_ratio": {
            str(t): None if m is None else {"value": round(m.value, 3), "bound": m.kind}
            for t, m in medians.items()
        },
    }


def parse_args() -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("throughput", "accuracy"), default="throughput")
    parser.add_argument("--config", default=str(REPO / "configs" / "mnist-100.yaml"))
    parser.add_argument(
        "--data-dir", default=os.environ.get("GMVAE_DATA_DIR", str(REPO.parent / "shared" / "data"))
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="a fixed thread count for both sides (default: gmvae --threads auto, "
        "the reference PyTorch's default)",
    )
    parser.add_argument("--background-load", type=int, default=0, metavar="K")
    throughput_options = parser.add_argument_group("throughput")
    throughput_options.add_argument("--warmup", type=int, default=20, help="untimed steps first")
    throughput_options.add_argument("--windows", type=int, default=9)
    throughput_options.add_argument("--width", type=int, default=30, help="steps per window")
    accuracy_options = parser.add_argument_group("accuracy")
    accuracy_options.add_argument("--seeds", type=int, nargs="+", default=[0])
    accuracy_options.add_argument("--targets", type=float, nargs="+", default=[0.95, 0.97, 0.98])
    accuracy_options.add_argument("--max-minutes", type=float, default=20.0)
    accuracy_options.add_argument(
        "--eval-every", type=int, default=100, help="steps between test evaluations (a window)"
    )
    accuracy_options.add_argument(
        "--test-rows", type=int, help="evaluate on the first N test images (quick checks only)"
    )
    # Every option not named above is a gmvae fit option, e.g. --trainer.precision=32-true.
    args, gmvae_options = parser.parse_known_args()
    args.targets = sorted(args.targets)
    return args, gmvae_options


def header(args: argparse.Namespace, gmvae_options: list[str]) -> None:
    threads = "default" if args.threads is None else str(args.threads)
    print(
        f"against_reference {args.mode}: {os.cpu_count()} CPUs, threads {threads}, "
        f"background load {args.background_load}, load {' '.join(map(str, load_average()))}"
        + (f", gmvae options {' '.join(gmvae_options)}" if gmvae_options else ""),
        flush=True,
    )
    if "OMP_NUM_THREADS" in os.environ:
        print(
            f"note: OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} is set: both sides run at "
            "that count and gmvae does not tune it; unset it to measure the defaults",
            flush=True,
        )


def main() -> None:
    args, gmvae_options = parse_args()
    # SIGTERM ends the run like Ctrl-C: the blocks below stop the sides and the load.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    header(args, gmvae_options)
    with ExitStack() as stack:
        pids = stack.enter_context(background_load(args.background_load))
        if pids:
            print(f"background load: {len(pids)} busy processes, pids {' '.join(map(str, pids))}")
        try:
            body = (throughput if args.mode == "throughput" else accuracy)(args, gmvae_options)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise SystemExit(130) from None
    result = {
        "mode": args.mode,
        "config": os.path.relpath(args.config, REPO),
        "threads": args.threads if args.threads is not None else "default",
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "background_load": args.background_load,
        "background_pids": pids,
        **({"gmvae_options": gmvae_options} if gmvae_options else {}),
        **body,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
