"""A campaign between an MLflow store and its records in the repository (records.evidence_files):
`save` writes an experiment's runs as text, `load` makes them runs again in any store.

A run keeps its identity across stores: MLflow gives a loaded run an id of its own, so the run
carries its original id in the tag `lstmlab.evidence.id`, and `save` writes that id back. Saving
again after a resume adds the new runs and leaves every old line byte-identical.

What only held on the machine that trained is left out: the user, the host and process of the
run (tracking.orphans), the script's path, git's remote (a local path in a clone), the store's
URI (`tracking.uri`, a param and in config.yaml; not configuring: skip_finished and compare
ignore it), the artifact location. Everything else the run recorded stays, so a loaded run is
reused by `tracking.skip_finished=true` and compared like the original.

`load` checks the whole folder before it writes anything; a store that fails midway has the
runs this load created deleted again, so no half campaign is left.
"""

from __future__ import annotations

import errno
import os
import socket
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, Run, ViewType
from mlflow.exceptions import MlflowException

from lstmlab import interrupts
from lstmlab.errors import LstmlabError, first_line
from lstmlab.names import EVIDENCE_ID_TAG, REPORT_TAG
from lstmlab.records.evidence_files import ARTIFACTS, STATUSES, Campaign, Records, RunRecord, Written, read_campaign, write
from lstmlab.records.store import MIN_PREFIX
from lstmlab.secrets import mask
from lstmlab.tracking import faults
from lstmlab.tracking.orphans import CLOSED, HOST, PID, START

PARENT = "mlflow.parentRunId"
CONTEXT = "mlflow.data.context"  # a dataset input's tag: what the data were for ("training")
MACHINE_TAGS = frozenset({
    "mlflow.user", "mlflow.source.name", "mlflow.source.git.repoURL", "mlflow.gitRepoURL",
    HOST, PID, START, CLOSED,  # CLOSED names the host whose process had gone
    "mlflow.runName",  # the run's name, kept as `name`
    "mlflow.log-model.history",  # the model, which the records leave out
    EVIDENCE_ID_TAG,  # it is the record's `id` (the store gives a loaded run an id of its own)
})
MACHINE_PARAMS = frozenset({"tracking.uri"})
PAGE = 1000


@dataclass(frozen=True)
class Saved:
    experiment: str
    runs: int
    statuses: dict[str, int]
    written: Written
    machine_paths: list[str]  # "run <id> param data.path" and the like: values that name this machine


def save(folder: Path, experiment: str | None, default_experiment: str) -> Saved:
    """The runs of `experiment` (default: the campaign's, else `default_experiment`) in the
    current store, written to `folder` (records.evidence_files.write). Every run that has ended
    (FINISHED, FAILED, KILLED); never a RUNNING one, nor compare's report runs."""
    campaign = read_campaign(folder) if folder.is_dir() else None
    name = experiment or (campaign.experiment if campaign else default_experiment)
    client = MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is None:
        names = ", ".join(sorted(e.name for e in client.search_experiments())) or "none"
        raise LstmlabError(f"no experiment named {name!r} in {mask(client.tracking_uri)} (experiments there: {names}); "
                           "name one with --experiment NAME")
    runs = [run for run in _all_runs(client, found.experiment_id)
            if run.info.status in STATUSES and run.data.tags.get(REPORT_TAG) != "true"]
    if not runs:
        raise LstmlabError(f"experiment {name!r} in {mask(client.tracking_uri)} has no finished, failed or killed runs to save")
    ids = {run.info.run_id: run.data.tags.get(EVIDENCE_ID_TAG, run.info.run_id) for run in runs}
    twice = sorted(record_id for record_id, n in Counter(ids.values()).items() if n > 1)
    if twice:  # a loaded run beside its original, in one experiment: one record, two runs
        raise LstmlabError(f"runs {', '.join(k for k, v in ids.items() if v == twice[0])} of experiment {name!r} are "
                           f"both run {twice[0]} of the records (tag {EVIDENCE_ID_TAG}); delete one")
    records, artifacts = [], {}
    with tempfile.TemporaryDirectory(prefix="lstmlab-evidence-") as scratch:
        for run in runs:
            files = _artifacts(client, run, Path(scratch) / run.info.run_id)
            record = _record(client, run, ids, tuple(files))
            records.append(record)
            artifacts[record.id] = files
    try:
        written = write(folder, None if campaign else Campaign(name=folder.resolve().name, experiment=name), records,
                        artifacts)
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise  # the command line says a full disk in its own words
        raise LstmlabError(f"cannot write the records to {folder}: {error.strerror or first_line(error)}"
                           f"{f' ({error.filename})' if error.filename else ''}; the records there are as they were") from None
    statuses = {status: sum(r.status == status for r in records) for status in STATUSES}
    return Saved(name, len(records), {s: n for s, n in statuses.items() if n}, written, _machine_paths(records, artifacts))


