"""A tracking server that does not answer is said in seconds, before any work starts.

MLflow's REST client retries a refused connection with backoff for about four minutes and then
prints a traceback (MLFLOW_HTTP_REQUEST_MAX_RETRIES=7). One request to the server's `/health`
with a short timeout, once per server and process, says the same in a line. Any HTTP answer (even an
error status: a proxy, an older server) counts as reachable; MLflow's calls report the rest.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request

from lstmlab.errors import LstmlabError

# Seconds to wait for the server's first answer; LSTMLAB_SERVER_TIMEOUT overrides it.
DEFAULT_TIMEOUT = 5.0

_answered: set[str] = set()  # servers that answered this process: asked once


def check_server(uri: str) -> None:
    """Raise a one-line LstmlabError when the http(s) tracking server `uri` does not answer."""
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
