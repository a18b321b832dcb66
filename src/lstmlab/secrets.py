"""Secrets never leave the process: URLs are shown, logged, tagged and stored with their password
masked (a leaf module: imports nothing of ours, so errors and logging can use it cheaply).

A password can sit in a URL's userinfo (`postgresql://user:PW@host/db`, `http://user:PW@host`) or
in its query (`postgresql://host/db?password=PW`, which libpq reads too). Masking works on any
text: a message, a YAML file, a log record; a text with no such URL comes back unchanged.
"""

from __future__ import annotations

import logging
import re

MASK = "***"
# scheme://user:password@host — the userinfo's password part; also as Hydra shows an override in
# a multirun (scheme\://user\:password@host).
_PASSWORD_IN_URL = re.compile(
    r"(?P<user>[A-Za-z][A-Za-z0-9+.\-]*\\?://[^/\s:@\\]*)(?P<colon>\\?:)(?P<password>[^@\s/]+)(?=@)")
# ...?password=PW or ...&password=PW (libpq's and SQLAlchemy's query form).
# It ends at the next parameter, a quote or a space; a colon or comma before a space is the text's.
_PASSWORD_IN_QUERY = re.compile(r"(?P<head>[?&]password=)(?P<password>[^&\s'\"]+?)(?=[&\s'\"]|[:;,.]?$|[:;,.]\s)",
                                re.IGNORECASE)


def mask(text: str) -> str:
    """`text` with the password of every URL in it replaced by ***."""
    text = _PASSWORD_IN_URL.sub(lambda match: match["user"] + match["colon"] + MASK, text)
    return _PASSWORD_IN_QUERY.sub(lambda match: match["head"] + MASK, text)


def drop_passwords(text: str) -> str:
    """`text` with `user:password@` of every URL made `user@` (a query's password masked): for
    files a user may run again, where the URL then takes its password from ~/.pgpass, PGPASSWORD
    or MLFLOW_TRACKING_PASSWORD (a *** would be sent as the password)."""
    text = _PASSWORD_IN_URL.sub(lambda match: match["user"], text)
    return _PASSWORD_IN_QUERY.sub(lambda match: match["head"] + MASK, text)


def masked(node: object) -> object:
    """A copy of a nested dict/list/str structure (a resolved config) with every string masked."""
    if isinstance(node, dict):
        return {key: masked(value) for key, value in node.items()}
    if isinstance(node, (list, tuple)):
        return [masked(value) for value in node]
    return mask(node) if isinstance(node, str) else node


class MaskFilter(logging.Filter):
    """A logging filter that masks the record's message in place (every handler after it, and the
    log file, see the masked text); it drops nothing. Named in conf/hydra/*_logging/lstmlab.yaml
    for a job's handlers and installed by lstmlab.console for the other commands."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record: logging reports it at emit
            return True
        shown = mask(message)
        if shown != message:
            record.msg, record.args = shown, None
        if record.exc_info and not record.exc_text:  # a traceback names the URL too (e.g. SQLAlchemy's)
            record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
        return True
