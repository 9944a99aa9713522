"""Training and prediction throughput of gmvae against the plain fp32 eager baseline.

Builds the model and data module from a config exactly as ``gmvae fit`` does (through
the same LightningCLI parser), trains a fixed number of steps on Lightning's Trainer
with the configured precision, and prints medians over several timing windows:
samples/s (unlabeled + labeled rows per step), model FLOPs per training sample
(``torch.utils.flop_counter``), achieved GFLOP/s, the machine's fp32 and bf16 matmul
GFLOP/s measured in the same run, the fraction of peak for the precision used, and
peak RSS. The baseline (``--trainer.precision 32-true``, ``--model.channels_last
false``, ``--model.fast_kernels false``, ``--model.compile false``) runs in the
same process, its timing windows taken in turn with the optimized run's. It ends with
one JSON line.

    python bench/train_throughput.py                       # MNIST-100 (--data.data_dir DATA)
    python bench/train_throughput.py --shape svhn          # synthetic SVHN tensors, batch 400
    python bench/train_throughput.py --against='--model.fast_kernels=false'   # an A/B
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import lightning as L
import torch
from torch.utils.flop_counter import FlopCounterMode

from gmvae.cli.app import CLI_DEFAULTS, GMVAECLI
from gmvae.data.arrays import ImageArrays, to_float
from gmvae.model.fast_kernels import set_fast_kernels
from gmvae.training import GMVAEDataModule, GMVAEModule
from gmvae.training.datamodule import ArrayDataModule
from gmvae.training.precision import cpu_has_native_bf16
from gmvae.training.trainer import build_trainer

REPO = Path(__file__).resolve().parents[1]
SHAPES = {"mnist": "configs/mnist-100.yaml", "svhn": "configs/svhn-1000.yaml"}
# The plain baseline: fp32, eager, NCHW, PyTorch's own kernels for every layer.
PLAIN_BASELINE = [
    "--trainer.precision=32-true",
    "--model.channels_last=false",
    "--model.compile=false",
    "--model.fast_kernels=false",
]


# The benchmarks' Trainers: no logger, checkpoints, progress bar, summary or sanity check.
BARE_TRAINER = {
    "logger": False,
    "enable_checkpointing": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "num_sanity_val_steps": 0,
}


class StepTimer(L.Callback):
    """Wall time of every training step: from one batch's start to the next one's, so
    that every callback's work after the optimizer step counts (the model's own, such as
    the weight average, run after this one's ``on_train_batch_end``)."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self._start: float | None = None

    def _lap(self) -> None:
        now = time.perf_counter()
        if self._start is not None:
            self.durations.append(now - self._start)
        self._start = now

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._lap()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._lap()  # the last step: every batch-end hook has run
        self._start = None


def build(config: str, overrides: list[str]) -> tuple[GMVAEModule, GMVAEDataModule, str]:
    """Model, data module and precision from the config, through gmvae fit's parser."""
    cli = GMVAECLI(
        GMVAEModule,
        GMVAEDataModule,
        seed_everything_default=CLI_DEFAULTS["seed_everything_default"],
        trainer_defaults={**CLI_DEFAULTS["trainer_defaults"], "logger": False},
        args=["--config", config, *overrides],
        run=False,
    )
    return cli.model, cli.datamodule, str(cli.trainer.precision)