def _all_runs(client: MlflowClient, experiment_id: str) -> list[Run]:
    runs: list[Run] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], run_view_type=ViewType.ACTIVE_ONLY, max_results=PAGE,
                                  order_by=["attributes.start_time ASC"], page_token=token)
        runs += page
        token = page.token
        if not token:
            return runs


def _record(client: MlflowClient, run: Run, ids: dict[str, str], artifacts: tuple[str, ...]) -> RunRecord:
    info, data = run.info, run.data
    tags = {key: value for key, value in data.tags.items() if key not in MACHINE_TAGS}
    if PARENT in tags:  # a parent loaded from records has another id here: its own one again
        tags[PARENT] = ids.get(tags[PARENT], tags[PARENT])
    metrics = {}
    for key in data.metrics:
        history = sorted(client.get_metric_history(info.run_id, key), key=lambda m: (m.step, m.timestamp))
        metrics[key] = [(int(m.step), float(m.value)) for m in history]
    inputs = [_input(item) for item in (run.inputs.dataset_inputs if run.inputs else [])]
    return RunRecord(
        id=ids[info.run_id], name=info.run_name or "", status=info.status, start_time=int(info.start_time),
        end_time=int(info.end_time or info.start_time),  # a run closed without a time: its start
        params={key: value for key, value in data.params.items() if key not in MACHINE_PARAMS},
        tags=tags, metrics=metrics, inputs=inputs, artifacts=artifacts)


def _input(item: DatasetInput) -> dict[str, str]:
    """A dataset input (the UI's Dataset column) as text: the dataset's fields and its context."""
    dataset = item.dataset
    context = {tag.key: tag.value for tag in item.tags}.get(CONTEXT)
    return {"name": dataset.name, "digest": dataset.digest, "source_type": dataset.source_type, "source": dataset.source,
            "schema": dataset.schema or "", "profile": dataset.profile or "", **({"context": context} if context else {})}


def _artifacts(client: MlflowClient, run: Run, scratch: Path) -> dict[str, bytes]:
    """The run's text artifacts (ARTIFACTS) that it has, as bytes; config.yaml without the store's URI."""
    listed = {entry.path for entry in client.list_artifacts(run.info.run_id)}
    files = {}
    for name in ARTIFACTS:
        if name in listed:
            path = client.download_artifacts(run.info.run_id, name, str(scratch))
            files[name] = Path(path).read_bytes()
    if "config.yaml" in files:
        files["config.yaml"] = portable_config(files["config.yaml"].decode("utf-8")).encode("utf-8")
    return files


def portable_config(text: str) -> str:
    """A config.yaml with `tracking.uri` null: the store it was trained in is a machine's (a rerun
    records into the current store anyway, records.rerun)."""
    lines, inside = text.splitlines(keepends=True), False
    for number, line in enumerate(lines):
        if line and not line[0].isspace():
            inside = line.rstrip() == "tracking:"
        elif inside and line.startswith("  uri:"):
            lines[number] = "  uri: null\n"
    return "".join(lines)


def _machine_paths(records: list[RunRecord], artifacts: dict[str, dict[str, bytes]]) -> list[str]:
    """Values that name this machine's home or working folder, or its host (e.g. a CSV's
    data.path): written as they are (they configure the run), but said, so that nobody commits
    them unawares."""
    words = {str(Path.home()), os.getcwd(), socket.gethostname()} - {"", "/"}
    found = []
    for record in records:
        values = {**{f"param {k}": v for k, v in record.params.items()}, **{f"tag {k}": v for k, v in record.tags.items()},
                  **{f"input {i}": v for i, item in enumerate(record.inputs) for v in item.values()},
                  **{name: data.decode("utf-8", "replace") for name, data in artifacts[record.id].items()}}
        found += [f"run {record.id} {where}" for where, value in values.items() if any(w in value for w in words)]
    return found


