"""A campaign's records as plain text in the repository: the folder's format, read back whole and
checked before anything reaches a store, and written so that a crash leaves the old files whole.

Why text and not the MLflow store itself: a SQLite store records absolute artifact paths, the user
and host of each run and the script's path, so it cannot be committed and opened from a clone
elsewhere. These files hold what a run is (params, tags, metric histories, its text artifacts);
`lstmlab evidence load` (records.evidence) makes them runs again in any store.

    <campaign>/campaign.yaml          format, name, experiment, description, train, compare
    <campaign>/runs.jsonl             one run per line, sorted by start time (stable diffs)
    <campaign>/artifacts/<run id>/    its config.yaml, predictions.csv, scaler.json

Every text written passes `secrets.mask`: no password reaches a file, whatever a record held.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from lstmlab.errors import LstmlabError, first_line
from lstmlab.names import CONFIG_ARTIFACT, PREDICTIONS_ARTIFACT, SCALER_ARTIFACT
from lstmlab.secrets import mask, masked

FORMAT = "lstmlab.evidence/1"
CAMPAIGN_FILE = "campaign.yaml"
RUNS_FILE = "runs.jsonl"
ARTIFACTS_DIR = "artifacts"
ARTIFACTS = (CONFIG_ARTIFACT, PREDICTIONS_ARTIFACT, SCALER_ARTIFACT)  # never the model or the plots
STATUSES = ("FINISHED", "FAILED", "KILLED")  # a RUNNING run is not a record yet
RUN_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")  # also a folder name: no separators, no ".."
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}  # JSON has no NaN
KEYS = ("id", "name", "status", "start_time", "end_time", "params", "tags", "metrics", "inputs", "artifacts")


@dataclass(frozen=True)
class Campaign:
    """campaign.yaml: what the campaign is, and the commands that train it and recompute its table."""

    name: str
    experiment: str  # the MLflow experiment `load` creates and `train` continues
    description: str = ""
    train: str = ""  # the command that trains it (with tracking.skip_finished=true it continues it)
    compare: str = ""  # the `lstmlab compare` options its table uses

    def text(self) -> str:
        body = {"format": FORMAT, "name": self.name, "description": self.description,
                "experiment": self.experiment, "train": self.train, "compare": self.compare}
        return ("# A campaign's runs (lstmlab evidence save); `lstmlab evidence load` puts them into a store,\n"
                "# `lstmlab evidence table` recomputes the table from them with the compare options below.\n"
                + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=1000))


@dataclass(frozen=True)
class RunRecord:
    """One run as runs.jsonl holds it. `id` is the run's id in the store it was first trained in."""

    id: str
    name: str
    status: str
    start_time: int  # ms since the epoch, as MLflow keeps them
    end_time: int
    params: Mapping[str, str]
    tags: Mapping[str, str]
    metrics: Mapping[str, list[tuple[int, float]]]  # full histories: (step, value), in logged order
    inputs: Sequence[Mapping[str, str]] = ()  # MLflow dataset inputs
    artifacts: tuple[str, ...] = ()  # the files under artifacts/<id>/

    def line(self) -> str:
        """The JSON line: keys in a fixed order, maps sorted, so the same run is the same bytes."""
        body = {
            "id": self.id, "name": self.name, "status": self.status,
            "start_time": self.start_time, "end_time": self.end_time,
            "params": dict(sorted(self.params.items())), "tags": dict(sorted(self.tags.items())),
            "metrics": {key: [[step, _number(value)] for step, value in history]
                        for key, history in sorted(self.metrics.items())},
            "inputs": [dict(sorted(i.items())) for i in self.inputs],
            "artifacts": sorted(self.artifacts),
        }
        # each text masked on its own: in a compact line a mask's pattern could run from one value into the next
        return json.dumps(masked(body), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _number(value: float) -> float | str:
    return value if math.isfinite(value) else ("NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity")


@dataclass(frozen=True)
class Records:
    """A campaign folder read back whole and checked."""

    folder: Path
    campaign: Campaign
    runs: list[RunRecord]

    def artifact(self, run: RunRecord, name: str) -> Path:
        return self.folder / ARTIFACTS_DIR / run.id / name


def read(folder: Path) -> Records:
    """The campaign in `folder`, every line and artifact checked; one line naming the first
    thing missing or wrong (LstmlabError) otherwise. Nothing is written."""
    if not folder.is_dir():
        raise LstmlabError(f"no campaign folder {folder}" if not folder.exists() else f"{folder} is not a folder")
    campaign = read_campaign(folder)
    if campaign is None:
        raise LstmlabError(f"{folder} has no {CAMPAIGN_FILE}: not a campaign's records "
                           f"(`lstmlab evidence save {folder}` writes them)")
    path = folder / RUNS_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise LstmlabError(f"{path} is missing: the campaign's runs") from None
    except (OSError, UnicodeDecodeError) as error:
        raise LstmlabError(f"cannot read {path}: {first_line(error)}") from None
    runs: list[RunRecord] = []
    seen: dict[str, int] = {}
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        where = f"{path} line {number}"
        run = parse_line(text, where)
        if run.id in seen:
            raise LstmlabError(f"{where}: run {run.id} again (first on line {seen[run.id]})")
        seen[run.id] = number
        _check_artifacts(folder, run, where)
        runs.append(run)
    if not runs:
        raise LstmlabError(f"{path} holds no runs")
    return Records(folder, campaign, runs)


def read_campaign(folder: Path) -> Campaign | None:
    """campaign.yaml of `folder`, checked; None when there is none."""
    path = folder / CAMPAIGN_FILE
    try:
        body = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise LstmlabError(f"{path} does not parse: {first_line(error)}") from None
    if not isinstance(body, dict):
        raise LstmlabError(f"{path} holds no `key: value` mapping")
    if body.get("format") != FORMAT:
        raise LstmlabError(f"{path}: format {body.get('format')!r}, this lstmlab reads {FORMAT!r}")
    values = {key: body.get(key) for key in ("name", "experiment", "description", "train", "compare")}
    if not isinstance(values["experiment"], str) or not values["experiment"].strip():
        raise LstmlabError(f"{path} names no experiment (experiment: NAME)")
    wrong = [key for key, value in values.items() if value is not None and not isinstance(value, str)]
    if wrong:
        raise LstmlabError(f"{path}: {wrong[0]} must be text, not {type(values[wrong[0]]).__name__}")
    return Campaign(**{key: value or "" for key, value in values.items()})


def parse_line(text: str, where: str) -> RunRecord:
    """One runs.jsonl line as a RunRecord; LstmlabError naming the line and what is wrong."""
    try:
        body = json.loads(text, parse_constant=_Bare)  # a bare NaN is no JSON: refused below
    except json.JSONDecodeError as error:
        raise LstmlabError(f"{where} does not parse as JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(body, dict):
        raise LstmlabError(f"{where} is not a JSON object")
    missing = [key for key in KEYS if key not in body]
    if missing:
        raise LstmlabError(f"{where} lacks {', '.join(missing)}")
    run_id = body["id"]
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        raise LstmlabError(f"{where}: {run_id!r} is not a run id")
    what = f"{where} (run {run_id})"
    if body["status"] not in STATUSES:
        raise LstmlabError(f"{what}: status {body['status']!r}; a record is {', '.join(STATUSES)}")
    for key in ("start_time", "end_time"):
        if not _integer(body[key]):
            raise LstmlabError(f"{what}: {key} {body[key]!r} is not a time in ms")
    if not isinstance(body["name"], str):
        raise LstmlabError(f"{what}: name {body['name']!r} is not text")
    for key in ("params", "tags"):
        if not _texts(body[key]):
            raise LstmlabError(f"{what}: {key} must map names to text")
    if not isinstance(body["inputs"], list) or not all(_texts(i) for i in body["inputs"]):
        raise LstmlabError(f"{what}: inputs must be a list of mappings of text")
    artifacts = body["artifacts"]
    if not isinstance(artifacts, list) or not set(artifacts) <= set(ARTIFACTS):
        raise LstmlabError(f"{what}: artifacts {artifacts!r}; known: {', '.join(ARTIFACTS)}")
    return RunRecord(run_id, body["name"], body["status"], body["start_time"], body["end_time"], body["params"],
                     body["tags"], _metrics(body["metrics"], what), body["inputs"], tuple(artifacts))


class _Bare(str):
    """NaN, Infinity or -Infinity written bare: Python reads them, JSON has no such value."""

    def __repr__(self) -> str:
        return f"{str(self)} (bare; a line writes \"{self}\")"


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _texts(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _metrics(body: object, what: str) -> dict[str, list[tuple[int, float]]]:
    if not isinstance(body, dict):
        raise LstmlabError(f"{what}: metrics must map names to [[step, value], ...]")
    metrics = {}
    for key, history in body.items():
        if not isinstance(history, list) or not history:
            raise LstmlabError(f"{what}: metric {key} has no [[step, value], ...] history")
        points = []
        for point in history:
            if not (isinstance(point, list) and len(point) == 2 and isinstance(point[0], int)
                    and not isinstance(point[0], bool)):
                raise LstmlabError(f"{what}: metric {key} has {point!r}, not [step, value]")
            step, value = point
            if isinstance(value, str) and not isinstance(value, _Bare) and value in NON_FINITE:
                value = NON_FINITE[value]
            elif isinstance(value, bool) or not isinstance(value, (int, float)):
                raise LstmlabError(f"{what}: metric {key} at step {step} is {value!r}, not a number")
            points.append((step, float(value)))
        metrics[key] = points
    return metrics


def _check_artifacts(folder: Path, run: RunRecord, where: str) -> None:
    """Every file the line lists is there; a run with test predictions lists them."""
    if run.status == "FINISHED" and "test_rmse" in run.metrics and PREDICTIONS_ARTIFACT not in run.artifacts:
        raise LstmlabError(f"{where}: run {run.id} has a test_rmse but lists no {PREDICTIONS_ARTIFACT}")
    if not run.artifacts:
        return
    runs_folder = folder / ARTIFACTS_DIR / run.id
    if not runs_folder.is_dir():
        raise LstmlabError(f"{runs_folder}/ is missing: run {run.id} ({where}) has {', '.join(run.artifacts)} there")
    for name in run.artifacts:
        if not (runs_folder / name).is_file():
            raise LstmlabError(f"{runs_folder / name} is missing: run {run.id} ({where}) lists it")


@dataclass(frozen=True)
class Written:
    added: int
    unchanged: int
    changed: int
    removed: int
    size: int  # bytes of the whole folder


def write(folder: Path, campaign: Campaign | None, runs: list[RunRecord],
          artifacts: Mapping[str, Mapping[str, bytes]]) -> Written:
    """`folder` made to hold exactly `runs` (and `campaign`, when it has no campaign.yaml yet).

    Each file goes to a temporary name beside it and is renamed into place, the run index last:
    a crash leaves the old runs.jsonl whole, with every artifact it lists. Files whose bytes are
    unchanged are not touched. Artifacts of runs no longer listed are removed after the index."""
    folder.mkdir(parents=True, exist_ok=True)
    if campaign is not None and not (folder / CAMPAIGN_FILE).exists():
        _replace(folder / CAMPAIGN_FILE, mask(campaign.text()).encode())
    for run in runs:
        for name, data in artifacts.get(run.id, {}).items():
            path = folder / ARTIFACTS_DIR / run.id / name
            path.parent.mkdir(parents=True, exist_ok=True)
            _replace(path, mask(data.decode("utf-8")).encode("utf-8"))
    old = _old_lines(folder / RUNS_FILE)
    lines = {run.id: run.line() for run in sorted(runs, key=lambda r: (r.start_time, r.id))}
    _replace(folder / RUNS_FILE, "".join(line + "\n" for line in lines.values()).encode("utf-8"))
    gone = set(old) - set(lines)
    for run_id in gone:
        shutil.rmtree(folder / ARTIFACTS_DIR / run_id, ignore_errors=True)
    size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    return Written(added=len(set(lines) - set(old)), unchanged=sum(old.get(i) == text for i, text in lines.items()),
                   changed=sum(i in old and old[i] != text for i, text in lines.items()), removed=len(gone), size=size)


def _old_lines(path: Path) -> dict[str, str]:
    """The lines of the runs.jsonl there is, by run id (unreadable lines are replaced anyway)."""
    old = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    for line in text.splitlines():
        try:
            run_id = json.loads(line).get("id")
        except (ValueError, AttributeError):
            continue
        if isinstance(run_id, str):
            old[run_id] = line
    return old


def _replace(path: Path, data: bytes) -> None:
    """`path` holds `data`, written beside it and renamed: never half a file."""
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
