"""The ``gmvae`` command: LightningCLI with the paper's run layout and clear errors.

``gmvae fit --config configs/mnist-100.yaml`` trains, keeps the best checkpoint (by
``checkpoint.monitor``: validation accuracy, or validation loss for the label-free
clustering runs) and the last, then tests the best one and writes ``metrics.json``.
Everything a run writes goes under ``--trainer.default_root_dir``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from lightning.pytorch.callbacks import ModelCheckpoint, Timer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from gmvae.cli.parser import OneLineErrorParser, check_config_files, command_summary, suggestion
from gmvae.errors import ConfigError, DiskFullError, GMVAEError
from gmvae.io.atomic import DISK_FULL, atomic_write_json, is_disk_full
from gmvae.io.checkpoint import load_checkpoint_safely
from gmvae.io.model_file import ModelCard, save_model
from gmvae.runs.autosave import AutosaveCheckpoint
from gmvae.runs.directory import (
    FINISHED,
    RunCSVLogger,
    check_new_run,
    find_last,
    prepare_resume,
    resume_step,
)
from gmvae.runs.preemption import PREEMPTED_STATUS, SigtermCheckpoint
from gmvae.training.datamodule import GMVAEDataModule
from gmvae.training.module import GMVAEModule
from gmvae.training.threads import AUTO
from gmvae.training.trainer import default_callbacks, default_plugins, trainer_defaults
from gmvae.training.trainer_options import late_refusal, trainer_option_errors

# Commands beyond LightningCLI's fit / validate / test / predict, each in a module of its
# own: name -> "module:function", the function taking the remaining argv and returning
# an exit status. (`predict` takes the place of LightningCLI's: model file + images -> CSV.)
TOOL_COMMANDS: dict[str, str] = {
    "predict": "gmvae.cli.predict:main",
    "tune": "gmvae.cli.tune:main",
    "generate": "gmvae.figures.generate:main",
    "embed": "gmvae.figures.embed:main",
    "reconstruct": "gmvae.figures.reconstruct:main",
    "curves": "gmvae.figures.curves:main",
    "reproduce": "gmvae.reproduce.runner:main",
    "suggest": "gmvae.cli.suggest:main",
}
# The training commands, run by LightningCLI, with what `gmvae --help` says of them.
TRAINER_COMMANDS: dict[str, str] = {
    "fit": "train a model, test its best checkpoint, write metrics.json and model.safetensors",
    "validate": "score a checkpoint (--ckpt_path) on the validation split",
    "test": "score a checkpoint (--ckpt_path) on the test set",
}
DESCRIPTION = (
    "gmvae: a semi-supervised Gaussian-mixture VAE that learns from many images and few labels."
)
# How `gmvae fit` builds its CLI; `gmvae tune` builds its trials the same way.
CLI_DEFAULTS: dict[str, Any] = {
    "seed_everything_default": 0,
    "parser_class": OneLineErrorParser,  # one-line errors instead of pages of usage
    "parser_kwargs": {
        "prog": "gmvae",
        "description": DESCRIPTION,
        **{
            name: {"description": f"gmvae {name}: {text}"}
            for name, text in TRAINER_COMMANDS.items()
        },
    },
    "trainer_defaults": trainer_defaults(),  # the Trainer every entry point builds
}
# Default interval of the in-epoch saves of checkpoints/last.ckpt (--autosave.*).
AUTOSAVE_MINUTES = 2
# The options of the run's checkpoint writers: the best and last (--checkpoint.*), and
# last.ckpt during epochs (--autosave.*).
CHECKPOINT_KEYS = ("checkpoint", "autosave")


class GMVAECLI(LightningCLI):
    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """fit, validate and test; ``gmvae predict`` is a command of its own (TOOL_COMMANDS)."""
        return {k: v for k, v in LightningCLI.subcommands().items() if k in TRAINER_COMMANDS}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.image_shape", "model.image_shape", apply_on="instantiate")
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.add_lightning_class_args(ModelCheckpoint, CHECKPOINT_KEYS[0])
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/accuracy",
                "checkpoint.mode": "max",
                "checkpoint.save_last": True,
                "checkpoint.filename": "best-epoch{epoch:03d}",
                "checkpoint.auto_insert_metric_name": False,
                # A resume may save a checkpoint again: replace it, never add "-v1" copies.
                "checkpoint.enable_version_counter": False,
            }
        )
        parser.add_argument(
            "--threads",
            type=int | Literal["auto"],
            default=AUTO,
            help="CPU threads: 'auto' times the training steps and keeps the fastest count "
            "(the count changes the rounding, so runs repeat bit for bit only with a fixed "
            "count); N fixes it; OMP_NUM_THREADS, when set, fixes it too (docs/PERFORMANCE.md)",
        )
        # A second writer of last.ckpt, during epochs, so that a crash loses little.
        parser.add_lightning_class_args(AutosaveCheckpoint, CHECKPOINT_KEYS[1])
        parser.set_defaults(
            {
                "autosave.monitor": None,
                "autosave.save_top_k": 0,
                "autosave.save_last": True,
                "autosave.enable_version_counter": False,
                "autosave.train_time_interval": timedelta(minutes=AUTOSAVE_MINUTES),
            }
        )

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """LightningCLI then reads ``--ckpt_path``'s hyper-parameters with a bare torch.load:
        check the file first so that a bad one is one clear error, not a traceback."""
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path and Path(ckpt_path).is_file():
            load_checkpoint_safely(ckpt_path, map_location="cpu")

    def _option(self, config: Any, key: str, default: Any = None) -> Any:
        """``key`` of the running subcommand's section of ``config`` (or of ``config``)."""
        section = config[self.subcommand] if self.subcommand else config
        return section.get(key, default)

    def _resuming(self) -> bool:
        return self.subcommand == "fit" and self._option(self.config_init, "ckpt_path") is not None

    def before_instantiate_classes(self) -> None:
        """A TensorBoard logger without TensorBoard installed: one line, not a traceback."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        loggers = config.get("trainer.logger")
        for logger in loggers if isinstance(loggers, list) else [loggers]:
            name = str(getattr(logger, "class_path", ""))
            if name.endswith("TensorBoardLogger") and not any(
                importlib.util.find_spec(m) for m in ("tensorboard", "tensorboardX")
            ):
                raise ConfigError(
                    "--trainer.logger TensorBoardLogger needs TensorBoard: "
                    "pip install 'gmvae[tensorboard]'"
                )

    def instantiate_trainer(self, **kwargs: Any) -> Any:
        """The Trainer of the config with what :func:`build_trainer` adds (the plugins and
        callbacks) and the run's logger; an option it refuses is one :class:`ConfigError`
        naming it, raised before anything is written to the run directory."""
        options = {**self._option(self.config_init, "trainer", {}), **kwargs}
        root = options.get("default_root_dir") or os.getcwd()
        logger = options.get("logger")
        if logger is not False:
            # One flat run directory: metrics.csv, config.yaml, checkpoints/, metrics.json.
            # A logger the user asks for (--trainer.logger TensorBoardLogger ...) comes after
            # it, so that the run directory and metrics.csv stay where they always are.
            given = [] if logger in (None, True) else list(_as_list(logger))
            logger = [RunCSVLogger(root, keep_before_step=self._resume_step(root)), *given]
        with trainer_option_errors(options):
            threads = self._option(self.config, "threads", AUTO)
            # Lightning puts the checkpoint callbacks (--checkpoint, --autosave) after these.
            callbacks = [
                *_as_list(options.get("callbacks") or []),
                *default_callbacks(threads, options.get("max_time")),
                SigtermCheckpoint(),  # a preempted `gmvae fit`: save, then status 143
            ]
            own = {
                "default_root_dir": root,
                "logger": logger,
                "plugins": default_plugins(options.get("plugins")),
                "callbacks": callbacks,
                "max_time": None,  # the Timer of default_callbacks keeps it
            }
            return super().instantiate_trainer(**{**kwargs, **own})

    def _resume_step(self, root: str) -> int | None:
        ckpt_path = (
            self._option(self.config_init, "ckpt_path") if self.subcommand == "fit" else None
        )
        writers = [self._option(self.config_init, key) for key in CHECKPOINT_KEYS]
        dirs = [c.dirpath for c in writers if isinstance(c, ModelCheckpoint)]
        return resume_step(ckpt_path, root, dirs)

    def before_fit(self) -> None:
        """Refuse to overwrite another run; on resume, check the options and keep config.yaml.

        Runs before anything is written to the run directory, so the options the model
        and the data are checked against each other here too: a refused option leaves
        the folder as it was, and the corrected command just runs.
        """
        trainer = self.trainer
        self.model.check_batches(self.datamodule.labeled_batch_size)
        run_dir = Path(trainer.log_dir or trainer.default_root_dir)
        if not self._resuming():
            note = check_new_run(run_dir)
        elif self._nothing_to_resume():
            note = check_new_run(run_dir, resume_asked=True)
        else:
            new_config = self._fit_config_yaml()
            defaults = {
                **GMVAEModule.option_defaults("model."),
                **GMVAEDataModule.option_defaults("data."),
            }
            note = prepare_resume(run_dir, new_config, defaults)
        if note:
            print(f"gmvae: note: {note}", file=sys.stderr)
        for callback in trainer.callbacks:
            if isinstance(callback, SaveConfigCallback):
                callback.overwrite = True  # replaces the resumed (or never trained) run's own

    def _fit_config_yaml(self) -> str:
        """The options of this ``gmvae fit`` as config.yaml holds them: the command's own
        section of the whole command line's dump (the one public dump of a subcommand)."""
        dumped = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
        return yaml.safe_dump(dumped["fit"], sort_keys=False)

    def _nothing_to_resume(self) -> bool:
        """``--ckpt_path last`` where no checkpoint was saved yet: Lightning starts afresh."""
        if self._option(self.config_init, "ckpt_path") != "last":
            return False
        dirs = [c.dirpath for c in self.trainer.callbacks if isinstance(c, ModelCheckpoint)]
        return find_last(self.trainer.default_root_dir, dirs) is None

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
        # Every DDP rank tests its slice of the test set (the metrics are synchronised), then
        # only rank 0 writes files. trainer.log_dir is a collective (a broadcast): read it in
        # every rank, before the others leave, or rank 0 waits for them forever.
        results = trainer.test(
            self.model, datamodule=self.datamodule, ckpt_path=best or None, weights_only=True
        )
        run_dir = Path(trainer.log_dir or trainer.default_root_dir)
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
        atomic_write_json(run_dir / FINISHED, metrics)  # marks the run finished
        print(
            f"wrote {run_dir / FINISHED}: test_error {metrics['test_error']:.2f} %, "
            f"cluster accuracy {100 * metrics['test_cluster_accuracy']:.2f} %, "
            f"NMI {100 * metrics['test_nmi']:.2f} %"
        )