@dataclass(frozen=True)
class Loaded:
    experiment: str
    added: int
    present: int  # already in the store (loaded before, or trained there)
    ids: dict[str, str]  # record id -> the run's id in this store

    def run_id(self, given: str | None) -> str | None:
        """The store's id of the run a record id (or a unique prefix of 8+) names; else `given` as it is."""
        if not given or len(given) < MIN_PREFIX:
            return given
        matches = [run_id for record_id, run_id in self.ids.items() if record_id.startswith(given)]
        return matches[0] if len(matches) == 1 else given


def load(records: Records, experiment: str | None = None, artifact_location: str | None = None) -> Loaded:
    """Every run of `records` not yet in `experiment` (default: the campaign's) of the current
    store, with its times, status, params, tags, metric histories, inputs and artifacts."""
    name = experiment or records.campaign.experiment
    client = MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is not None and found.lifecycle_stage != "active":
        raise LstmlabError(f"experiment {name!r} is deleted in {mask(client.tracking_uri)}: restore it "
                           "(mlflow experiments restore) or load into another with --experiment NAME")
    experiment_id = found.experiment_id if found else client.create_experiment(name, artifact_location=artifact_location)
    ids = _loaded(client, experiment_id)
    missing = [run for run in records.runs if run.id not in ids]
    created: list[str] = []
    try:
        for record in missing:
            interrupts.check()  # Ctrl-C between runs: the ones added are deleted below
            ids[record.id] = _create(client, experiment_id, record, records, ids, created)
    except BaseException as error:  # a store that fails, Ctrl-C: no half campaign stays
        for run_id in created:
            try:
                client.delete_run(run_id)
            except (MlflowException, OSError):  # the store failing: the error that stopped the load is said
                pass
        if not isinstance(error, (MlflowException, OSError)):
            raise
        after = f" while loading run {record.id}; the {len(created)} run(s) this load added are deleted again"
        fault = faults.find(error, client.tracking_uri)
        raise LstmlabError(fault.line(after) if fault else f"{first_line(error)}{after}") from error
    return Loaded(name, added=len(missing), present=len(records.runs) - len(missing), ids=ids)


def _loaded(client: MlflowClient, experiment_id: str) -> dict[str, str]:
    """Record id → run id of the runs already in the experiment. A run a load left RUNNING (a
    process killed midway) is deleted: it is loaded again whole."""
    ids = {}
    for run in _all_runs(client, experiment_id):
        record_id = run.data.tags.get(EVIDENCE_ID_TAG)
        if record_id and run.info.status == "RUNNING":
            client.delete_run(run.info.run_id)
            continue
        ids[record_id or run.info.run_id] = run.info.run_id
    return ids


def _create(client: MlflowClient, experiment_id: str, record: RunRecord, records: Records, ids: dict[str, str],
            created: list[str]) -> str:
    """One run made from its record; its id (in `created` as soon as it exists)."""
    tags = {**record.tags, EVIDENCE_ID_TAG: record.id}
    if PARENT in tags:  # the parent's id in this store, when it is here (it started first)
        tags[PARENT] = ids.get(tags[PARENT], tags[PARENT])
    run_id = client.create_run(experiment_id, start_time=record.start_time, tags=tags,
                               run_name=record.name).info.run_id
    created.append(run_id)
    # Timestamps are not recorded: one ms apart in logged order keeps MLflow's "latest" the last point.
    metrics = [Metric(key, value, record.start_time + n, step)
               for key, history in record.metrics.items() for n, (step, value) in enumerate(history)]
    client.log_batch(run_id, metrics=metrics, params=[Param(k, v) for k, v in record.params.items()])
    if record.inputs:
        client.log_inputs(run_id, datasets=[_dataset_input(i) for i in record.inputs])
    for name in record.artifacts:
        client.log_artifact(run_id, str(records.artifact(record, name)))
    client.set_terminated(run_id, record.status, end_time=record.end_time)
    return run_id


def _dataset_input(item: Mapping[str, str]) -> DatasetInput:
    dataset = Dataset(name=item.get("name", ""), digest=item.get("digest", ""), source_type=item.get("source_type", ""),
                      source=item.get("source", ""), schema=item.get("schema") or None, profile=item.get("profile") or None)
    context = item.get("context")
    return DatasetInput(dataset, tags=[InputTag(CONTEXT, context)] if context else [])
