"""`lstmlab evidence save|load|table DIR`: a campaign's records in the repository, in and out of a store.

`save` writes the current store's runs of an experiment to DIR; `load` puts DIR's runs into the
current store, where `lstmlab train ... tracking.skip_finished=true` continues the campaign and
`lstmlab compare` reads it; `table` recomputes the campaign's table from DIR alone, in a store
and predictions cache of its own that are thrown away. The work is records.evidence (the store)
and records.evidence_files (the folder); the table's columns are comparison.campaign_table's.
The arguments are commands.parsers.evidence, read before this module and MLflow are imported.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import re
import shlex
import shutil
import tempfile
import time
from pathlib import Path

from lstmlab.commands import parsers
from lstmlab.comparison.campaign_table import render
from lstmlab.comparison.compare import Comparison, compare, default_experiment
from lstmlab.errors import LstmlabError
from lstmlab.plural import count
from lstmlab.records import evidence
from lstmlab.records.evidence_files import CAMPAIGN_FILE, Records, read, read_campaign
from lstmlab.secrets import mask
from lstmlab.tracking.open import open_store, use_current_store


def main(options: argparse.Namespace) -> int:
    folder = Path(options.folder)
    if options.action == "save":
        return save(folder, options.experiment)
    if options.action == "load":
        return load(folder, options.experiment)
    return table(folder)


def save(folder: Path, experiment: str | None) -> int:
    campaign = read_campaign(folder) if folder.is_dir() else None
    use_current_store()
    saved = evidence.save(folder, experiment, default_experiment())
    written = saved.written
    statuses = ", ".join(f"{n} {status.lower()}" for status, n in saved.statuses.items())
    print(f"Saved {count(saved.runs, 'run')} of experiment {saved.experiment!r} ({statuses}) to {folder}/: "
          f"{written.added} new, {written.unchanged} unchanged, {written.changed} changed, {written.removed} removed; "
          f"{_size(written.size)} in all.")
    for where in saved.machine_paths:
        print(f"note: {where} names a folder or the host of this machine; it is in the records as it was recorded")
    if campaign and campaign.experiment != saved.experiment:
        print(f"note: {folder / CAMPAIGN_FILE} names experiment {campaign.experiment!r}: load puts these runs there")
    if campaign is None:
        print(f"Wrote {folder / CAMPAIGN_FILE}: fill in its description, train (the command that trains the campaign) "
              "and compare (the options of its table).")
    return 0


def load(folder: Path, experiment: str | None) -> int:
    records = read(folder)  # every line and file checked before the store is touched
    store = use_current_store()
    loaded = evidence.load(records, experiment)
    print(f"Loaded {folder}/ into experiment {loaded.experiment!r} of {mask(store)}: {count(loaded.added, 'run')} added, "
          f"{loaded.present} already there.")
    campaign = records.campaign
    if campaign.train:
        renamed = "" if loaded.experiment == campaign.experiment else f" tracking.experiment={loaded.experiment}"
        print(f"Continue it: {campaign.train}{renamed}")
    print(f"Compare it: {compare_command(loaded.experiment, campaign.compare)}")
    return 0


def table(folder: Path) -> int:
    started = time.perf_counter()
    records = read(folder)
    comparison = recompute(records)
    campaign = records.campaign
    print(f"Campaign {campaign.name} ({folder}/): {count(len(records.runs), 'run')}; its table as "
          f"`{compare_command(campaign.experiment, campaign.compare)}` computes it:")
    print()
    print(render(comparison))
    print()
    print(f"Recomputed from {folder}/ in {time.perf_counter() - started:.1f} s.")
    return 0


def recompute(records: Records) -> Comparison:
    """compare on the campaign's runs alone, with campaign.yaml's options: loaded into a store
    and a predictions cache in a temporary folder, removed afterwards."""
    text, said = records.campaign.compare, io.StringIO()
    try:
        with contextlib.redirect_stderr(said):  # argparse's usage lines: one line of ours instead
            options = parsers.compare().parse_args(shlex.split(text))
    except (SystemExit, ValueError) as error:  # ValueError: shlex, an unclosed quote
        reason = (said.getvalue().strip().splitlines() or [str(error)])[-1]
        raise LstmlabError(f"{records.folder}/campaign.yaml: compare: {text!r} are not options of lstmlab compare "
                           f"({reason})") from None
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per run: noise
    with tempfile.TemporaryDirectory(prefix="lstmlab-evidence-", dir=_in_memory(records.folder)) as scratch:
        open_store(f"sqlite:///{Path(scratch) / 'mlflow.db'}")
        loaded = evidence.load(records, records.campaign.experiment, artifact_location=(Path(scratch) / "artifacts").as_uri())
        comparison = compare(
            experiment=loaded.experiment,
            baseline=loaded.run_id(options.baseline),  # a run of the records: its id in this store
            sweep=loaded.run_id(options.sweep),
            metric=options.metric,
            filter_string=options.filter_string,
            alpha=options.alpha,
            data=options.data,
            include_all=options.include_all,
            cache=Path(scratch) / "predictions",
        )
    return with_record_ids(comparison, loaded.ids)


def with_record_ids(comparison: Comparison, ids: dict[str, str]) -> Comparison:
    """The comparison with each run named by its id in the records, not in the throwaway store."""
    back = {run_id: record_id for record_id, run_id in ids.items()}
    comparison.runs["run_id"] = comparison.runs["run_id"].map(lambda run_id: back.get(run_id, run_id))
    comparison.baseline_run_id = back.get(comparison.baseline_run_id, comparison.baseline_run_id)
    pattern = re.compile("|".join(map(re.escape, back)))
    comparison.notes = [pattern.sub(lambda match: back[match[0]], note) if back else note for note in comparison.notes]
    if comparison.models is not None:
        comparison.models = dataclasses.replace(comparison.models,
                                                in_mcs={back.get(k, k): v for k, v in comparison.models.in_mcs.items()})
    return comparison


MEMORY = Path("/dev/shm")  # tmpfs on Linux: SQLite's commits there wait on no disk (half the load's time)


def _in_memory(folder: Path) -> str | None:
    """Where the throwaway store goes: in memory when there is room for it (its records × 20), else
    the system's temporary folder (None)."""
    try:
        needed = 20 * sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
        return str(MEMORY) if os.access(MEMORY, os.W_OK) and shutil.disk_usage(MEMORY).free > needed else None
    except OSError:
        return None


def compare_command(experiment: str, options: str) -> str:
    return " ".join(["lstmlab compare --experiment", shlex.quote(experiment), *([options] if options else [])])


def _size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"
