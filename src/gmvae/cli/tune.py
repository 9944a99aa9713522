"""``gmvae tune``: random search of hyper-parameters on the validation split, with Optuna.

The paper chose its hyper-parameters by random search on the validation split; so
does this. Each trial is a ``gmvae fit`` run built from ``--config`` plus the sampled
values (and any further ``--key value`` overrides given to ``tune``) that trains and
validates but never tests: the test set is not read. Trials whose validation score
falls below the median of earlier trials at the same epoch are pruned. Every trial
lives in the Optuna storage (``--storage sqlite:///study.db``), so running the same
command again resumes the study up to ``--trials`` finished trials; a trial killed
mid-run is retried once with the same values. The best trial's configuration is
written to ``--out`` as a YAML file that ``gmvae fit --config`` accepts.

A search space (``--space``) maps option names to distributions::

    model.lr: {low: 1.0e-4, high: 1.0e-2, log: true}   # float: low/high with a decimal point
    model.loss.knn_k: {low: 3, high: 9}                 # int: integer low/high (step: 2 ...)
    model.loss.metric_margin: {choices: [0.5, 1.0, 2.0]}
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from gmvae.errors import ConfigError

HEADER = "# gmvae tune: best trial of study"


@dataclass(frozen=True)
class Dimension:
    """One searched option: a float or int range (optionally log-scaled or stepped) or choices."""

    name: str
    kind: str  # float | int | categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)


def read_space(path: str | Path) -> list[Dimension]:
    """Parse and check a search-space YAML file (format in the module docstring)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the search space: {exc}") from None
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{path}: expected a mapping of option names to distributions")
    dims = []
    for name, spec in raw.items():
        where = f"{path}: {name}"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: expected {{low, high}} or {{choices}}, got {spec!r}")
        unknown = set(spec) - {"low", "high", "log", "step", "choices", "type"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        if "choices" in spec:
            choices = spec["choices"]
            if not isinstance(choices, list) or not choices:
                raise ConfigError(f"{where}: choices must be a non-empty list")
            dims.append(Dimension(name, "categorical", choices=tuple(choices)))
            continue
        low, high = spec.get("low"), spec.get("high")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
            raise ConfigError(f"{where}: needs numbers low and high, or choices")
        kind = spec.get("type") or (
            "int" if isinstance(low, int) and isinstance(high, int) else "float"
        )
        if kind not in ("int", "float"):
            raise ConfigError(f"{where}: type {kind!r} is not allowed; choose int or float")
        if not low < high or (spec.get("log") and low <= 0) or not math.isfinite(high - low):
            raise ConfigError(f"{where}: needs low < high (and low > 0 with log: true)")
        if spec.get("log") and spec.get("step"):
            raise ConfigError(f"{where}: log and step cannot be combined")
        dims.append(Dimension(name, kind, low, high, bool(spec.get("log")), spec.get("step")))
    return dims


def _cli_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="gmvae tune",
        description=__doc__.split("\n")[0],
        epilog="Other --key value options are passed to every trial (e.g. --trainer.max_epochs 20).",
    )
    parser.add_argument("--config", required=True, help="base config of every trial (YAML)")
    parser.add_argument("--space", required=True, help="search space (YAML)")
    parser.add_argument("--trials", type=int, required=True, help="finished trials to reach")
    parser.add_argument("--storage", required=True, help="Optuna storage, e.g. sqlite:///study.db")
    parser.add_argument("--study-name", required=True, help="study to create or resume")
    parser.add_argument("--out", required=True, help="YAML file for the best config")
    parser.add_argument("--runs-dir", help="trial run directories (default runs/tune-STUDY)")
    parser.add_argument("--monitor", default="val/accuracy", help="validation metric to optimise")
    parser.add_argument("--direction", default="maximize", choices=("maximize", "minimize"))
    parser.add_argument("--seed", type=int, default=0, help="seed of the random sampler")
    parser.add_argument(
        "--prune-after", type=int, default=4, help="finished trials before pruning starts"
    )
    parser.add_argument("--warmup-epochs", type=int, default=1, help="epochs never pruned")
    parser.add_argument("--force", action="store_true", help="overwrite --out even if not ours")
    args, overrides = parser.parse_known_args(argv)
    if args.trials < 1:
        raise ConfigError(f"--trials {args.trials} must be >= 1")
    if overrides and not overrides[0].startswith("--"):
        raise ConfigError(
            f"unexpected argument {overrides[0]!r}; trial options look like --key value"
        )
    space = read_space(args.space)
    out = Path(args.out)
    _check_out(out, args.study_name, force=args.force)
    try:
        import optuna
        from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
        from optuna_integration import PyTorchLightningPruningCallback
    except ImportError:
        raise ConfigError(
            "gmvae tune needs Optuna: pip install 'gmvae[tune]' (optuna, optuna-integration)"
        ) from None

    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 4.9 - 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # A trial whose process died (no heartbeat for 3 minutes) is retried once.
        storage = RDBStorage(
            args.storage,
            heartbeat_interval=60,
            grace_period=180,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
        )
    study = optuna.create_study(
        storage=storage,
        study_name=args.study_name,
        direction=args.direction,
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=args.prune_after, n_warmup_steps=args.warmup_epochs
        ),
        load_if_exists=True,
    )
    if study.direction.name.lower() != args.direction:
        raise ConfigError(
            f"study {args.study_name!r} was created to {study.direction.name.lower()} "
            f"its objective, not {args.direction}"
        )
    # A resumed study continues the random stream instead of repeating its first draws.
    state = np.random.SeedSequence([args.seed, len(study.trials)]).generate_state(1)[0]
    study.sampler = optuna.samplers.RandomSampler(seed=int(state))
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = len(study.get_trials(deepcopy=False, states=finished))
    runs_dir = Path(args.runs_dir or f"runs/tune-{args.study_name}")

    def objective(trial: optuna.Trial) -> float:
        values = {d.name: d.suggest(trial) for d in space}
        run_dir = runs_dir / f"trial-{trial.number:04d}"
        score = run_trial(
            args.config,
            [*overrides, *(f"--{k}={_cli_value(v)}" for k, v in values.items())],
            run_dir,
            args.monitor,
            "max" if args.direction == "maximize" else "min",
            lambda: PyTorchLightningPruningCallback(trial, monitor=args.monitor),
        )
        trial.set_user_attr("config", (run_dir / "config.yaml").read_text())
        trial.set_user_attr("run_dir", str(run_dir))
        print(f"trial {trial.number}: {args.monitor} {score:.4f}  {values}", flush=True)
        return score

    if done < args.trials:
        print(f"study {args.study_name!r}: {done} finished trials, running {args.trials - done}")
        study.optimize(objective, n_trials=args.trials - done)
    else:
        print(
            f"study {args.study_name!r} already has {done} finished trials (--trials {args.trials})"
        )
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise ConfigError(f"study {args.study_name!r} has no completed trial yet")
    best = study.best_trial
    _write_best(out, best, study, args)
    total = len(study.get_trials(deepcopy=False, states=finished))
    print(
        f"best: trial {best.number}, {args.monitor} {best.value:.4f}, {best.params}; "
        f"{total} finished trials; wrote {out}"
    )
    return 0


