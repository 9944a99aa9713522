"""The results runner's records on disk and the Markdown table made from them.

Layout under the runner's output folder::

    OUT/<experiment>/epochs-<E>/seed-<S>/   a `gmvae fit` run directory, plus
        reproduce.json                      the runner's record: command, status, wall time
        fit.log                             the run's console output

A run is finished when its ``metrics.json`` exists (``gmvae fit`` writes it last).
The table covers every experiment of :data:`gmvae.reproduce.experiments.EXPERIMENTS`, so what
was not measured says so, with the reason.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

from gmvae.errors import ConfigError, DataError
from gmvae.io.atomic import atomic_write_bytes
from gmvae.reproduce.baseline import BASELINE
from gmvae.reproduce.experiments import EXPERIMENTS, SCORES, Experiment

RECORD = "reproduce.json"
BEGIN = "<!-- gmvae reproduce: begin (generated: text between these markers is replaced) -->"
END = "<!-- gmvae reproduce: end -->"
SEED = "$SEED"  # the seed's place in a command template


def run_dir(out_dir: Path, experiment: str, epochs: int, seed: int) -> Path:
    return out_dir / experiment / f"epochs-{epochs}" / f"seed-{seed}"


@dataclass(frozen=True)
class Run:
    """One (experiment, epoch budget, seed) as found on disk."""

    experiment: str
    epochs: int
    seed: int
    path: Path
    record: dict
    metrics: dict | None
    baseline: dict | None = None  # kmeans.json of a clustering run

    @property
    def finished(self) -> bool:
        return self.metrics is not None

    @property
    def failed(self) -> bool:
        return not self.finished and self.record.get("status") == "failed"


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not readable JSON: {exc}") from None
    if not isinstance(value, dict):
        raise DataError(f"{path}: expected a JSON object")
    return value


def _suffix_int(name: str, prefix: str) -> int | None:
    rest = name.removeprefix(prefix)
    return int(rest) if name.startswith(prefix) and rest.isdigit() else None


def load_run(path: Path, experiment: str, epochs: int, seed: int) -> Run:
    return Run(
        experiment,
        epochs,
        seed,
        path,
        _read_json(path / RECORD) or {},
        _read_json(path / "metrics.json"),
        _read_json(path / BASELINE),
    )


def scan(out_dir: Path) -> list[Run]:
    """Every run directory of a known experiment under ``out_dir`` (old attempts excluded)."""
    runs = []
    for name in EXPERIMENTS:
        for budget in sorted((out_dir / name).glob("epochs-*")):
            epochs = _suffix_int(budget.name, "epochs-")
            for seed_dir in sorted(budget.glob("seed-*")):
                seed = _suffix_int(seed_dir.name, "seed-")
                if epochs is not None and seed is not None and seed_dir.is_dir():
                    runs.append(load_run(seed_dir, name, epochs, seed))
    return sorted(runs, key=lambda r: (r.experiment, r.epochs, r.seed))


def _summary(values: list[float], *, lower_is_better: bool, best: bool) -> str:
    mean = statistics.fmean(values)
    text = f"{mean:.2f}"
    text += f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else " (1 seed)"
    if best and len(values) > 1:
        text += f" (best {min(values) if lower_is_better else max(values):.2f})"
    return text


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def _rows_for(experiment: Experiment, runs: list[Run]) -> list[list[str]]:
    """Table rows of one experiment: one per (epoch budget, paper metric)."""
    rows = []
    budgets = sorted({r.epochs for r in runs})
    if not budgets and all(p.mean is None for p in experiment.paper):
        return []  # not in the paper (the digits demo) and not run: nothing to say
    if not budgets:
        reason = f"not run (`gmvae reproduce --experiments {experiment.name}`)"
        for paper in experiment.paper:
            label = SCORES[paper.score].label
            rows.append(
                [experiment.name, label, paper.text(), f"not measured: {reason}"] + ["-"] * 5
            )
        return rows
    for epochs in budgets:
        group = [r for r in runs if r.epochs == epochs]
        done = [r for r in group if r.finished]
        failed = [r for r in group if r.failed]
        walls = [r.record["wall_seconds"] for r in done if r.record.get("wall_seconds")]
        trained = sorted({int(r.metrics["epochs"]) for r in done})
        template = next((r.record.get("command_template") for r in group), None)
        for paper in experiment.paper:
            score = SCORES[paper.score]
            values = [
                score.scale * float(r.metrics[paper.score])
                for r in done
                if r.metrics.get(paper.score) is not None
            ]
            if values:
                ours = _summary(
                    values, lower_is_better=score.lower_is_better, best=paper.best is not None
                )
            else:
                reason = failed[0].record.get("error", "failed") if failed else "not finished yet"
                ours = f"not measured: {reason}"
            if failed and values:
                ours += f"; {len(failed)} seed(s) failed"
            baseline = [
                score.scale * float(r.baseline[paper.score])
                for r in done
                if r.baseline and r.baseline.get(paper.score) is not None
            ]
            rows.append(
                [
                    experiment.name,
                    score.label,
                    paper.text(),
                    ours,
                    _summary(baseline, lower_is_better=score.lower_is_better, best=False)
                    if baseline
                    else "-",
                    ", ".join(str(r.seed) for r in done) or "-",
                    "/".join(map(str, trained)) or str(epochs),
                    f"{_minutes(statistics.fmean(walls))} per run" if walls else "-",
                    f"`{template}`" if template else "",
                ]
            )
    return rows


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render(out_dir: Path, runs: list[Run], made_by: str) -> str:
    """The generated block: the summary table, then one line per finished run."""
    rows = []
    for experiment in EXPERIMENTS.values():
        rows += _rows_for(experiment, [r for r in runs if r.experiment == experiment.name])
    header = ["experiment", "metric", "paper (5 seeds)", "ours (mean ± std over seeds)"]
    header += ["k-means (PCA-50), same seeds"]
    header += ["seeds", "epochs", "wall time", f"command (for {SEED} in the seeds)"]
    detail_header = ["run", "test error (%)", "cluster ACC (%)", "NMI (%)"]
    detail_header += ["best by", "train s/epoch", "wall s", "machine"]
    details = []
    for r in runs:
        if not r.finished:
            continue
        m = r.metrics

        def pct(key: str, scale: float, m: dict = m) -> str:
            value = m.get(key)
            return "-" if value is None or math.isnan(value) else f"{scale * value:.2f}"

        details.append(
            [
                f"`{r.path.relative_to(out_dir)}`",
                pct("test_error", 1.0),
                pct("test_cluster_accuracy", 100.0),
                pct("test_nmi", 100.0),
                str(m.get("checkpoint_monitor", "-")),
                str(m.get("seconds_per_epoch", "-")),
                f"{r.record['wall_seconds']:.0f}" if r.record.get("wall_seconds") else "-",
                str(r.record.get("machine", "-")),
            ]
        )
    parts = [
        BEGIN,
        "",
        f"Last written by `{made_by}`; the runs are under `{out_dir}`.",
        "Ours: mean ± sample standard deviation over the finished seeds (best seed where the",
        "paper gives one); each run tests its best checkpoint (by `best by`) on the official",
        "test set once. Wall time: the whole `gmvae fit` (data loading, training, validation,",
        "testing) per run, on the machine named below. k-means: scikit-learn's KMeans on a",
        "50-component PCA of each clustering run's own training split, scored on the same",
        "test set (the baseline a clustering GMVAE must beat).",
        "",
        _markdown_table(header, rows),
        "",
        "Every finished run:",
        "",
        _markdown_table(detail_header, details) if details else "(none yet)",
        "",
        END,
    ]
    return "\n".join(parts)


def write_table(path: Path, block: str) -> None:
    """Put ``block`` in ``path`` between the markers; a new file gets a title.

    A file without the markers is someone's own text: it is never overwritten.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        text = None
    if text is None:
        new = f"# Results\n\n{block}\n"
    else:
        start, end = text.find(BEGIN), text.find(END)
        if start < 0 or end < start:
            raise ConfigError(
                f"--table {path}: the file exists but has no generated block; refusing to "
                f"overwrite it (add the lines {BEGIN!r} and {END!r} where the table goes, "
                "or choose another file)"
            )
        new = text[:start] + block + text[end + len(END) :]
    atomic_write_bytes(path, new.encode())


def machine_description() -> str:
    """A short description of where a run ran, stored in its record."""
    import torch

    accel = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only"
    return f"{os.cpu_count()} CPU cores, {accel}, torch {torch.__version__}"
