"""`lstmlab forecast RUN_ID [--data PATH]`: printing; the work is records.forecast, the arguments
commands.parsers.forecast (read before this module and its libraries are imported)."""

from __future__ import annotations

import argparse

from lstmlab import interrupts
from lstmlab.records.forecast import Forecast, forecast
from lstmlab.tracking.open import use_current_store


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


def main(options: argparse.Namespace) -> int:
    with interrupts.at_once():  # it reads and computes only: a Ctrl-C stops it at once
        use_current_store()
        text = report(forecast(options.run_id, options.data))
    print(text)
    return 0
