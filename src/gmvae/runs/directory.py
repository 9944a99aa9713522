"""The run directory's rules: no silent overwrite of a run, and a resume that loses nothing.

A run directory (``--trainer.default_root_dir``) holds ``config.yaml``,
``metrics.csv``, ``checkpoints/`` and, once the run finished, ``metrics.json``.

- A new run refuses a directory that already holds a run, finished or not.
- A resume (``--ckpt_path``) refuses options that would make it a different run
  (``seed_everything``, ``model.*``, ``data.*`` but where the files are); other
  changes (say ``trainer.max_epochs``, to train longer) are allowed, and the
  previous ``config.yaml`` is kept as ``config.<n>.yaml``.
- ``metrics.csv`` keeps the rows logged before the checkpoint (Lightning's CSV
  logger would delete the file) and drops the ones the resumed run logs again.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from gmvae.errors import ConfigError
from gmvae.io.atomic import atomic_writer
from gmvae.io.checkpoint import load_checkpoint_safely

FINISHED = "metrics.json"
CONFIG = "config.yaml"
# Options that may change between a run and its resume: where the data lives.
MOVABLE = ("data.data_dir", "data.download")
# Options that define the run: changing them on resume would silently mix two runs.
DEFINING = ("seed_everything", "model.", "data.")


def check_new_run(run_dir: Path) -> None:
    """Raise :class:`ConfigError` if ``run_dir`` already holds a run (finished or not)."""
    if (run_dir / FINISHED).is_file():
        raise ConfigError(
            f"{run_dir} already holds a finished run ({FINISHED}); pass another "
            "--trainer.default_root_dir, or delete that folder to start over"
        )
    left = [p.name for p in (run_dir / CONFIG, run_dir / "checkpoints") if p.exists()]
    if left:
        raise ConfigError(
            f"{run_dir} holds a run that did not finish ({', '.join(left)}); continue it with "
            "--ckpt_path last, or pass another --trainer.default_root_dir"
        )


def resume_step(ckpt_path: str | None, root: str, checkpoint_dirs: list[str | None]) -> int | None:
    """The global step of the checkpoint a fit resumes from; None when not resuming.

    ``last`` is found as Lightning finds it: the newest ``last*.ckpt`` in the
    checkpoint callbacks' folders (``root/checkpoints`` where they set none); 0 when
    there is none yet (Lightning then starts afresh).
    """
    if ckpt_path is None or ckpt_path in ("best", "hpc", "registry"):
        return None
    if ckpt_path == "last":
        dirs = {Path(d or Path(root, "checkpoints")) for d in checkpoint_dirs}
        found = sorted((p for d in dirs for p in d.glob("last*.ckpt")), key=os.path.getmtime)
        if not found:
            return 0
        ckpt_path = str(found[-1])
    return int(load_checkpoint_safely(ckpt_path, map_location="cpu").get("global_step", 0))


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists and scalars are leaves."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}{key}."))
    if not tree and prefix:
        out[prefix[:-1]] = {}
    return {k.rstrip("."): v for k, v in out.items()}


def config_changes(
    old: dict[str, Any], new: dict[str, Any], defaults: dict[str, Any] | None = None
) -> dict[str, tuple[Any, Any]]:
    """Options whose value differs, ignoring ``ckpt_path`` (the resume itself).

    ``defaults`` ({"model.loss.x": value}): an option newer than the run, absent from its
    config.yaml and at its default now, is no change (a new option's default keeps the
    behaviour the run had).
    """
    a, b, d = flatten(old), flatten(new), defaults or {}
    keys = (set(a) | set(b)) - {"ckpt_path"}
    return {
        k: (a.get(k), b.get(k))
        for k in sorted(keys)
        if a.get(k) != b.get(k) and not (k not in a and k in d and b.get(k) == d[k])
    }


def prepare_resume(
    run_dir: Path, new_config_yaml: str, defaults: dict[str, Any] | None = None
) -> str | None:
    """Check a resume's options against the run's ``config.yaml``; returns a note or None.

    Raises :class:`ConfigError` for a change to a defining option. For other changes
    the old file is kept as ``config.<n>.yaml`` (the new one is written by the run).
    """
    path = run_dir / CONFIG
    if not path.is_file():
        return None
    try:
        old = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the run's configuration: {exc}") from None
    changes = config_changes(old, yaml.safe_load(new_config_yaml) or {}, defaults)
    if not changes:
        return None
    defining = [k for k in changes if k.startswith(DEFINING) and k not in MOVABLE]
    shown = "; ".join(f"{k}: {changes[k][0]!r} -> {changes[k][1]!r}" for k in (defining or changes))
    if defining:
        raise ConfigError(
            f"cannot resume {run_dir} with other options ({shown}); resume with the options in "
            f"{path}, or start a new run in another --trainer.default_root_dir"
        )
    n = 1
    while (run_dir / f"config.{n}.yaml").exists():
        n += 1
    kept = run_dir / f"config.{n}.yaml"
    os.replace(path, kept)
    return f"resuming with changed options ({shown}); the previous configuration is kept as {kept}"


class _KeepingWriter(ExperimentWriter):
    """Lightning's CSV writer, continuing ``metrics.csv`` with the rows logged before a step.

    The base class deletes an existing file; this one reads the rows to keep and
    rewrites the whole file atomically at the first save, so a crash at any moment
    leaves either the old file or the new one, never a partial merge.
    """

    def __init__(self, log_dir: str, keep_before_step: int) -> None:
        self._keep_before_step = keep_before_step
        self._kept: list[dict[str, Any]] | None = None
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        self._kept = []
        if path.is_file():
            with path.open(newline="") as f:
                rows = [
                    r for r in csv.DictReader(f) if _int(r.get("step")) < self._keep_before_step
                ]
            self._kept = [{k: v for k, v in r.items() if v not in ("", None)} for r in rows]

    def save(self) -> None:
        if self._kept is None:
            super().save()
            return
        self.metrics = self._kept + self.metrics
        self._kept = None
        if not self.metrics:
            return
        self._record_new_keys()
        with atomic_writer(self.metrics_file_path) as raw:
            f = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            writer = csv.DictWriter(f, fieldnames=self.metrics_keys)
            writer.writeheader()
            writer.writerows(self.metrics)
            f.flush()
            f.detach()  # atomic_writer closes the file itself
        self.metrics = []


def _int(value: Any) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return -1


class RunCSVLogger(CSVLogger):
    """``metrics.csv`` directly in the run directory; on resume it continues the file.

    ``keep_before_step``: keep the rows logged at an earlier global step than this
    (the resumed checkpoint's); None starts a new file.
    """

    def __init__(self, save_dir: str, keep_before_step: int | None = None) -> None:
        super().__init__(save_dir=save_dir, name="", version="")
        self._keep_before_step = keep_before_step

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None and self._keep_before_step is not None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _KeepingWriter(self.log_dir, self._keep_before_step)
        return super().experiment
