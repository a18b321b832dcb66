"""`lstmlab train` as a user runs it: real processes, Hydra's grammar, one-line errors."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from conftest import LSTMLAB, TINY
from lstmlab.commands.hydra_compat import VERSION_BASE
from lstmlab.pipeline.data import synthetic_prices


def lstmlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*LSTMLAB, *args], capture_output=True, text=True, timeout=600)


def runs(experiment: str = "lstmlab"):
    found = mlflow.get_experiment_by_name(experiment)
    return MlflowClient().search_runs([found.experiment_id]) if found else []


@pytest.mark.slow
def test_every_variant_in_one_multirun():
    result = lstmlab("train", "-m", "variant=glob(*)", *TINY, "trainer.epochs=1")
    assert result.returncode == 0, result.stderr[-2000:]
    finished = runs()
    assert len(finished) == 11
    assert all(run.info.status == "FINISHED" for run in finished)
    names = {run.info.run_name for run in finished}
    assert names == {"baseline", "bidirectional", "third_layer", "unequal_units", "tanh",
                     "leaky_relu", "sgd", "rmsprop", "adagrad", "mae", "huber"}
    assert [r.data.tags["baseline"] for r in finished].count("true") == 1
    assert len(list(Path("experiments/sweeps").glob("*/*/.hydra/config.yaml"))) == 11


@pytest.mark.slow
def test_train_on_a_csv_with_overrides(tmp_path):
    frame = synthetic_prices(rows=240, seed=5).reset_index()
    frame.columns = ["DATE", "close", "Volume"]
    frame.to_csv(tmp_path / "prices.csv", index=False)
    result = lstmlab("train", "data=csv", "data.path=prices.csv", "data.lookback=8",
                     "trainer.epochs=1", "trainer.verbose=0", "tracking.log_model=false",
                     "tracking.experiment=csv-demo", "model.units=[8,8]")
    assert result.returncode == 0, result.stderr[-2000:]
    (run,) = runs("csv-demo")
    assert run.info.status == "FINISHED" and run.data.params["data.path"] == "prices.csv"
    # model overrides make the run something other than the baseline
    assert run.info.run_name == "custom" and run.data.tags["baseline"] == "false"
    assert Path("experiments/runs").is_dir()


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, message",
    [
        (["variant=nope"], "Could not find 'variant/nope'; available: adagrad, baseline,"),
        (["data=csv", "data.path=missing.csv"], "data file not found: missing.csv"),
        (["data=synthetic", "model.dropout=1.5"], "model.dropout=1.5 must be in [0, 1)"),
        (["data=synthetic", "data.lookback=5000"], "too few for windows of data.lookback=5000"),
        (["data=synthetic", "trainer.epochs=0"], "trainer.epochs=0 must be a whole number"),
        (["nosuchkey=1"], "Could not override 'nosuchkey'"),
    ],
)
def test_user_errors_are_one_line_and_leave_no_run(args, message):
    result = lstmlab("train", *args)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("lstmlab")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert runs() == []


def test_debug_shows_the_traceback():
    result = lstmlab("train", "data=csv", "data.path=missing.csv", "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_help_lists_the_commands_and_the_config_groups():
    assert "compare" in lstmlab("--help").stdout
    hydra_help = lstmlab("train", "--help").stdout
    assert "variant: adagrad, baseline" in hydra_help
    job = lstmlab("train", "variant=third_layer", "--cfg", "job").stdout
    assert "- 50\n  - 50\n  - 50" in job


@pytest.mark.slow
def test_ctrl_c_ends_the_run_and_says_so_in_one_line():
    import signal
    import time

    process = subprocess.Popen(
        [*LSTMLAB, "train", *TINY, "trainer.epochs=500"], stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not [r for r in runs() if r.info.status == "RUNNING"]:  # training has started
            assert process.poll() is None and time.monotonic() < deadline, "training never started"
            time.sleep(0.5)
        (run,) = [r for r in runs() if r.info.status == "RUNNING"]
        while not MlflowClient().get_metric_history(run.info.run_id, "val_rmse"):  # mid-training
            assert process.poll() is None and time.monotonic() < deadline, "no epoch finished"
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == "lstmlab train: interrupted"
    assert "Traceback" not in stderr
    (run,) = runs()
    assert run.info.status == "KILLED"


# Hydra refuses the flags with a ValueError (a traceback); lstmlab in one line, before Hydra starts.
NOWHERE = [  # each a process of about a second, but the multiruns (Hydra composes and starts them)
    pytest.param(["-m", "--cfg", "job"], "-m cannot go with --cfg: it shows the config of one run and runs "
                 "nothing; drop -m", id="m-cfg"),
    pytest.param(["-m", "-c", "hydra"], "-m cannot go with --cfg", id="m-c"),
    pytest.param(["--multirun", "--info"], "-m cannot go with --info: it shows the config of one run", id="m-info"),
    pytest.param(["-m", "-i", "plugins"], "-m cannot go with --info", id="m-i"),
    pytest.param(["--cfg", "job", "--info"], "-c/--cfg and -i/--info cannot go together: give one of", id="cfg-info"),
    pytest.param(["--resolve"], "--resolve goes with --cfg only", id="resolve"),
    # Hydra launches 0 jobs and exits 0: a multirun of no job is refused where its jobs are counted
    pytest.param(["-m", "variant=glob(nomatch*)"], "the multirun has no job to run: variant=glob(nomatch*) gives "
                 "no value (glob(...) matches a config group's options", marks=pytest.mark.slow, id="empty-glob"),
    pytest.param(["-m", "trainer.seed=range(3,1)", "variant=glob(*)", "hydra/launcher=parallel"],
                 "the multirun has no job to run: trainer.seed=range(3,1) gives no value; nothing was run",
                 marks=pytest.mark.slow, id="empty-range"),
]


@pytest.mark.parametrize("args, message", NOWHERE)
def test_a_command_line_that_leads_nowhere_is_one_line_and_runs_nothing(args, message):
    result = lstmlab("train", *args)
    assert result.returncode == 2 and result.stdout == "", result.stderr[-3000:]
    (line,) = result.stderr.splitlines()
    assert line.startswith("lstmlab train: error: ") and message in line, line
    assert runs() == [] and not Path("experiments").exists()


@pytest.mark.slow
def test_hydra_job_chdir_keeps_the_projects_store_and_data_paths(tmp_path):
    # Hydra moves each job into its output folder; MLflow's default store (mlflow.db, mlruns/),
    # data.path and the multirun's folder stay where the command started, as the links say
    frame = synthetic_prices(rows=240, seed=5).reset_index()
    frame.columns = ["Date", "Close", "Volume"]
    frame.to_csv("prices.csv", index=False)
    settings = ["hydra.job.chdir=true", "data=csv", "data.path=prices.csv",
                *(o for o in TINY if not o.startswith(("data=", "data.rows=")))]
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}  # MLflow's default
    result = subprocess.run([*LSTMLAB, "train", "-m", *settings, "trainer.seed=7"], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [p.relative_to(tmp_path) for p in tmp_path.rglob("mlflow.db")] == [Path("mlflow.db")]
    assert not list(Path("experiments").rglob("mlruns"))
    (run,) = runs()  # the project's store: the test's folder, where the command started
    assert run.info.status == "FINISHED" and run.data.params["data.path"] == "prices.csv"
    assert Path(run.info.artifact_uri.removeprefix("file://")).is_relative_to(tmp_path / "mlruns")
    assert re.search(rf"^job 0: \S+ {run.info.run_id[:8]} ", result.stdout, re.MULTILINE)
    assert "job 1/1 done" in result.stdout and "Multirun: 1 run recorded" in result.stdout  # in its folder


PLAIN_HYDRA_APP = """import hydra


