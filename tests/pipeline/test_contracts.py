"""docs/contracts.md names every name a run leaves in MLflow, so the page cannot drift from the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from lstmlab import names
from lstmlab.pipeline import claim
from lstmlab.tracking import orphans

PAGE = (Path(__file__).parents[2] / "docs" / "contracts.md").read_text()


def contract_names() -> list[str]:
    """The tags, artifacts, metrics and params names.py (and the modules that tag runs) fix."""
    fixed = [value for key, value in vars(names).items() if key.endswith(("_TAG", "_ARTIFACT")) or key == "MODEL_NAME"]
    return sorted({*fixed, *names.FINAL_METRICS, *names.NOT_CONFIGURING, *names.PARAM_DEFAULTS,
                   *names.EPOCH_METRICS.values(), claim.KEY_TAG, claim.TICKET_TAG,
                   orphans.HOST, orphans.PID, orphans.START, orphans.CLOSED})


@pytest.mark.parametrize("name", contract_names())
def test_the_contracts_page_names_it(name):
    assert f"`{name}`" in PAGE or f"`{name}=" in PAGE, f"docs/contracts.md does not name `{name}`"


def test_the_metrics_section_names_every_final_metric():
    metrics_section = PAGE.split("### Metrics", 1)[1].split("\n### ", 1)[0]
    for metric in names.FINAL_METRICS:
        assert f"`{metric}`" in metrics_section
