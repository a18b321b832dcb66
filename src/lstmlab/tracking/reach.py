"""A tracking server that does not answer is said in seconds, before any work starts, and one
that stops answering mid-run stops the run in seconds, not minutes.

MLflow's REST client retries a refused connection with backoff for about four minutes and then
prints a traceback (MLFLOW_HTTP_REQUEST_MAX_RETRIES=7), and waits 120 s for each answer. One
request to the server's `/health` with a short timeout, once per server and process, says the
same in a line. Any HTTP answer (even an error status: a proxy, an older server) counts as
reachable; MLflow's calls report the rest, with retries and timeouts bounded (`bound_requests`)
so that a server that dies mid-run is found within seconds, one that hangs within about 30 s.
"""

from __future__ import annotations

import contextlib
import os
import urllib.error
import urllib.request
from collections.abc import Iterator

from lstmlab.errors import LstmlabError

# Seconds to wait for the server's first answer; LSTMLAB_SERVER_TIMEOUT overrides it.
DEFAULT_TIMEOUT = 5.0

# MLflow's HTTP client for lstmlab's calls: 2 retries, after 0 and 2-3 s; 8 s for each answer.
# A dead server is found in about 3 s, a hung one in about 27 s (3 × 8 s + 3 s). Defaults: a value the
# user sets in the environment wins (MLflow's own were 7 retries, backoff 2 s up to 120 s, 120 s).
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "8",
}
QUICK_TIMEOUT = 3  # seconds: the one try to close a run after its server failed

_answered: set[str] = set()  # servers that answered this process: asked once


def bound_requests() -> None:
    """MLflow's HTTP retries and timeouts bounded for this process (and its workers), where the
    user did not set them; MLflow reads them at every request."""
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)


@contextlib.contextmanager
def quick_requests() -> Iterator[None]:
    """Within: MLflow's requests are tried once, for at most QUICK_TIMEOUT seconds (after a
    server failed, a second try of the same length would only double the wait)."""
    names = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")
    saved = {name: os.environ.get(name) for name in names}
    timeout = max(1, min(int(float(saved["MLFLOW_HTTP_REQUEST_TIMEOUT"] or QUICK_TIMEOUT)), QUICK_TIMEOUT))
    os.environ.update({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout)})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def forget_server(uri: str) -> None:
    """A server that failed: the next check in this process asks it again."""
    _answered.discard(uri)


def check_server(uri: str) -> None:
    """Raise a one-line LstmlabError when the http(s) tracking server `uri` does not answer."""
    bound_requests()
    if not uri.startswith(("http://", "https://")) or uri in _answered:
        return
    timeout = float(os.environ.get("LSTMLAB_SERVER_TIMEOUT") or DEFAULT_TIMEOUT)
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):
            pass
    except urllib.error.HTTPError:  # it answered
        pass
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise LstmlabError(
            f"the MLflow tracking server {uri} does not answer ({_reason(reason)}); start it, or point "
            "MLFLOW_TRACKING_URI (or tracking.uri) at a running server or a local store"
        ) from None
    _answered.add(uri)


def _reason(reason: object) -> str:
    text = getattr(reason, "strerror", None) or str(reason)
    return " ".join(str(text).split()) or type(reason).__name__
