"""Test error with labels chosen by ``gmvae suggest`` vs drawn at random vs the paper's draw.

    python bench/suggest_vs_random.py --config configs/digits-demo.yaml --dataset digits \\
        --budgets 10 20 50 100 --seeds 3 --out-dir runs/suggest-bench [gmvae fit options]

For each seed, ``gmvae suggest DATASET --seed S`` trains a clustering model on the train
part of the seed's split (or takes ``--suggest-model``) and picks each budget's images;
their labels are filled in from the data set's true labels, as a user would type them.
Then ``gmvae fit`` trains the same config, seed and epochs three ways: with those labels
(``--data.labeled_indices``), with as many drawn uniformly without looking at the classes
(``--data.labeled_draw random``), and with the paper's balanced draw (equal count per
class; budgets that are not a multiple of the classes get no balanced run). Each run is a
subprocess; one whose ``metrics.json`` exists is not run again, so a killed bench resumes.
The table gives the test error (mean ± std over seeds, then each seed's) and, for the
suggested labels, how many classes they cover.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from gmvae.data.registry import get_spec, load_split

ARMS = ("suggest", "random", "balanced")


def run(command: list[str], log: Path) -> None:
    """Run one gmvae command, its output in ``log``; stop the bench if it fails."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    start = time.perf_counter()
    with open(log, "w") as f:
        print("$ " + " ".join(command), file=f, flush=True)
        done = subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, env=env, check=False)
    if done.returncode:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}; see {log}")
    print(f"  {time.perf_counter() - start:6.1f} s  {' '.join(command[3:7])} ...", flush=True)


def fill_sheet(sheet: Path, filled: Path, labels: list[int]) -> int:
    """Write ``filled``: the sheet's indices with their true labels; returns the classes covered."""
    rows = [r for r in csv.DictReader(sheet.open()) if r.get("index")]
    with open(filled, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["index", "label"])
        writer.writerows([r["index"], labels[int(r["index"])]] for r in rows)
    return len({labels[int(r["index"])] for r in rows})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--dataset", required=True, help="as the config's data.dataset")
    parser.add_argument("--budgets", type=int, nargs="+", default=[10, 20, 50, 100])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--max-epochs", type=int, help="override trainer.max_epochs")
    parser.add_argument("--data-dir", help="as --data.data_dir")
    parser.add_argument("--suggest-epochs", type=int, default=20, help="of the clustering model")
    parser.add_argument("--suggest-model", help="a model.safetensors to suggest from instead")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    # Every option not named above is a gmvae fit option for every run, e.g.
    # --model.loss.w_gaussian=1 (the "=" keeps a value starting with "-" attached).
    args, fit_options = parser.parse_known_args(argv)
    gmvae = [sys.executable, "-m", "gmvae"]
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    fit_data = ["--data.data_dir", args.data_dir] if args.data_dir else []
    epochs = ["--trainer.max_epochs", str(args.max_epochs)] if args.max_epochs else []
    quiet = ["--trainer.enable_progress_bar", "false", "--threads", "1"]
    classes = get_spec(args.dataset).num_classes
    labels = load_split(args.dataset, "train", data_dir=args.data_dir).labels.tolist()

    errors: dict[tuple[str, int], list[float]] = {}
    covered: dict[int, list[int]] = {}
    for seed in range(args.seeds):
        base = args.out_dir / f"seed{seed}"
        model = args.suggest_model
        for budget in args.budgets:
            arms: dict[str, list[str]] = {}
            if "suggest" in args.arms:
                sheet = base / f"suggest-{budget}"
                if not (sheet / "labels.csv").is_file():
                    source = ["--model", model] if model else ["--epochs", str(args.suggest_epochs)]
                    command = [*gmvae, "suggest", args.dataset, "--budget", str(budget)]
                    command += ["--seed", str(seed), "--out", str(sheet), *source, *data]
                    run(command, sheet / "suggest.log")
                if model is None:
                    model = str(sheet / "model.safetensors")  # one clustering model per seed
                filled = sheet / "labels-filled.csv"
                covered.setdefault(budget, []).append(
                    fill_sheet(sheet / "labels.csv", filled, labels)
                )
                arms["suggest"] = ["--data.labeled_indices", str(filled)]
            if "random" in args.arms:
                arms["random"] = [
                    "--data.num_labeled",
                    str(budget),
                    "--data.labeled_draw",
                    "random",
                ]
            if "balanced" in args.arms and budget % classes == 0:
                arms["balanced"] = ["--data.num_labeled", str(budget)]
            for arm, options in arms.items():
                root = base / f"{arm}-{budget}"
                if not (root / "metrics.json").is_file():
                    command = [*gmvae, "fit", "--config", args.config, *fit_options, *options]
                    command += fit_data
                    command += ["--seed_everything", str(seed), *epochs, *quiet]
                    command += ["--trainer.default_root_dir", str(root)]
                    run(command, root / "fit.log")
                metrics = json.loads((root / "metrics.json").read_text())
                errors.setdefault((arm, budget), []).append(metrics["test_error"])

    print(f"\ntest error (%), {args.config}, {args.seeds} seeds: mean ± std [per seed]")
    print("| labels | " + " | ".join(args.arms) + " | classes covered by suggest |")
    print("|---" * (len(args.arms) + 2) + "|")
    for budget in args.budgets:
        cells = []
        for arm in args.arms:
            values = errors.get((arm, budget))
            if not values:
                cells.append("-")
                continue
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            each = "/".join(f"{v:.1f}" for v in values)
            cells.append(f"{statistics.mean(values):.1f} ± {spread:.1f} [{each}]")
        cover = "/".join(str(c) for c in covered.get(budget, [])) or "-"
        print(f"| {budget} | " + " | ".join(cells) + f" | {cover} of {classes} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
