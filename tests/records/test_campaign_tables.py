"""Each committed campaign's table on docs/evidence.md is what its records in evidence/ give: the
page cannot drift from the runs it reports, and a fresh clone recomputes it (in under a minute)."""

from __future__ import annotations

import pytest
from evidence_tables import REPOSITORY, assert_docs_table

pytestmark = pytest.mark.slow


def test_the_price_level_campaign_table_is_what_its_records_give():
    output = assert_docs_table(REPOSITORY / "evidence" / "prices-50-epochs", REPOSITORY / "docs" / "evidence.md",
                               heading="Campaign: price levels, every variant, 50 epochs, walk-forward")
    page = (REPOSITORY / "docs" / "evidence.md").read_text(encoding="utf-8")
    spa = next(line for line in output.splitlines() if line.startswith("SPA"))
    assert spa.split(": p = ")[1].split(" ")[0] in page  # the SPA p-value printed beside the table
