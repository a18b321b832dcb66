"""A campaign's table on a docs page, checked against the table its committed records give.

`lstmlab evidence table DIR` recomputes the table from evidence/<campaign>/ alone (a store and a
predictions cache of its own); the page's table must equal it to the precision the page prints:
every number on the page is the recomputed one rounded to the page's digits, every word the same
(bold, spacing and the minus sign aside). A test per committed campaign:

    from evidence_tables import REPOSITORY, assert_docs_table

    @pytest.mark.slow
    def test_the_price_level_campaign_table_is_what_its_records_give():
        assert_docs_table(REPOSITORY / "evidence" / "prices-50", REPOSITORY / "docs" / "evidence.md",
                          heading="Campaign: every variant, 5 seeds, 50 epochs, walk-forward, price levels")
"""

from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path

from conftest import LSTMLAB

REPOSITORY = Path(__file__).resolve().parents[2]
NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?", re.IGNORECASE)


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table in `text`: its rows (the header first, the |---| line left out) as cells."""
    tables: list[list[list[str]]] = []
    rows: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        stripped = line.strip()
        if stripped.startswith("|") and stripped.endswith("|"):
            cells = [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", stripped[1:-1])]
            if not all(re.fullmatch(r":?-{3,}:?", cell) for cell in cells):
                rows.append(cells)
        elif rows:
            tables.append(rows)
            rows = []
    return tables


def table_under(page: str, heading: str) -> list[list[str]]:
    """The first table after the heading (a `#` line) that contains `heading`."""
    lines = page.splitlines()
    start = next((n for n, line in enumerate(lines) if line.startswith("#") and heading in line), None)
    assert start is not None, f"no heading with {heading!r}"
    tables = markdown_tables("\n".join(lines[start + 1:]))
    assert tables, f"no table under {heading!r}"
    return tables[0]


def recomputed(folder: Path) -> str:
    """What `lstmlab evidence table FOLDER` prints, run as a user on a fresh clone would (a new process)."""
    done = subprocess.run([*LSTMLAB, "evidence", "table", str(folder)],
                          capture_output=True, text=True, timeout=600, cwd=REPOSITORY)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _normal(cell: str) -> str:
    return " ".join(cell.replace("**", "").replace("\u2212", "-").replace(" %", "%").split())


def _unit(token: str) -> float:
    """The value of one unit in the last digit `token` prints: 21.569 → 0.001, 3.7e-07 → 1e-08, 1 → 1."""
    mantissa, _, exponent = token.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def same_cell(page: str, computed: str) -> bool:
    """Equal words; each number of the page the computed one rounded to the page's digits."""
    page, computed = _normal(page), _normal(computed)
    if NUMBER.sub("#", page) != NUMBER.sub("#", computed):
        return False
    for shown, value in zip(NUMBER.findall(page), NUMBER.findall(computed)):
        if not math.isclose(float(value), float(shown), abs_tol=_unit(shown) / 2 * (1 + 1e-9)):
            return False
    return True


def assert_same_table(page_rows: list[list[str]], computed_rows: list[list[str]]) -> None:
    assert [_normal(c) for c in page_rows[0]] == [_normal(c) for c in computed_rows[0]], \
        f"columns differ:\n  page:     {page_rows[0]}\n  computed: {computed_rows[0]}"
    assert len(page_rows) == len(computed_rows), \
        f"the page has {len(page_rows) - 1} rows, the records give {len(computed_rows) - 1}"
    for number, (shown, made) in enumerate(zip(page_rows[1:], computed_rows[1:]), 1):
        for header, a, b in zip(page_rows[0], shown, made):
            assert same_cell(a, b), f"row {number} ({shown[0]}), column {header!r}: the page says {a!r}, the records give {b!r}"


def assert_docs_table(folder: Path, page: Path, heading: str) -> str:
    """The table under `heading` on `page` is the one `lstmlab evidence table FOLDER` prints;
    returns that output (its lines under the table: naive forecast, MCS, SPA, notes)."""
    output = recomputed(folder)
    tables = markdown_tables(output)
    assert len(tables) == 1, output
    assert_same_table(table_under(page.read_text(encoding="utf-8"), heading), tables[0])
    return output
