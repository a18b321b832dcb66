"""`lstmlab forecast RUN_ID [--data PATH]`: arguments and printing; the work is records.forecast."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # records.forecast imports MLflow and pandas: only after the arguments are parsed
    from lstmlab.records.forecast import Forecast


def report(result: Forecast) -> str:
    day = lambda stamp: stamp.strftime("%Y-%m-%d")  # noqa: E731
    change = result.price - result.naive
    return "\n".join(
        [
            f"Run {result.run_name} {result.run_id}, model {result.model_uri}; data: {result.data}, "
            f"last date {day(result.last_date)}.",
            f"Next-step forecast of {result.target} for the next trading day after {day(result.last_date)}: "
            f"{day(result.next_date)} ({result.calendar}):",
            f"  model  {result.price:12.4f}   ({change:+.4f}, {change / result.naive:+.2%} vs naive)"
            if result.naive else f"  model  {result.price:12.4f}",
            f"  naive  {result.naive:12.4f}   (the last {result.target}: tomorrow = today)",
        ]
    )


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstmlab forecast",
        description="Next-step price from a run's logged model, beside the naive forecast.",
    )
    parser.add_argument("run_id", metavar="RUN_ID", help="the run's id (or a unique prefix of 8+ characters)")
    parser.add_argument("--data", metavar="PATH", help="a CSV with the run's columns (default: the run's own data)")
    return parser


def main(args: list[str]) -> int:
    options = parser().parse_args(args)

    from lstmlab import interrupts

    with interrupts.at_once():  # it reads and computes only: a Ctrl-C stops it at once
        from lstmlab.records.forecast import forecast
        from lstmlab.tracking.open import use_current_store

        use_current_store()
        text = report(forecast(options.run_id, options.data))
    print(text)
    return 0
