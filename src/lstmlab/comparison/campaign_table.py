"""A campaign's table as docs/evidence.md shows it: compare's seed groups as one Markdown table,
then the naive forecast, model confidence set and SPA lines.

The columns are one list (COLUMNS: a header and how its cell is made from a row of compare's
`groups`), so a change of compare's verdict columns changes one place, and the page's tables can
be recomputed from a campaign's records and checked against the page (`lstmlab evidence table`).
Numbers are printed at the precision the page shows, negative ones with the page's minus sign.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from lstmlab.comparison.compare import Comparison
from lstmlab.comparison.forecasters import describe
from lstmlab.comparison.render import naive_line, strength_line

MINUS = "\u2212"  # the typographic minus the page uses
NONE = "—"


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or bool(pd.isna(value))


def fixed(value: float, decimals: int, sign: bool = False) -> str:
    """`value` with `decimals` decimals (a leading + when `sign`), the page's minus; — when missing."""
    if _missing(value):
        return NONE
    return f"{value:{'+' if sign else ''}.{decimals}f}".replace("-", MINUS)


def p_value(value: float) -> str:
    return NONE if _missing(value) else f"{value:.2g}".replace("-", MINUS)


def change(row: pd.Series) -> str:
    """The test RMSE change vs the baseline group with its interval, in percent: '−0.1 % [−0.9, +0.4]'
    (one decimal below ±100 %, none above)."""
    estimate, low, high = row["rmse_change"], row["rmse_change_low"], row["rmse_change_high"]
    if _missing(estimate):
        return NONE
    percent = lambda v: fixed(100 * v, 1 if abs(v) < 1 else 0, sign=True)  # noqa: E731
    interval = NONE if _missing(low) or _missing(high) else f"{percent(low)}, {percent(high)}"
    return f"{percent(estimate)} % [{interval}]"


def seeds(row: pd.Series) -> str:
    """The finished seeds, and the failed ones when any: '5', '3 (2 failed)'."""
    failed = int(str(row["failed"]).split("/")[0])
    return f"{int(row['n'])}" + (f" ({failed} failed)" if failed else "")


def share(value: float) -> str:
    """A relative change or an mde in percent: '4.1 %' (no decimal from 100 %)."""
    return NONE if _missing(value) else f"{fixed(100 * value, 1 if abs(value) < 1 else 0)} %"


Column = tuple[str, Callable[[pd.Series], str]]
COLUMNS: list[Column] = [
    ("group", lambda g: f"**{g['group']}**" if g["baseline_group"] else str(g["group"])),
    ("seeds", seeds),
    ("test RMSE mean ± sd", lambda g: f"{fixed(g['test_rmse_mean'], 3)} ± {fixed(g['test_rmse_sd'], 3)}"),
    ("test skill", lambda g: fixed(g["test_skill_mean"], 4)),
    ("test RMSE Δ vs baseline [95 % CI]", change),
    ("p (Holm)", lambda g: p_value(g["welch_p_holm"])),
    ("mde", lambda g: share(g["mde"])),
    ("seeds for ±5 %", lambda g: NONE if _missing(g["seeds_needed"]) else f"{int(g['seeds_needed']):,}"),
    ("p_beats", lambda g: fixed(g["p_beats"], 2)),
    ("verdict", lambda g: str(g["verdict"])),
]


def markdown(groups: pd.DataFrame, columns: list[Column] = COLUMNS) -> str:
    """The groups (in compare's order) as a Markdown table of `columns`."""
    cell = lambda text: text.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(header for header, _ in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(make(row)) for _, make in columns) + " |" for _, row in groups.iterrows()]
    return "\n".join(lines)


def lines_after(comparison: Comparison) -> list[str]:
    """What the page says under the table: the naive forecast's test RMSE, whether a group beat
    it, the strength of the answers, the model confidence sets and SPA (compare's own lines), and
    compare's notes."""
    base = comparison.groups[comparison.groups["baseline_group"]].iloc[0]
    return [
        f"Naive forecast (\"tomorrow = today\"): test RMSE {fixed(base['naive_test_rmse_mean'], 3)} on the same days.",
        naive_line(comparison),
        strength_line(comparison),
        *describe(comparison.runs, comparison.models, comparison.alpha),
        *comparison.notes,
    ]


def render(comparison: Comparison) -> str:
    return "\n".join([markdown(comparison.groups), "", *lines_after(comparison)])
