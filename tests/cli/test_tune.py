"""``gmvae tune``: trials on the validation split, pruning, resuming, a best config fit accepts."""

import csv
import json

import pytest
import yaml

from gmvae.cli.app import main
from gmvae.cli.tune import read_space
from gmvae.errors import ConfigError

from ..conftest import DEMO, QUIET

SPACE = """\
model.lr: {low: 1.0e-7, high: 1.0e-2, log: true}
model.loss.knn_k: {low: 2, high: 4}
"""


def run(*args: str) -> int:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    return done.value.code


@pytest.mark.slow
def test_three_trials_prune_write_a_config_fit_runs_and_a_second_call_resumes(tmp_path):
    optuna = pytest.importorskip("optuna")
    (tmp_path / "space.yaml").write_text(SPACE)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    # Two good trials, then one that cannot learn (lr 1e-7): the median pruner stops it.
    study = optuna.create_study(storage=storage, study_name="digits", direction="maximize")
    for lr in (3e-3, 3e-3, 1e-7):
        study.enqueue_trial({"model.lr": lr, "model.loss.knn_k": 3})
    common = [
        "tune",
        "--config",
        DEMO,
        "--space",
        str(tmp_path / "space.yaml"),
        "--storage",
        storage,
        "--study-name",
        "digits",
        "--out",
        str(tmp_path / "best.yaml"),
        "--runs-dir",
        str(tmp_path / "trials"),
        "--prune-after",
        "2",
        "--warmup-epochs",
        "0",
        "--trainer.max_epochs",
        "1",
        *QUIET,
    ]
    assert run(*common, "--trials", "3") == 0
    trials = optuna.load_study(study_name="digits", storage=storage).trials
    states = [t.state.name for t in trials]
    assert states == ["COMPLETE", "COMPLETE", "PRUNED"]
    assert trials[0].value > 0.5 and trials[0].value == trials[1].value  # same seed, same values

    # Trials validate but never test: no test metrics, no metrics.json.
    for run_dir in (tmp_path / "trials").iterdir():
        assert not (run_dir / "metrics.json").exists()
        header = next(csv.reader((run_dir / "metrics.csv").open()))
        assert "val/accuracy" in header and not any(h.startswith("test/") for h in header)

    text = (tmp_path / "best.yaml").read_text()
    assert text.startswith("# gmvae tune: best trial of study 'digits'")
    best = yaml.safe_load(text)
    assert best["model"]["lr"] == 3e-3 and best["model"]["loss"]["knn_k"] == 3
    fit_dir = tmp_path / "best-run"
    # `gmvae fit --config best.yaml` (into a directory of the test's choosing)
    main(
        [
            "fit",
            "--config",
            str(tmp_path / "best.yaml"),
            "--trainer.default_root_dir",
            str(fit_dir),
            *QUIET,
        ]
    )
    metrics = json.loads((fit_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and metrics["test_accuracy"] > 0.5

    assert run(*common, "--trials", "4") == 0  # resumes: one more trial
    trials = optuna.load_study(study_name="digits", storage=storage).trials
    assert len(trials) == 4 and trials[3].state.name in ("COMPLETE", "PRUNED")
    assert trials[3].params != trials[0].params  # a fresh random draw, not a repeat
    assert run(*common, "--trials", "4") == 0  # budget reached: nothing to run
    assert len(optuna.load_study(study_name="digits", storage=storage).trials) == 4


def test_an_output_that_is_not_ours_is_never_overwritten(tmp_path, capsys):
    (tmp_path / "space.yaml").write_text(SPACE)
    (tmp_path / "best.yaml").write_text("seed_everything: 7\n")
    code = run(
        "tune",
        "--config",
        DEMO,
        "--space",
        str(tmp_path / "space.yaml"),
        "--trials",
        "1",
        "--storage",
        f"sqlite:///{tmp_path / 'study.db'}",
        "--study-name",
        "x",
        "--out",
        str(tmp_path / "best.yaml"),
    )
    assert code == 2 and "pass --force" in capsys.readouterr().err
    assert (tmp_path / "best.yaml").read_text() == "seed_everything: 7\n"
    assert not (tmp_path / "study.db").exists()


@pytest.mark.parametrize(
    "text,match",
    [
        ("model.lr: 0.1\n", "expected {low, high}"),
        ("model.lr: {low: 1, high: 0.5}\n", "low < high"),
        ("model.lr: {low: 0.0, high: 1.0, log: true}\n", "low > 0"),
        ("model.lr: {low: 0.1, hi: 1.0}\n", "unknown key"),
        ("model.loss.metric: {choices: []}\n", "non-empty list"),
        ("[1, 2]\n", "mapping"),
    ],
)
def test_a_bad_search_space_names_the_option(tmp_path, text, match):
    (tmp_path / "space.yaml").write_text(text)
    with pytest.raises(ConfigError, match=match):
        read_space(tmp_path / "space.yaml")


def test_read_space_kinds(tmp_path):
    (tmp_path / "s.yaml").write_text(
        "a: {low: 1, high: 5}\nb: {low: 1, high: 5.0}\nc: {choices: [x, y]}\nd: {low: 1, high: 9, step: 2}\n"
    )
    kinds = {d.name: (d.kind, d.step) for d in read_space(tmp_path / "s.yaml")}
    assert kinds == {
        "a": ("int", None),
        "b": ("float", None),
        "c": ("categorical", None),
        "d": ("int", 2),
    }