def _as_list(logger: Logger | list[Logger]) -> list[Logger]:
    return list(logger) if isinstance(logger, (list, tuple)) else [logger]


def _user_error(exc: BaseException) -> GMVAEError | None:
    """The GMVAEError behind ``exc``: jsonargparse wraps errors raised while building classes.

    A full disk is reported where it first struck (a save that failed while Lightning
    was handling the first one would otherwise hide it), or as one line when no writer
    of ours named the file.
    """
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    full = [i for i, e in enumerate(chain) if isinstance(e, DiskFullError)]
    if full:
        i = full[-1]
        while (
            i > 0 and isinstance(chain[i - 1], DiskFullError) and chain[i - 1].__cause__ is chain[i]
        ):
            i -= 1  # the same failure, said with more context (e.g. the checkpoint's hint)
        return chain[i]
    found = next((e for e in chain if isinstance(e, GMVAEError)), None)
    if found is None and is_disk_full(exc):
        raw = next(e for e in reversed(chain) if isinstance(e, OSError) and e.errno in DISK_FULL)
        where = f"cannot write {raw.filename}: " if raw.filename else ""
        return DiskFullError(f"{where}the disk is full (no space left)")
    return found or late_refusal(exc)


def usage() -> str:
    """``gmvae --help``: every command with one line on what it does."""
    described = dict(TRAINER_COMMANDS)
    for name, target in TOOL_COMMANDS.items():
        module = importlib.import_module(target.partition(":")[0])
        described[name] = command_summary(module.__doc__ or "")
    described["tune"] += " (needs: pip install 'gmvae[tune]')"
    width = max(map(len, described)) + 2
    lines = ["usage: gmvae COMMAND [options]   (gmvae COMMAND --help for its options)", ""]
    lines += [DESCRIPTION, "", "commands:"]
    lines += [f"  {name:<{width}}{text}" for name, text in described.items()]
    lines += ["", "--verbose (any command): the full traceback of an error, not its one line"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``gmvae`` console script; errors exit with status 2, no traceback.

    ``--verbose`` anywhere on the line shows the full traceback instead.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in args
    args = [a for a in args if a != "--verbose"]
    OneLineErrorParser.verbose = verbose
    if argv is None:
        sys.argv[1:] = args
    if not args or args[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if args else sys.stderr)
        raise SystemExit(0 if args else 2)
    if not args[0].startswith("-") and args[0] not in {*TOOL_COMMANDS, *TRAINER_COMMANDS}:
        hint = suggestion(args[0], [*TRAINER_COMMANDS, *TOOL_COMMANDS], prefix="")
        print(
            f"gmvae: error: unknown command {args[0]!r}{hint}\n(see: gmvae --help)", file=sys.stderr
        )
        raise SystemExit(2)
    try:
        if args and args[0] in TOOL_COMMANDS:
            module, _, function = TOOL_COMMANDS[args[0]].partition(":")
            status = getattr(importlib.import_module(module), function)(args[1:])
            raise SystemExit(status)
        check_config_files(args)
        GMVAECLI(GMVAEModule, GMVAEDataModule, **CLI_DEFAULTS, args=None if argv is None else args)
    except SIGTERMException:  # Lightning's, for a SIGTERM before training began
        print("gmvae: error: stopped by SIGTERM before training began", file=sys.stderr)
        raise SystemExit(PREEMPTED_STATUS) from None
    except Exception as exc:
        error = _user_error(exc)
        if error is None or verbose:
            raise
        print(f"gmvae: error: {error}", file=sys.stderr)
        raise SystemExit(getattr(error, "exit_status", 2)) from None


if __name__ == "__main__":
    main()
