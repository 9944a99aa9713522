"""The ``gmvae`` command: LightningCLI with the paper's run layout and clear errors.

``gmvae fit --config configs/mnist-100.yaml`` trains, keeps the best checkpoint (by
``checkpoint.monitor``: validation accuracy, or validation loss for the label-free
clustering runs) and the last, then tests the best one and writes ``metrics.json``.
Everything a run writes goes under ``--trainer.default_root_dir``.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint, Timer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger

from gmvae.errors import GMVAEError
from gmvae.export import ModelCard, save_model
from gmvae.files import atomic_write_json
from gmvae.training.datamodule import GMVAEDataModule
from gmvae.training.module import GMVAEModule

# Commands beyond LightningCLI's fit / validate / test / predict, each in a module of its
# own: name -> "module:function", the function taking the remaining argv and returning
# an exit status.
TOOL_COMMANDS: dict[str, str] = {
    "generate": "gmvae.commands.generate:main",
    "embed": "gmvae.commands.embed:main",
    "reconstruct": "gmvae.commands.reconstruct:main",
    "curves": "gmvae.commands.curves:main",
    "reproduce": "gmvae.commands.reproduce:main",
}


class GMVAECLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.image_shape", "model.image_shape", apply_on="instantiate")
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/accuracy",
                "checkpoint.mode": "max",
                "checkpoint.save_last": True,
                "checkpoint.filename": "best-epoch{epoch:03d}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Any]) -> Any:
        root = config.get("default_root_dir") or os.getcwd()
        config["default_root_dir"] = root
        if config.get("logger") in (None, True):
            # One flat run directory: metrics.csv, config.yaml, checkpoints/, metrics.json.
            config["logger"] = CSVLogger(save_dir=root, name="", version="")
        callbacks = [*callbacks, Timer()]
        return super()._instantiate_trainer(config, callbacks)

    def after_fit(self) -> None:
        """Test the best checkpoint on the test set and write ``metrics.json``."""
        trainer = self.trainer
        if trainer.interrupted:
            return
        ckpt = trainer.checkpoint_callback
        best = ckpt.best_model_path if isinstance(ckpt, ModelCheckpoint) else ""
        # Read the training time before testing: loading the best checkpoint restores the
        # Timer's state, which would add the time elapsed up to that checkpoint again.
        timer = next(c for c in trainer.callbacks if isinstance(c, Timer))
        seconds = timer.time_elapsed("train")
        results = trainer.test(
            self.model, datamodule=self.datamodule, ckpt_path=best or None, weights_only=True
        )
        if not trainer.is_global_zero:
            return
        accuracy = float(results[0]["test/accuracy"])
        best_score = ckpt.best_model_score if isinstance(ckpt, ModelCheckpoint) else None
        monitor = ckpt.monitor if isinstance(ckpt, ModelCheckpoint) else None
        best_score = float(best_score) if best_score is not None else None
        epochs = trainer.current_epoch
        metrics = {
            "test_error": round(100.0 * (1.0 - accuracy), 4),
            "test_accuracy": accuracy,
            "test_loss": float(results[0]["test/loss"]),
            # Clusters matched to classes (Hungarian) and NMI: the clustering scores of Table 3.
            "test_cluster_accuracy": float(results[0]["test/cluster_accuracy"]),
            "test_nmi": float(results[0]["test/nmi"]),
            "checkpoint_monitor": monitor,
            "best_val_score": best_score,
            "best_val_accuracy": best_score if monitor == "val/accuracy" else None,
            "best_checkpoint": best or None,
            "epochs": epochs,
            "train_seconds": round(seconds, 2),
            "seconds_per_epoch": round(seconds / epochs, 2) if epochs else None,
            "seed": self.datamodule.resolved_seed(),
            "dataset": self.datamodule.dataset,
            "num_labeled": self.datamodule.num_labeled,
        }
        run_dir = Path(trainer.log_dir or trainer.default_root_dir)
        # trainer.test loaded the best weights: export them as the shareable model file.
        model_file = save_model(
            run_dir / "model.safetensors",
            self.model.model,
            ModelCard(
                self.datamodule.image_shape,
                self.datamodule.num_classes,
                self.model.network_config,
                self.datamodule.class_names,
                {"dataset": self.datamodule.dataset, "num_labeled": self.datamodule.num_labeled},
            ),
        )
        metrics["model_file"] = str(model_file)
        atomic_write_json(run_dir / "metrics.json", metrics)
        print(
            f"wrote {run_dir / 'metrics.json'}: test_error {metrics['test_error']:.2f} %, "
            f"cluster accuracy {100 * metrics['test_cluster_accuracy']:.2f} %, "
            f"NMI {100 * metrics['test_nmi']:.2f} %"
        )


def _user_error(exc: BaseException) -> GMVAEError | None:
    """The GMVAEError behind ``exc``: jsonargparse wraps errors raised while building classes."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, GMVAEError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``gmvae`` console script; errors exit with status 2, no traceback.

    ``--verbose`` anywhere on the line shows the full traceback instead.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in args
    args = [a for a in args if a != "--verbose"]
    if argv is None:
        sys.argv[1:] = args
    try:
        if args and args[0] in TOOL_COMMANDS:
            module, _, function = TOOL_COMMANDS[args[0]].partition(":")
            status = getattr(importlib.import_module(module), function)(args[1:])
            raise SystemExit(status)
        GMVAECLI(
            GMVAEModule,
            GMVAEDataModule,
            seed_everything_default=0,
            trainer_defaults={"use_distributed_sampler": False, "max_epochs": 200},
            args=None if argv is None else args,
        )
    except Exception as exc:
        error = _user_error(exc)
        if error is None or verbose:
            raise
        print(f"gmvae: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
