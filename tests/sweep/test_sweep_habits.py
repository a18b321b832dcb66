"""What users of Hydra, Optuna and MLflow try first (issue 19): a config written for Hydra's
official Optuna sweeper runs from a user's config dir, the study names its metric for Optuna's
tools, intermediate values are at the epochs the console numbers, and the sweep's parent run does
not repeat the best trial's `val_rmse` under the trials' name. Real command line, real stores."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from conftest import LSTMLAB, TINY

pytestmark = pytest.mark.slow

STORAGE = "sqlite:///mlruns/optuna.db"  # the default storage, which `storage: null` means

# As hydra-optuna-sweeper documents it (its keys, `_target_` sampler and pruner), with lstmlab's
# sweeper in place of `override /hydra/sweeper: optuna`.
OFFICIAL = """\
# @package _global_
defaults:
  - override /hydra/sweeper: lstmlab_optuna

hydra:
  sweeper:
    direction: minimize
    study_name: official
    storage: null
    n_trials: 2
    n_jobs: 1
    sampler:
      _target_: optuna.samplers.TPESampler
      seed: 123
    pruner:
      _target_: optuna.pruners.MedianPruner
      n_startup_trials: 5
    params:
      model.dropout: interval(0.0, 0.5)
      optimizer: choice(adam, rmsprop)
"""


def lstmlab(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*LSTMLAB, "train", "-m", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def user_config_dir(project_dir: Path) -> Path:
    folder = project_dir / "my_conf"
    (folder / "hparams_search").mkdir(parents=True)
    (folder / "hparams_search" / "official.yaml").write_text(OFFICIAL)
    return folder


def test_an_official_sweeper_config_runs_from_a_user_config_dir(user_config_dir):
    result = lstmlab("--config-dir", str(user_config_dir), "hparams_search=official", *TINY,
                     "model.units=[4]")
    assert result.returncode == 0, result.stderr[-3000:]

    study = optuna.load_study(study_name="official", storage=STORAGE)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    assert study.metric_names == ["val_rmse"]  # what optuna-dashboard labels the objective with
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    epochs = int(next(o for o in TINY if o.startswith("trainer.epochs=")).split("=")[1])
    # reported at the epochs the console numbers ("Epoch 1/2", "Epoch 2/2"), not from 0
    assert all(sorted(t.intermediate_values) == list(range(1, epochs + 1)) for t in trials)

    client = MlflowClient()
    (parent,) = client.search_runs([mlflow.get_experiment_by_name("lstmlab").experiment_id],
                                   "tags.optuna_study = 'official'")
    best = min(trials, key=lambda t: t.value)
    assert parent.data.metrics["best_val_rmse"] == pytest.approx(best.value)
    assert "val_rmse" not in parent.data.metrics  # grouping runs by val_rmse counts each trial once
    results = yaml.safe_load(Path(client.download_artifacts(parent.info.run_id,
                                                            "optimization_results.yaml")).read_text())
    # the `_target_` sampler and pruner became the same objects as `tpe` and `median` with arguments
    assert results["sampler"] == {"name": "tpe", "constant_liar": True, "seed": 123}
    assert results["pruner"] == {"name": "median", "n_startup_trials": 5, "n_warmup_steps": 4}


@pytest.mark.parametrize("override, message", [
    ("hydra.sweeper.direction=maximize",
     "hydra.sweeper.direction=maximize: lstmlab sweeps minimize val_rmse"),
    ("hydra.sweeper.sampler._target_=optuna.samplers.NSGAIISampler",
     "hydra.sweeper.sampler._target_=optuna.samplers.NSGAIISampler is not a sampler lstmlab makes"),
    ("hydra.sweeper.pruner._target_=my.module.Pruner",
     "hydra.sweeper.pruner._target_=my.module.Pruner is not a pruner lstmlab makes"),
])
def test_what_lstmlab_does_not_do_is_one_line(user_config_dir, override, message):
    result = lstmlab("--config-dir", str(user_config_dir), "hparams_search=official", *TINY, override,
                     timeout=120)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr[-3000:]
    assert not Path("mlruns/optuna.db").exists()


def test_the_guide_before_and_after_say_the_same_keys():
    """docs/sweeps.md's "Coming from hydra-optuna-sweeper" shows this file's config as its "after"."""
    guide = (Path(__file__).resolve().parents[2] / "docs" / "sweeps.md").read_text()
    section = guide.split("\n## Coming from hydra-optuna-sweeper\n", 1)[1].split("\n## ", 1)[0]
    after = section.split("After", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(after)["hydra"]["sweeper"].keys() == yaml.safe_load(OFFICIAL)["hydra"]["sweeper"].keys()
    assert textwrap.dedent(after).count("override /hydra/sweeper: lstmlab_optuna") == 1
