"""Tab completion as a shell runs it: the script `lstmlab completion SHELL` prints, installed in a
real bash, zsh or fish, asking the real `lstmlab` (the one of this environment) for its words."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lstmlab.commands import parsers
from lstmlab.commands.completion_query import candidates
from lstmlab.commands.hydra_compat import (
    VERSION_BASE,
    composed,
    hydra_arguments,
    hydra_completions,
    hydra_parser,
    parser_options,
    positional_choices,
)
from lstmlab.names import FINAL_METRICS
from lstmlab.paths import config_dir

BIN = str(Path(sys.executable).parent)  # where this environment's `lstmlab` script is
VARIANTS = sorted(path.stem for path in (Path(config_dir()) / "variant").glob("*.yaml"))


@pytest.fixture
def shell_env(tmp_path) -> dict[str, str]:
    """The user's environment with this `lstmlab` first on PATH and a cache of its own."""
    return {**os.environ, "PATH": BIN + os.pathsep + os.environ["PATH"], "XDG_CACHE_HOME": str(tmp_path / "cache")}


def printed(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([os.path.join(BIN, "lstmlab"), *args], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def in_shell(shell: str, script: str, env: dict[str, str]) -> str:
    done = subprocess.run([shell, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def bash_completes(line: str, env: dict[str, str], point: int | None = None) -> list[str]:
    """COMPREPLY of the installed function for COMP_LINE=`line` (cursor at `point`, else the end)."""
    script = (f'eval "$(lstmlab completion bash)"\nCOMP_LINE={shlex.quote(line)}\n'
              f"COMP_POINT={len(line) if point is None else point}\n"
              '_lstmlab_completion\nprintf "%s\\n" "${COMPREPLY[@]}"\n')
    return [word for word in in_shell("bash", script, env).splitlines() if word]


@pytest.mark.slow
@pytest.mark.parametrize(
    "line, expected",
    [
        ("lstmlab ", ["train", "compare", "rerun", "forecast", "ui", "completion", "evidence", "--help", "--version", "-v",
                      "--verbose", "--debug"]),
        ("lstmlab tr", ["train"]),
        ("lstmlab train var", ["variant="]),
        ("lstmlab train variant=", VARIANTS),  # bash completes the part after `=`
        ("lstmlab train variant=t", ["tanh", "third_layer"]),
        ("lstmlab train model.", ["model.activation=", "model.bidirectional=", "model.dropout=", "model.units="]),
        ("lstmlab train model.units=", ["["]),  # a list is given whole (bash completes after `=`)...
        ("lstmlab train variant=third_layer model.units=[", ["[50,50,50]"]),  # ...its value after `[`
        ("lstmlab train -m hydra/launcher=j", ["joblib"]),
        ("lstmlab -v train --cfg ", ["job", "hydra", "all"]),
        ("lstmlab train --mu", ["--multirun"]),
        ("lstmlab compare --met", ["--metric"]),
        ("lstmlab compare --metric test_r", ["test_rmse", "test_r2"]),
        ("lstmlab rerun 0123abcd --ch", ["--check"]),
        ("lstmlab completion ", ["bash", "zsh", "fish"]),
        ("lstmlab evidence ", ["save", "load", "table"]),
        ("lstmlab evidence save evidence/prices --ex", ["--experiment"]),  # the subcommand's own flags
        ("lstmlab forecast 0123abcd --data ", []),  # nothing: bash completes file names (-o default)
    ],
)
def test_bash_completes_commands_flags_and_hydra_groups_keys_values(line, expected, shell_env):
    assert bash_completes(line, shell_env) == expected


def test_bash_completes_the_word_at_the_cursor_and_offers_folders_to_go_into(tmp_path, shell_env):
    line = "lstmlab train var trainer.epochs=2"
    assert bash_completes(line, shell_env, point=len("lstmlab train var")) == ["variant="]
    (tmp_path / "dätä").mkdir()
    script = f'cd {shlex.quote(str(tmp_path))}\n'
    reply = in_shell("bash", script + 'eval "$(lstmlab completion bash)"\nCOMP_LINE="lstmlab train data.path=./dä"\n'
                     'COMP_POINT=${#COMP_LINE}\n_lstmlab_completion\nprintf "%s\\n" "${COMPREPLY[@]}"\n', shell_env)
    assert reply.split() == ["./dätä/"]


@pytest.mark.slow
def test_mlflow_ui_flags_are_read_once_and_kept(shell_env):
    assert bash_completes("lstmlab ui --po", shell_env) == ["--port"]
    (kept,) = (Path(shell_env["XDG_CACHE_HOME"]) / "lstmlab" / "completion").glob("mlflow-*-ui.txt")
    assert "--backend-store-uri =" in kept.read_text().splitlines()
    assert "--backend-store-uri" in bash_completes("lstmlab ui --back", shell_env)


def test_the_bash_script_is_for_lstmlab_only_and_hydras_install_line_gives_it(shell_env):
    script = printed("completion", "bash", env=shell_env)
    assert printed("train", "-sc", "install=bash", env=shell_env) == script
    assert printed("train", "--shell-completion", "install=bash", env=shell_env) == script
    assert "-sc" not in script and "query=" not in script  # Hydra's asks `lstmlab -sc query=bash`
    registered = in_shell("bash", f"{script}\ncomplete -p\n", shell_env).splitlines()
    assert registered == ["complete -o default -F _lstmlab_completion lstmlab"]
    removed = in_shell("bash", f'{script}\neval "$(lstmlab train -sc uninstall=bash)"\ncomplete -p\n', shell_env)
    assert removed == ""


def test_hydras_query_line_answers_too(shell_env):
    env = {**shell_env, "COMP_LINE": "lstmlab train variant=ta"}
    assert printed("train", "-sc", "query=fish", env=env).split() == ["variant=tanh"]


def test_an_unknown_shell_is_one_line(shell_env):
    done = subprocess.run([os.path.join(BIN, "lstmlab"), "train", "-sc", "install=tcsh"], capture_output=True,
                          text=True, env=shell_env, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("lstmlab train: error: shell completion: give one of install=SHELL, uninstall=SHELL or "
                           'query=SHELL, SHELL one of bash, zsh, fish, e.g. eval "$(lstmlab completion bash)"\n')


ZSH_STUBS = """autoload -Uz compinit && compinit -u -d "$HOME/.zcompdump-test"
compadd() { print -r -- "compadd $*" }   # zsh's compadd only works inside a completion widget
_files() { print -r -- "_files" }
complete_line() {
    words=(${=1}); CURRENT=${#words}; PREFIX=${words[-1]}
    if [[ $1 == *" " ]]; then words+=(""); CURRENT=$((CURRENT + 1)); PREFIX=""; fi
    _lstmlab
}
"""


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
@pytest.mark.parametrize("install", ['eval "$(lstmlab completion zsh)"', 'eval "$(lstmlab train -sc install=bash)"'])
def test_zsh_registers_lstmlab_only_and_adds_its_words(install, shell_env, tmp_path):
    script = ZSH_STUBS + install + """
print -r -- "registered: ${(kv)_comps[(R)_lstmlab]}"
complete_line "lstmlab train var"
complete_line "lstmlab train variant=t"
complete_line "lstmlab forecast 0123abcd --data "
"""
    out = in_shell("zsh", script, {**shell_env, "HOME": str(tmp_path)}).splitlines()
    assert out == ["registered: lstmlab _lstmlab",
                   "compadd -S  -- variant=",  # no space after: the value follows
                   "compadd -- variant=tanh variant=third_layer",
                   "_files"]


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_registers_lstmlab_only_and_completes_its_words(shell_env, tmp_path):
    (tmp_path / "prices.csv").write_text("Date,Close\n")
    script = f"""cd {shlex.quote(str(tmp_path))}
lstmlab completion fish | source
complete | string match '*__lstmlab_complete*'
complete -C 'lstmlab train var'; complete -C 'lstmlab train variant=t'; complete -C 'lstmlab forecast x --data pri'
"""
    out = in_shell("fish", script, {**shell_env, "HOME": str(tmp_path)}).splitlines()
    assert out == ["complete --no-files lstmlab -a '(__lstmlab_complete)'",
                   "variant=", "variant=tanh", "variant=third_layer", "prices.csv"]
    assert in_shell("fish", "lstmlab train -sc install=fish | source; lstmlab train -sc uninstall=fish | source; "
                    "complete | string match '*lstmlab*'; true", shell_env) == ""


def test_the_private_hydra_and_argparse_apis_completion_relies_on():
    """Fails when an upgrade of Hydra (or argparse) moves what hydra_compat reaches into."""
    assert hydra_arguments(["--info"]).info == "all"
    assert hydra_arguments(["-sc", "install=bash"]).shell_completion is True
    assert hydra_arguments(["-m", "a=1"]).overrides == ["a=1"]
    if VERSION_BASE:  # Hydra 1.3 (main's parse_args) reads overrides on one side of the flags only...
        with pytest.raises(SystemExit):
            hydra_arguments(["a=1", "-m", "b=2"])
    else:  # ...1.4 (parse_intermixed_args) on both
        assert hydra_arguments(["a=1", "-m", "b=2"]).overrides == ["a=1", "b=2"]
    options = {option.names: option for option in parser_options(hydra_parser())}
    assert options[("--multirun", "-m")].takes_value is False
    assert options[("--cfg", "-c")].choices == ("job", "hydra", "all")
    assert positional_choices(parsers.completion()) == ("bash", "zsh", "fish")
    assert hydra_completions(config_dir(), "train", "variant=") == [f"variant={v}" for v in VARIANTS]
    assert hydra_completions(config_dir(), "train", "trainer.epochs=") == ["trainer.epochs=50"]
    assert hydra_completions(config_dir(), "train", "-m evaluation=w") == ["evaluation=walk_forward"]
    # a list as a mapping of its indexes, which no override can use: completion_query gives it whole
    assert hydra_completions(config_dir(), "train", "model.units=") == ["model.units=0=", "model.units=1="]
    assert "model.units." in hydra_completions(config_dir(), "train", "model.")
    assert list(composed(config_dir(), "train", ["variant=tanh", "trainer.seed=1,2"]).model.units) == [50, 50]


@pytest.mark.parametrize("line, expected", [
    ("lstmlab train model.unit", ["model.units="]),
    ("lstmlab train model.units=", ["model.units=["]),
    ("lstmlab train model.units=[", ["model.units=[50,50]"]),
    ("lstmlab train -m trainer.seed=1,2 variant=unequal_units model.units=[5", ["model.units=[50,25]"]),
    ("lstmlab train model.units=[6", []),
    ("lstmlab train data=csv data.features=", ["data.features=["]),
    ("lstmlab train trainer.early_stopping.", ["trainer.early_stopping.enabled=", "trainer.early_stopping.min_delta=",
                                               "trainer.early_stopping.patience=",
                                               "trainer.early_stopping.restore_best_weights="]),
    ("lstmlab --v", ["--version", "--verbose"]),
])
def test_a_list_key_completes_as_the_list_an_override_gives(line, expected):
    assert candidates(line) == expected


def test_compare_metric_values_are_its_parsers_choices(shell_env):
    assert bash_completes("lstmlab compare --metric ", shell_env) == list(FINAL_METRICS)