def synthetic_svhn(dm: GMVAEDataModule, rows: int = 20000) -> GMVAEDataModule:
    """The same batch layout on random uint8 tensors of SVHN's real shape (no files)."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (rows, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.arange(rows) % 10
    observed = torch.where(torch.arange(rows) < dm.num_labeled, labels, torch.full_like(labels, -1))
    return ArrayDataModule(
        ImageArrays(images, observed, "synthetic svhn"),
        ImageArrays(images[:1000], labels[:1000], "synthetic svhn"),
        dm.class_names,
        test=ImageArrays(images[:5000], labels[:5000], "synthetic svhn"),
        unlabeled_batch_size=dm.unlabeled_batch_size,
        labeled_batch_size=dm.labeled_batch_size,
        eval_batch_size=dm.eval_batch_size,
    )


def flops_per_sample(module: GMVAEModule, batch: tuple[torch.Tensor, torch.Tensor]) -> float:
    """Forward + backward FLOPs of one training step, divided by the rows in the batch.

    Counted on the plain layers: the model's FLOPs, whatever kernels compute them (the
    block matmuls of the stride-2 weight gradients do some work on padding).
    """
    x, labels, *_ = batch
    module.train()
    set_fast_kernels(module.model, False)
    with FlopCounterMode(display=False) as counter:
        out = module.model(x, temperature=1.0)
        module.criterion(out, x, labels).total.backward()
    set_fast_kernels(module.model, module.fast_kernels)
    module.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(x)


def predict_flops_per_sample(module: GMVAEModule, x: torch.Tensor) -> float:
    module.eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        module.model.classify(x)
    return counter.get_total_flops() / len(x)


def matmul_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 7) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


def run_steps(module: GMVAEModule, dm: GMVAEDataModule, precision: str, steps: int) -> list[float]:
    """Train ``steps`` steps on a fresh Lightning Trainer; returns each step's seconds."""
    timer = StepTimer()
    # gmvae fit's Trainer (guards and all), at the thread count the timing windows compare.
    trainer = build_trainer(
        precision=precision,
        max_steps=steps,
        limit_val_batches=0,
        **BARE_TRAINER,
        callbacks=[timer],
        threads=torch.get_num_threads(),
    )
    trainer.fit(module, datamodule=dm)
    return timer.durations


def time_interleaved(
    runs: dict[str, tuple], warmup: int, windows: int, width: int
) -> dict[str, list[float]]:
    """Samples/s per window for each run, windows of the runs taken in turn.

    Interleaving makes the runs share whatever else the machine is doing, so their
    ratio holds on a busy machine where back-to-back runs would not.
    """
    for module, dm, precision in runs.values():
        run_steps(module, dm, precision, warmup)
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(windows):
        for name, (module, dm, precision) in runs.items():
            rows = dm.unlabeled_batch_size + dm.labeled_batch_size
            # A window's first step starts a fresh Trainer loop and optimizer state (slower
            # in bf16 by a varying amount): it is not timed, so that windows measure steady
            # steps, as in a real epoch.
            steady = run_steps(module, dm, precision, width + 1)[1:]
            rates[name].append(rows * width / sum(steady))
    return rates


