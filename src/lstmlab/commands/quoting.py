"""An override Hydra's grammar cannot read, said in one line with the quoted form that works.

Hydra reads an unquoted value as a restricted set of characters: a path with `ä`, `&`, `#`,
`~`, `;` or a parenthesis stops its lexer (`LexerNoViableAltException`), while the same value
in quotes is read as written. The shell takes one pair of quotes, Hydra needs the other, so the
line shows both: `'data.path="/data/dätä/prices.csv"'`.
"""

from __future__ import annotations

import re
import shlex

GRAMMAR_PAGE = "https://hydra.cc/docs/advanced/override_grammar/basic/"
# A value Hydra reads as a list, a dict or a function call (`glob(*)`): quoting it would make it
# a string, which is not what its writer meant.
STRUCTURED = re.compile(r"^\s*([\[{]|\w+\()")


def unreadable_override_message(override: str) -> str:
    """What is wrong with `override` and, where quoting its value fixes it, the quoted form."""
    reason = _hydra_reason(override)
    quoted = quoted_override(override)
    if quoted is None:
        return f"Hydra's grammar cannot read the override {override} ({reason}); see {GRAMMAR_PAGE}"
    return (f"Hydra's grammar cannot read the override {override} ({reason}); "
            f"quote the value (and the whole for the shell): {shlex.quote(quoted)}")


def quoted_override(override: str) -> str | None:
    """`key="value"` that Hydra reads as the string written (each of a sweep's comma-separated
    values quoted alone); None when quoting would not make it readable or would change it."""
    key, sign, value = override.partition("=")
    quote = next((q for q in "\"'" if q not in value), None)  # the one the value does not hold
    if not sign or not value or STRUCTURED.match(value) or quote is None:
        return None
    quoted = f"{key}={','.join(_hydra_string(part, quote) for part in value.split(','))}"
    return quoted if _reads_as(quoted, value.split(",")) else None


def _hydra_string(text: str, quote: str) -> str:
    # In Hydra's quoted strings a backslash escapes only a quote or the backslashes before one:
    # those before the closing quote are doubled (`C:\data\` -> "C:\data\\").
    stripped = text.rstrip("\\")
    return f"{quote}{stripped}{(len(text) - len(stripped)) * 2 * chr(92)}{quote}"


def _reads_as(override: str, values: list[str]) -> bool:
    """Whether Hydra parses `override` to exactly `values` (one value, or a sweep over them)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_override(override)
    except HydraException:
        return False
    value = parsed.value()
    found = value.list if isinstance(value, ChoiceSweep) else [value]  # a sweep of quoted values: a choice
    return [str(getattr(item, "text", item)) for item in found] == values  # QuotedString in a sweep


def _hydra_reason(override: str) -> str:
    """Hydra's own word on the first thing it could not read ("token recognition error at: 'ä'")."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        OverridesParser.create().parse_override(override)
    except HydraException as error:
        return str(error).strip().splitlines()[0]
    return "unreadable"
