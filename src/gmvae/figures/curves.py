"""``gmvae curves RUN_DIR --out curves.png``: every loss term and validation score per epoch.

Reads the run's ``metrics.csv`` (Lightning writes one epoch over several lines:
they are merged by epoch) and plots each ``train/*`` and ``val/*`` column in a
panel of its own. The merged table goes beside the PNG as ``.csv``.
"""

from __future__ import annotations

import argparse
import io
import math
from pathlib import Path

import numpy as np

from gmvae.figures import options
from gmvae.figures.arrays import epoch_metrics
from gmvae.figures.plotting import training_curves


def _write_csv(f: io.BytesIO, epochs: np.ndarray, series: dict[str, np.ndarray]) -> None:
    names = list(series)
    lines = [",".join(["epoch", *names])]
    for i, epoch in enumerate(epochs):
        cells = ["" if math.isnan(series[n][i]) else f"{series[n][i]:.8g}" for n in names]
        lines.append(",".join([str(epoch), *cells]))
    f.write(("\n".join(lines) + "\n").encode())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gmvae curves", description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path, help="a run directory holding metrics.csv")
    options.add_output_arguments(parser, ".csv")
    args = parser.parse_args(argv)
    data_path = options.check_outputs(args.out, ".csv", force=args.force)
    epochs, series = epoch_metrics(args.run_dir / "metrics.csv")
    fig = training_curves(epochs, series, title=f"{args.run_dir}: per-epoch means")
    options.write_outputs(
        fig, args.out, args.dpi, data_path, lambda f: _write_csv(f, epochs, series)
    )
    return 0
