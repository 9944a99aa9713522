"""``gmvae reproduce``: run the paper's experiments for several seeds and tabulate them.

    gmvae reproduce --experiments mnist-100 mnist-cluster --seeds 3 --max-epochs 1 \\
        --data-dir DATA --out-dir runs/reproduce --table docs/RESULTS.md

Each (experiment, seed) is one ``gmvae fit`` in a subprocess (a crash or an
out-of-memory in one run leaves the others alone), in
``OUT/<experiment>/epochs-<E>/seed-<S>/``. A run whose ``metrics.json`` exists is
never run again; one that was cut short (killed, preempted, out of memory) continues
from its ``checkpoints/last.ckpt`` with the same command, so an interrupted call
resumes where it stopped. Runs go seed by
seed (seed 0 of every experiment first). The table, the paper's values beside ours,
is rewritten after every run.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

import gmvae
from gmvae.errors import ConfigError, ToolParser
from gmvae.io.atomic import atomic_write_json
from gmvae.reproduce.baseline import BASELINE, write_run_baseline
from gmvae.reproduce.experiments import EXPERIMENTS, Experiment
from gmvae.reproduce.results import (
    RECORD,
    SEED,
    machine_description,
    render,
    run_dir,
    scan,
    write_table,
)

LAST = Path("checkpoints") / "last.ckpt"


def _default_configs() -> Path:
    """./configs when it exists, else the configs/ of the checkout gmvae was installed from."""
    local = Path("configs")
    if local.is_dir():
        return local
    return Path(gmvae.__file__).resolve().parents[2] / "configs"


def _config_epochs(config: Path) -> int:
    try:
        data = yaml.safe_load(config.read_text())
        return int(data["trainer"]["max_epochs"])
    except FileNotFoundError:
        raise ConfigError(f"{config}: no such config (see --configs-dir)") from None
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{config}: cannot read trainer.max_epochs: {exc}") from None


def _fit_args(
    experiment: Experiment, config: Path, epochs: int, args: argparse.Namespace, seed: str
) -> list[str]:
    """The ``gmvae fit`` arguments of one run; ``seed`` may be the placeholder."""
    out = run_dir(args.out_dir, experiment.name, epochs, 0).parent / f"seed-{seed}"
    line = ["fit", "--config", str(config), *experiment.overrides]
    line += ["--trainer.max_epochs", str(epochs), "--seed_everything", seed]
    line += ["--trainer.default_root_dir", str(out), "--trainer.enable_progress_bar", "false"]
    if args.data_dir:
        line += ["--data.data_dir", str(args.data_dir)]
    if args.no_download:
        line += ["--data.download", "false"]
    return line


def _shell(argv: list[str]) -> str:
    """Like ``shlex.join``, but leaves ``$SEED`` for the shell to expand."""
    words = []
    for word in argv:
        if SEED not in word:
            words.append(shlex.quote(word))
        elif shlex.quote(word.replace(SEED, "0")) == word.replace(SEED, "0"):
            words.append(word)  # nothing else in it needs quoting
        else:  # double quotes keep $SEED live; escape what else is special inside them
            escaped = word.replace(SEED, "\0")
            for special in ("\\", '"', "`", "$"):
                escaped = escaped.replace(special, "\\" + special)
            words.append('"' + escaped.replace("\0", SEED) + '"')
    return " ".join(words)


def _last_error(log: Path) -> str:
    """The ``gmvae: error:`` line of a failed run's log, else its last line."""
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    for line in reversed(lines):
        if line.startswith("gmvae: error:"):
            return line.removeprefix("gmvae: error:").strip()
    return lines[-1] if lines else "no output"


def _set_aside(path: Path) -> Path:
    """Move an unfinished earlier attempt out of the way (kept, not deleted)."""
    n = 1
    while path.with_name(f"{path.name}.attempt-{n}").exists():
        n += 1
    target = path.with_name(f"{path.name}.attempt-{n}")
    path.rename(target)
    return target


def _earlier_attempt(path: Path) -> dict | None:
    """The record of an unfinished earlier attempt in ``path``; None when ``path`` is empty."""
    if not path.exists() or not any(path.iterdir()):
        return None
    if not (path / RECORD).is_file():
        raise ConfigError(
            f"{path} exists but was not made by gmvae reproduce; refusing to write into it"
        )
    try:
        record = json.loads((path / RECORD).read_text())
    except (OSError, ValueError):
        return {}  # unreadable: not resumable, set aside
    return record if isinstance(record, dict) else {}


def _resumable(path: Path, earlier: dict, argv: list[str]) -> bool:
    """Continue an attempt from its last.ckpt when it ran the very same command; one with
    other arguments (another data dir, a newer reproduce) is set aside and run afresh."""
    return earlier.get("argv") == argv and (path / LAST).is_file()


