"""``gmvae --help`` shows every command with our own words, each command's ``--help`` works,
and a mistyped option or command gets the closest known name, worded alike by both parsers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import gmvae
from gmvae.cli import main
from gmvae.cli.app import TOOL_COMMANDS, TRAINER_COMMANDS

from ..conftest import DEMO


def run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out, err = capsys.readouterr()
    return done.value.code, out, err


def listed_commands(help_text: str) -> list[str]:
    section = help_text.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in section.splitlines() if line.strip()]


def test_gmvae_help_lists_every_command_in_our_words():
    done = subprocess.run(
        [sys.executable, "-m", "gmvae", "--help"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "Lightning Trainer command line tool" not in done.stdout
    commands = listed_commands(done.stdout)
    # every module with a command's main(argv) is one gmvae --help lists
    src = Path(gmvae.__file__).parent
    entry_points = {
        ".".join(path.relative_to(src.parent).with_suffix("").parts) + ":main"
        for path in src.rglob("*.py")
        if "def main(argv" in path.read_text() and path != src / "cli" / "app.py"
    }
    listed = {target for name, target in TOOL_COMMANDS.items() if name in commands}
    assert entry_points <= listed, entry_points - listed
    assert set(TRAINER_COMMANDS) <= set(commands)
    assert {"fit", "validate", "test", "predict", "generate", "embed", "reconstruct"} <= set(
        commands
    )
    assert {"curves", "tune", "reproduce"} <= set(commands)
    line = {c: next(x for x in done.stdout.splitlines() if x.split()[:1] == [c]) for c in commands}
    assert "class and class probabilities" in line["predict"]  # ours, not Lightning's
    assert "pip install 'gmvae[tune]'" in line["tune"]


def test_every_listed_command_has_a_help_of_its_own(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in listed_commands(out):
        code, text, err = run(capsys, command, "--help")
        assert code == 0, (command, err)
        assert text.startswith(f"usage: gmvae {command}") or text.startswith(
            f"usage: gmvae [options] {command}"
        ), (command, text[:200])
        assert "Lightning Trainer command line tool" not in text, command
    _, fit_help, _ = run(capsys, "fit", "--help")
    assert "gmvae fit: train a model" in fit_help


def test_no_command_or_an_unknown_one(capsys):
    code, _, err = run(capsys)
    assert code == 2 and "commands:" in err
    code, _, err = run(capsys, "fitt", "--config", DEMO)
    assert code == 2 and "gmvae: error: unknown command 'fitt'; did you mean fit?" in err


@pytest.mark.parametrize(
    "args,expected",
    [
        (["fit", "--config", DEMO, "--model.loss.k", "3"], "--model.loss.k; did you mean --model.loss.knn_k?"),
        (["fit", "--config", DEMO, "--model.network.inti", "xavier"], "--model.network.inti; did you mean --model.network.init?"),
        (["fit", "--config", DEMO, "--trainer.max_epohcs", "3"], "--trainer.max_epohcs; did you mean --trainer.max_epochs?"),
        (["fit", "--config", DEMO, "--checkpoint.monitr", "x"], "--checkpoint.monitr; did you mean --checkpoint.monitor?"),
        (["generate", "m.safetensors", "--out", "g.png", "--perclass", "3"], "--perclass; did you mean --per-class?"),
        (["predict", "m.safetensors", "x.png", "--out", "p.csv", "--batchsize", "8"], "--batchsize; did you mean --batch-size?"),
    ],
)  # fmt: skip
def test_an_unknown_option_is_worded_alike_with_the_closest_name(capsys, args, expected):
    code, _, err = run(capsys, *args)
    assert code == 2 and "Traceback" not in err
    assert err.splitlines()[0] == f"gmvae: error: unknown option {expected}", err
    assert err.splitlines()[1] == f"(see: gmvae {args[0]} --help)"


def test_tune_without_its_extra_says_how_to_install_it(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "optuna", None)  # what `import optuna` meets uninstalled
    code, _, err = run(capsys, "tune", "--config", DEMO, "--space", str(tmp_path / "s.yaml"))
    assert code == 2
    assert err.strip() == (
        "gmvae: error: gmvae tune needs Optuna, which is not installed: "
        "pip install 'gmvae[tune]' (optuna, optuna-integration)"
    )
    code, out, _ = run(capsys, "tune", "--help")  # the help needs no Optuna
    assert code == 0 and "--space" in out
