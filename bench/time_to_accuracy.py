"""Wall-clock minutes until validation accuracy first reaches a target (97 % on MNIST-100).

Trains with a config's settings (``configs/mnist-100.yaml`` by default), built as
``gmvae fit`` builds it, prints the validation accuracy and elapsed minutes after every
epoch, and stops at the target or at the cap. Time counts from the start of
``Trainer.fit`` (data already loaded), validation passes included. Ends with one JSON
line.

    python bench/time_to_accuracy.py                       # MNIST-100, target 0.97, cap 20 min
    python bench/time_to_accuracy.py --target 0.95 --max-minutes 10 --trainer.precision=32-true
    python bench/time_to_accuracy.py --max-minutes 10 --model.loss.w_assignment=3
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import lightning as L

# Beside this script: the model, data module and precision, built as gmvae fit builds them.
from train_throughput import BARE_TRAINER, build

from gmvae.training.trainer import build_trainer

REPO = Path(__file__).resolve().parents[1]


class AccuracyClock(L.Callback):
    """Records (epoch, minutes, val accuracy) and stops at the target or the time cap."""

    def __init__(self, target: float, max_minutes: float) -> None:
        self.target, self.max_minutes = target, max_minutes
        self.history: list[tuple[int, float, float]] = []
        self.reached: float | None = None
        self._t0 = 0.0

    def on_fit_start(self, trainer, pl_module) -> None:
        self._t0 = time.perf_counter()

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        minutes = (time.perf_counter() - self._t0) / 60
        accuracy = float(trainer.callback_metrics["val/accuracy"])
        self.history.append((trainer.current_epoch, minutes, accuracy))
        print(
            f"epoch {trainer.current_epoch}: val accuracy {accuracy:.4f} at {minutes:.2f} min",
            flush=True,
        )
        if accuracy >= self.target and self.reached is None:
            self.reached = minutes
            trainer.should_stop = True
        elif minutes >= self.max_minutes:
            trainer.should_stop = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "mnist-100.yaml"))
    parser.add_argument(
        "--data-dir", default=os.environ.get("GMVAE_DATA_DIR", str(REPO.parent / "shared" / "data"))
    )
    parser.add_argument("--target", type=float, default=0.97)
    parser.add_argument("--max-minutes", type=float, default=20.0)
    parser.add_argument("--max-epochs", type=int, default=50)
    # Every option not named above is a gmvae fit option, e.g. --seed_everything=1.
    args, overrides = parser.parse_known_args()

    module, dm, precision = build(args.config, ["--data.data_dir", args.data_dir, *overrides])
    clock = AccuracyClock(args.target, args.max_minutes)
    trainer = build_trainer(
        precision=precision,
        max_epochs=args.max_epochs,
        callbacks=[clock],
        **BARE_TRAINER,
    )
    dm.setup("fit")  # load before the clock starts
    trainer.fit(module, datamodule=dm)
    best = max((acc for _, _, acc in clock.history), default=None)
    print(
        f"target {args.target:.2%}: "
        + (f"reached after {clock.reached:.2f} min" if clock.reached is not None else "not reached")
        + f"; best val accuracy {best:.4f} in {len(clock.history)} epochs ({precision})"
    )
    print(
        json.dumps(
            {
                "config": os.path.relpath(args.config, REPO),
                "precision": precision,
                "target": args.target,
                "minutes_to_target": None if clock.reached is None else round(clock.reached, 2),
                "epochs": len(clock.history),
                "history": [
                    {"epoch": e, "minutes": round(m, 2), "val_accuracy": round(a, 4)}
                    for e, m, a in clock.history
                ],
            }
        )
    )


if __name__ == "__main__":
    main()
