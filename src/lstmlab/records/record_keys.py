"""The keys a recorded config.yaml may hold: those lstmlab reads, and plain labels beside them.

A rerun is the run its record describes only if every key in the record is one this lstmlab
reads. A key it does not read (a newer version's option, an edit, a typo) would be silently
ignored while the new run says it reran the old one; one whose name MLflow takes for no param
stopped the rerun after its run had started. So a record is refused when, inside the sections
lstmlab reads (data, model, trainer, tracking, evaluation), it has a key pipeline.checks does
not know. The optimizer's, the loss's and the scaler's keys are their classes' arguments, which
the classes themselves refuse before a run starts. Outside the sections, plain values are labels
(`+aa=a`, the A/A test's key that changes nothing: docs/evidence.md); anything else is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lstmlab.pipeline import checks

# Sections whose keys are a class's arguments: the class refuses an unknown one (no run started).
ARGUMENTS = ("optimizer", "loss", "data.scaler")


def known_keys() -> frozenset[str]:
    """Every dotted key of a config that pipeline.checks validates (and the pipeline reads)."""
    tables = {
        "data": {**checks.DATA, **checks.DATA_OPTIONAL},
        "model": checks.MODEL,
        "trainer": checks.TRAINER,
        "tracking": {**checks.TRACKING, **checks.TRACKING_OPTIONAL},
        "evaluation": {**checks.EVALUATION, **checks.WALK_FORWARD},
    }
    return frozenset(f"{section}.{key}" for section, rules in tables.items() for key in rules)


def unknown_key(config: Mapping[Any, object]) -> str | None:
    """The first key of a recorded config (as a plain mapping) that lstmlab does not read, or None."""
    known = known_keys()
    sections = {key.split(".", 1)[0] for key in known} | {key.split(".", 1)[0] for key in ARGUMENTS}
    for key, value in config.items():
        if key not in sections:
            if isinstance(value, (Mapping, list)):  # not a label: a section lstmlab does not have
                return str(key)
            continue
        found = _unknown_below(value, str(key), known)
        if found:
            return found
    return None


def _unknown_below(node: object, path: str, known: frozenset[str]) -> str | None:
    if path in ARGUMENTS:
        return None
    if not isinstance(node, Mapping):
        return None if path in known else path
    if path in known:  # a value that is a mapping where a plain one belongs: pipeline.checks says so
        return None
    for key, value in node.items():
        found = _unknown_below(value, f"{path}.{key}", known)
        if found:
            return found
    return None
