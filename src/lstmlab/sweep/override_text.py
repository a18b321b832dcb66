"""Python values written as Hydra override text that parses back to the same value: the trial
link the sweeper hands each job, and the values a trial sampled."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")  # strings Hydra reads back as the same string
KEYWORDS = {"true", "false", "null", "inf", "nan"}


def format_value(value: Any) -> str:
    """A Python value as Hydra override text that parses back to the same value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if value != value else
                                                         ("inf" if value > 0 else "-inf"))
    if isinstance(value, str):
        if BARE.fullmatch(value) and value.lower() not in KEYWORDS:
            return value  # adam, leaky_relu: readable in logs and .hydra/overrides.yaml
        return quote(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{format_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as a Hydra override")


def quote(text: str) -> str:
    """Single-quoted Hydra string: escape quotes and the backslashes that precede a quote."""
    body = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", text)
    body = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, body)
    return f"'{body}'"