def _run_one(
    experiment: Experiment, config: Path, epochs: int, seed: int, args: argparse.Namespace
) -> bool:
    """Run one seed unless finished; True when it has a metrics.json afterwards."""
    path = run_dir(args.out_dir, experiment.name, epochs, seed)
    label = f"{experiment.name} (epochs {epochs}) seed {seed}"
    if (path / "metrics.json").is_file():
        print(f"{label}: finished earlier, skipped")
        _baseline(experiment, path, label)
        return True
    fit = _fit_args(experiment, config, epochs, args, str(seed))
    template = _shell(["gmvae", *_fit_args(experiment, config, epochs, args, SEED)])
    if args.dry_run:
        print(f"{label}: would run: {shlex.join(['gmvae', *fit])}")
        return False
    earlier = _earlier_attempt(path)
    resume = earlier is not None and _resumable(path, earlier, ["gmvae", *fit])
    if earlier is not None and not resume:
        print(f"{label}: an earlier attempt did not finish; moved to {_set_aside(path)}")
    path.mkdir(parents=True, exist_ok=True)
    record = {
        "experiment": experiment.name,
        "seed": seed,
        "epochs": epochs,
        "argv": ["gmvae", *fit],
        "command": shlex.join(["gmvae", *fit]),
        "command_template": template,
        "machine": machine_description(),
        "status": "running",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "attempts": 1,
    }
    spent = 0.0
    if resume:
        record["started"] = earlier.get("started", record["started"])
        record["attempts"] = int(earlier.get("attempts", 1)) + 1
        spent = float(earlier.get("wall_seconds") or 0.0)  # a killed attempt recorded none
        print(f"{label}: resuming the unfinished earlier attempt from {path / LAST}", flush=True)
    atomic_write_json(path / RECORD, record)
    print(f"{label}: running {record['command']}", flush=True)
    start = time.monotonic()
    argv = [*fit, "--ckpt_path", "last"] if resume else fit
    with (path / "fit.log").open("a" if resume else "w") as log:
        done = subprocess.run(
            [sys.executable, "-m", "gmvae", *argv], stdout=log, stderr=subprocess.STDOUT
        )
    record["wall_seconds"] = round(spent + time.monotonic() - start, 1)
    record["returncode"] = done.returncode
    finished = done.returncode == 0 and (path / "metrics.json").is_file()
    record["status"] = "finished" if finished else "failed"
    if not finished:
        record["error"] = _last_error(path / "fit.log")
        print(f"{label}: FAILED (exit {done.returncode}): {record['error']}")
    else:
        print(f"{label}: finished in {record['wall_seconds']:.0f} s")
    atomic_write_json(path / RECORD, record)
    if finished:
        _baseline(experiment, path, label)
    return finished


def _baseline(experiment: Experiment, path: Path, label: str) -> None:
    """Beside a finished clustering run: k-means on its training split (once)."""
    if not experiment.clustering or (path / BASELINE).is_file():
        return
    result = write_run_baseline(path)
    print(
        f"{label}: k-means baseline ACC {100 * result['test_cluster_accuracy']:.2f} %, "
        f"NMI {100 * result['test_nmi']:.2f} % ({result['seconds']:.0f} s)",
        flush=True,
    )


def _write(args: argparse.Namespace, argv: list[str]) -> None:
    if args.table is None:
        return
    made_by = shlex.join(["gmvae", "reproduce", *argv])
    write_table(args.table, render(args.out_dir, scan(args.out_dir), made_by))


def main(argv: list[str]) -> int:
    parser = ToolParser(
        prog="gmvae reproduce",
        description=__doc__.split("\n")[0],
        epilog="experiments: "
        + ", ".join(f"{e.name} ({e.description})" for e in EXPERIMENTS.values()),
    )
    parser.add_argument(
        "--experiments", nargs="+", default=["mnist-100"], metavar="NAME", help="what to run"
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1 (the paper uses 5)")
    parser.add_argument(
        "--max-epochs", type=int, help="epoch budget per run (default: the config's, 200)"
    )
    parser.add_argument("--data-dir", type=Path, help="folder holding <dataset>/ (data.data_dir)")
    parser.add_argument("--no-download", action="store_true", help="never fetch missing files")
    parser.add_argument("--out-dir", type=Path, default=Path("runs/reproduce"))
    parser.add_argument("--configs-dir", type=Path, default=None, help="default: ./configs")
    parser.add_argument("--table", type=Path, help="Markdown file to write the table into")
    parser.add_argument("--dry-run", action="store_true", help="print the commands; run nothing")
    args = parser.parse_args(argv)
    unknown = [e for e in args.experiments if e not in EXPERIMENTS]
    if unknown:
        parser.error(
            f"unknown experiment(s) {', '.join(unknown)}; choose from {', '.join(EXPERIMENTS)}"
        )
    if args.seeds < 1 or (args.max_epochs is not None and args.max_epochs < 1):
        parser.error("--seeds and --max-epochs must be >= 1")
    configs = args.configs_dir or _default_configs()

    chosen = []
    for name in dict.fromkeys(args.experiments):  # in order, each once
        experiment = EXPERIMENTS[name]
        config = configs / experiment.config
        chosen.append((experiment, config, args.max_epochs or _config_epochs(config)))
    # Seed by seed: a call cut short still has every experiment at its first seeds.
    plan = [(*e, seed) for seed in range(args.seeds) for e in chosen]
    failures = 0
    for i, (experiment, config, epochs, seed) in enumerate(plan, 1):
        print(f"[{i}/{len(plan)}] ", end="")
        failures += not _run_one(experiment, config, epochs, seed, args)
        if not args.dry_run:
            _write(args, argv)
    if args.dry_run:
        return 0
    _write(args, argv)
    if args.table is not None:
        print(f"wrote {args.table}")
    if failures:
        print(f"{failures} of {len(plan)} runs did not finish (see their fit.log)", file=sys.stderr)
        return 1
    return 0
