"""`lstmlab rerun RUN_ID [--check]`: printing; the work is records.rerun, the arguments
commands.parsers.rerun (read before this module and its libraries are imported)."""

from __future__ import annotations

import argparse

from lstmlab import interrupts
from lstmlab.commands.parsers import EXIT_DIFFERENT
from lstmlab.records.rerun import Rerun, data_changed_line, rerun
from lstmlab.tracking.open import use_current_store


def report(result: Rerun, rel_tol: float) -> str:
    lines = [
        f"Rerun of {result.run_name} {result.original_run_id} → new run {result.run_id} "
        f"(tagged rerun_of={result.original_run_id})",
    ]
    if result.original_data_sha256 is None:
        lines.append("data: the original run has no data_sha256 tag; cannot tell whether the data changed")
    elif result.data_changed:
        lines.append(data_changed_line(result.original_data_sha256, result.data_sha256))
    else:
        lines.append(f"data: same fingerprint as the original ({result.data_sha256[:12]}…)")
    if result.original_backend and result.original_backend != result.backend:
        lines.append(
            f"Keras backend: {result.backend}, the original ran on {result.original_backend}: "
            "small numeric differences are expected"
        )
    width = max(len(m.name) for m in result.metrics)
    lines.append(f"{'metric':<{width}}  {'original':>16}  {'rerun':>16}  {'difference':>12}")
    for m in result.metrics:
        status = "(timing, not checked)" if not m.checked else ("same" if m.same else "DIFFERENT")
        lines.append(
            f"{m.name:<{width}}  {m.original:>16.10g}  {m.rerun:>16.10g}  {m.rerun - m.original:>+12.4g}  {status}"
        )
    checked = [m for m in result.metrics if m.checked]
    if result.differing:
        names = ", ".join(m.name for m in result.differing)
        lines.append(f"{len(result.differing)} of {len(checked)} metrics differ beyond relative tolerance {rel_tol:g}: {names}")
    else:
        lines.append(f"All {len(checked)} checked metrics identical within relative tolerance {rel_tol:g} "
                     "(train_seconds excluded).")
    return "\n".join(lines)


def main(options: argparse.Namespace) -> int:
    with interrupts.at_once():  # the store's first answer: a Ctrl-C stops it at once
        use_current_store()
    result = rerun(options.run_id, options.tolerance)
    print(report(result, options.tolerance))
    return EXIT_DIFFERENT if options.check and result.differing else 0