def time_prediction(module: GMVAEModule, images: torch.Tensor, precision: str, batch: int) -> float:
    """Images/s of argmax q(y|x) over ``images`` in large batches under inference_mode."""
    module.eval()
    autocast = (
        torch.autocast("cpu", dtype=torch.bfloat16)
        if precision.startswith("bf16")
        else nullcontext()
    )
    rates = []
    for _ in range(3):
        t0 = time.perf_counter()
        with torch.inference_mode(), autocast:
            for start in range(0, len(images), batch):
                x = to_float(images[start : start + batch]).contiguous(
                    memory_format=module.memory_format
                )
                module.model.classify(x).argmax(-1)
        rates.append(len(images) / (time.perf_counter() - t0))
    return statistics.median(rates)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="mnist")
    parser.add_argument("--config", help="config to benchmark (default: the shape's paper config)")
    parser.add_argument(
        "--data-dir", default=os.environ.get("GMVAE_DATA_DIR", str(REPO.parent / "shared" / "data"))
    )
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--width", type=int, default=6, help="steps per timing window")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--against",
        metavar="OPTIONS",
        help="gmvae fit options of the run to compare with instead of the plain baseline, "
        "on top of the benchmarked ones, e.g. --against='--model.fast_kernels=false'",
    )
    # Every option not named above is a gmvae fit option, e.g. --trainer.precision=32-true.
    args, overrides = parser.parse_known_args()
    config = args.config or str(REPO / SHAPES[args.shape])
    against = shlex.split(args.against) if args.against else PLAIN_BASELINE
    against_label = args.against or "fp32, eager, NCHW"
    data = ["--data.data_dir", args.data_dir]

    module, dm, precision = build(config, [*data, *overrides])
    fp32_peak = matmul_gflops(torch.float32)
    # Emulated bf16 matmuls are tens of times slower: timing them takes minutes, for a peak
    # nothing trains at unless bf16 was asked for (fastest_precision picks fp32 there).
    timed = cpu_has_native_bf16() or precision.startswith("bf16")
    bf16_peak = (
        matmul_gflops(torch.bfloat16, n=2048 if cpu_has_native_bf16() else 512) if timed else None
    )
    bf16_text = f"{bf16_peak:.0f} GFLOP/s" if bf16_peak else "not native (not timed)"
    print(
        f"machine: {torch.get_num_threads()} threads, matmul fp32 {fp32_peak:.0f} GFLOP/s, bf16 {bf16_text}"
    )
    if args.shape == "svhn":
        dm = synthetic_svhn(dm)
    dm.setup("fit")
    dm.setup("test")
    batch = next(iter(dm.train_dataloader()))
    train_flops = flops_per_sample(module, batch)
    predict_flops = predict_flops_per_sample(module, batch[0][:100])

    runs = {"optimized": (module, dm, precision)}
    if not args.no_baseline:
        base_module, _, base_precision = build(config, [*data, *overrides, *against])
        runs["baseline"] = (base_module, dm, base_precision)  # the same data module and batches
    rates = time_interleaved(runs, args.warmup, args.windows, args.width)
    rate = statistics.median(rates["optimized"])
    peak = bf16_peak if precision.startswith("bf16") else fp32_peak
    achieved = rate * train_flops / 1e9
    rss = peak_rss_mb()
    predict_rate = time_prediction(module, dm.test_set.images, precision, dm.eval_batch_size)
    print(
        f"config {config} ({args.shape}), precision {precision}, channels_last {module.memory_format == torch.channels_last}"
    )
    print(
        f"training: {rate:.0f} samples/s (windows: {', '.join(f'{r:.0f}' for r in rates['optimized'])})"
    )
    print(
        f"model FLOPs per training sample {train_flops / 1e6:.1f} M; achieved {achieved:.0f} GFLOP/s = {achieved / peak:.1%} of {precision} matmul peak"
    )
    print(
        f"peak RSS {rss:.0f} MB (whole process); prediction {predict_rate:.0f} images/s ({predict_flops / 1e6:.1f} MFLOP/image)"
    )

    result = {
        "shape": args.shape,
        "config": os.path.relpath(config, REPO),
        "precision": precision,
        "threads": torch.get_num_threads(),
        "samples_per_s": round(rate, 1),
        "flops_per_sample": train_flops,
        "achieved_gflops": round(achieved, 1),
        "fp32_matmul_gflops": round(fp32_peak, 1),
        "bf16_matmul_gflops": round(bf16_peak, 1) if bf16_peak else None,
        "peak_fraction": round(achieved / peak, 3),
        "peak_rss_mb": round(rss),
        "predict_images_per_s": round(predict_rate, 1),
    }
    if "baseline" in rates:
        base_rate = statistics.median(rates["baseline"])
        ratios = [o / b for o, b in zip(rates["optimized"], rates["baseline"], strict=True)]
        print(
            f"baseline ({against_label}): {base_rate:.0f} samples/s (windows: {', '.join(f'{r:.0f}' for r in rates['baseline'])})"
        )
        print(
            f"speedup {rate / base_rate:.2f}x (median of per-window ratios {statistics.median(ratios):.2f}x)"
        )
        result.update(
            baseline_samples_per_s=round(base_rate, 1), speedup=round(rate / base_rate, 2)
        )
        if args.against:
            result["against"] = args.against  # not the plain baseline: keep the series apart
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
