"""Secrets never leave the process: URLs are shown, logged, tagged and stored with their password
masked (a leaf module: imports nothing of ours)."""

from __future__ import annotations

import re

MASK = "***"
# scheme://user:password@host — the userinfo's password part, in any text.
_PASSWORD_IN_URL = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@]*:)(?P<password>[^@\s/]+)(?=@)")


def mask(text: str) -> str:
    """`text` with the password of every URL in it replaced by ***."""
    return _PASSWORD_IN_URL.sub(lambda match: match["head"] + MASK, text)