@hydra.main(config_path=None, config_name=None, **{version_base})
def main(cfg):
    pass


main()
"""


def test_info_prints_each_line_once_as_a_plain_hydra_app_does(tmp_path):
    import hydra

    (tmp_path / "app.py").write_text(PLAIN_HYDRA_APP.format(version_base=VERSION_BASE))
    plain = subprocess.run([sys.executable, "app.py", "--info", "plugins"], capture_output=True, text=True,
                           cwd=tmp_path, timeout=120)
    ours = lstmlab("train", "--info", "plugins")
    assert ours.returncode == plain.returncode == 0, ours.stderr
    plugins = ours.stdout.split("Profiling information")[0]  # the profile's times and order vary
    assert "Installed Hydra Plugins" in plugins and plugins == plain.stdout.split("Profiling information")[0]
    everything = lstmlab("train", "--info")
    lines = everything.stdout.splitlines()
    for header in (f"Hydra {hydra.__version__}", "Installed Hydra Plugins", "Config search path",
                   "Defaults Tree", "Defaults List", "Config"):
        assert lines.count(header) == 1, header
    assert "Config search path" in lines and everything.stderr == ""


@pytest.mark.slow
def test_an_unreadable_override_says_the_quoted_form_which_trains(tmp_path):
    folder = tmp_path / "dätä (1)"
    folder.mkdir()
    frame = synthetic_prices(rows=240, seed=5).reset_index()
    frame.columns = ["Date", "Close", "Volume"]
    frame.to_csv(folder / "prices.csv", index=False)
    path = f"{folder}/prices.csv"
    refused = lstmlab("train", "data=csv", f"data.path={path}")
    quoted = shlex.quote(f'data.path="{path}"')
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr == (f"lstmlab train: error: Hydra's grammar cannot read the override data.path={path} "
                              f"(token recognition error at: 'ä'); quote the value (and the whole for the shell): "
                              f"{quoted}\n")
    assert runs() == [] and not Path("experiments").exists()
    # the line as the user copies it, through a real shell
    settings = " ".join(o for o in TINY if not o.startswith(("data=", "data.rows=")))
    shown = refused.stderr.rsplit(": ", 1)[1].strip()
    done = subprocess.run(["bash", "-c", f"{shlex.join(LSTMLAB)} train data=csv {shown} {settings}"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    (run,) = runs()
    assert run.info.status == "FINISHED" and run.data.params["data.path"] == path


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.path=/data/a&b.csv,/data/ö.csv",  # a sweep: each value quoted alone
         "Hydra's grammar cannot read the override data.path=/data/a&b.csv,/data/ö.csv (token recognition error "
         "at: '&'); quote the value (and the whole for the shell): 'data.path=\"/data/a&b.csv\",\"/data/ö.csv\"'"),
        ("model.units=[64,32",  # quoting would make it a string: the grammar page instead
         "Hydra's grammar cannot read the override model.units=[64,32 (no viable alternative at input '[64,32'); "
         "see https://hydra.cc/docs/advanced/override_grammar/basic/"),
    ],
)
def test_an_override_that_quoting_does_or_does_not_mend(override, message):
    result = lstmlab("train", "-m", override)
    assert result.returncode == 2 and result.stderr == f"lstmlab train: error: {message}\n"


def test_the_app_is_composed_without_a_warning_from_either_hydra():
    # version_base: "1.3" on Hydra 1.3 (without it: a warning, and 1.1's defaults), none on 1.4
    # (it deprecates the argument); the defaults lstmlab relies on are the same on both
    import warnings

    from hydra import compose, initialize_config_dir

    from lstmlab.paths import config_dir

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with initialize_config_dir(config_dir=config_dir(), **VERSION_BASE):
            cfg = compose("train", return_hydra_config=True)
    assert cfg.hydra.job.chdir is False and cfg.hydra.run.dir.startswith("experiments/runs/")


def test_version_prints_the_installed_version():
    from importlib import metadata

    result = lstmlab("--version")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout == f"lstmlab {metadata.version('lstmlab')}\n"