def run_trial(
    config: str,
    options: list[str],
    run_dir: Path,
    monitor: str,
    mode: str,
    pruning_callback: Any,
) -> float:
    """Train one configuration like ``gmvae fit`` (no test), return the best ``monitor`` value."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from gmvae.cli.app import CLI_DEFAULTS, GMVAECLI
    from gmvae.training import GMVAEDataModule, GMVAEModule

    args = [
        "--config",
        config,
        *options,
        f"--trainer.default_root_dir={run_dir}",
        f"--checkpoint.monitor={monitor}",
        f"--checkpoint.mode={mode}",
    ]
    command_line, sys.argv[1:] = sys.argv[1:], []  # the trial's options are `args` alone
    try:
        cli = GMVAECLI(GMVAEModule, GMVAEDataModule, **CLI_DEFAULTS, args=args, run=False)
    except SystemExit as exc:  # jsonargparse has printed what it could not parse
        raise ConfigError(f"the trial options {options} do not parse (see above)") from exc
    finally:
        sys.argv[1:] = command_line
    trainer = cli.trainer
    trainer.callbacks.append(pruning_callback())
    trainer.fit(cli.model, datamodule=cli.datamodule)  # validation only: trials never test
    ckpt = trainer.checkpoint_callback
    score = ckpt.best_model_score if isinstance(ckpt, ModelCheckpoint) else None
    if score is None:
        raise ConfigError(f"{run_dir}: the trial logged no {monitor!r}")
    return float(score)


def _check_out(out: Path, study_name: str, *, force: bool) -> None:
    """Refuse to overwrite a file unless it is this study's own earlier best config."""
    if not out.exists() or force:
        return
    try:
        first = out.read_text().split("\n", 1)[0]
    except (OSError, UnicodeDecodeError):
        first = ""
    if first != f"{HEADER} {study_name!r}":
        raise ConfigError(f"{out} exists and is not this study's; pass --force to overwrite it")


def _write_best(out: Path, best: Any, study: Any, args: argparse.Namespace) -> None:
    from gmvae.io.atomic import atomic_write_bytes

    config = yaml.safe_load(best.user_attrs["config"])
    # The best config trains into a run directory of its own, not into the trial's.
    config.setdefault("trainer", {})["default_root_dir"] = f"runs/{args.study_name}-best"
    header = (
        f"{HEADER} {args.study_name!r}\n"
        f"# storage {args.storage}; trial {best.number} of {len(study.trials)}, "
        f"{args.monitor} {best.value:.4f} (validation split; the test set was not read)\n"
        f"# searched values: {json.dumps(best.params)}\n"
    )
    atomic_write_bytes(out, (header + yaml.safe_dump(config, sort_keys=False)).encode())
