"""Cheap runs: commands that train nothing never import a deep-learning framework.

Timing goals live in benchmarks/; these tests check the causes of slowness that can be seen
exactly: which modules a command imports (`python -X importtime`), and that the exit status
survives the console script's quick exit.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("tensorflow", "keras", "jax", "torch")


def imported_modules(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run `lstmlab ARGS` with -X importtime; its result and the top-level modules it imported."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "lstmlab.cli", *args],
        capture_output=True, text=True, timeout=120,
    )
    modules = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return result, modules


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, status",
    [
        (["--help"], 0),
        (["train", "--help"], 0),
        (["train", "--cfg", "job"], 0),
        (["ui", "--help"], 0),
        (["train", "variant=nope"], 2),  # an unknown group option: a config error
        (["train", "trainer.epochs=[1"], 2),  # an override Hydra cannot parse
        (["train", "data=csv", "data.path=missing.csv"], 2),  # a data error, found before Keras
        (["nope"], 2),
    ],
)
def test_commands_that_train_nothing_import_no_framework(args, status):
    result, modules = imported_modules(*args)
    assert result.returncode == status, result.stderr[-2000:]
    assert not modules & set(HEAVY), f"`lstmlab {' '.join(args)}` imported {modules & set(HEAVY)}"
    if status:
        errors = [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
        assert len(errors) == 1 and errors[0].startswith("lstmlab"), errors


# Parsing the arguments needs none of these: `--help` and usage errors answer before any is imported.
NOT_FOR_PARSING = (*HEAVY, "mlflow", "pandas", "scipy", "matplotlib", "sklearn", "numpy")


@pytest.mark.parametrize("command", ["compare", "rerun", "forecast", "evidence"])
def test_help_and_usage_errors_import_nothing_heavy(command):
    result, modules = imported_modules(command, "--help")
    assert result.returncode == 0 and result.stdout.startswith(f"usage: lstmlab {command}"), result.stderr[-2000:]
    assert not modules & set(NOT_FOR_PARSING), f"`lstmlab {command} --help` imported {modules & set(NOT_FOR_PARSING)}"
    bad, modules = imported_modules(command, "--no-such-option")
    assert bad.returncode == 2 and f"lstmlab {command}: error:" in bad.stderr
    assert not modules & set(NOT_FOR_PARSING)


def test_the_quick_exit_keeps_the_exit_status_and_the_output(tmp_path):
    script = "import sys; from lstmlab.cli import run; sys.argv[1:] = ['--help']; run()"
    ok = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("usage: lstmlab")
    crash = "import sys; import lstmlab.cli as c; c.main = lambda: 1 / 0; c.run()"
    bug = subprocess.run([sys.executable, "-c", crash], capture_output=True, text=True, timeout=60)
    assert bug.returncode == 1 and "ZeroDivisionError" in bug.stderr


@pytest.mark.slow
def test_compare_imports_no_framework_on_a_store_with_runs():
    from conftest import tiny_config
    from lstmlab.pipeline.experiment import run_experiment

    run_experiment(tiny_config("model.units=[4,4]"))
    run_experiment(tiny_config("model.units=[4,4]", "variant=tanh"))
    result, modules = imported_modules("compare")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "tanh" in result.stdout
    assert not modules & set(HEAVY), f"`lstmlab compare` imported {modules & set(HEAVY)}"
