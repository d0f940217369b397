"""Credentials never leave the environment: URIs are written and printed without their password.

MLflow takes a server's credentials from ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``
(or ``MLFLOW_TRACKING_TOKEN``, or ``~/.mlflow/credentials``) as well as from the URI itself
(``http://user:password@host``). What weam prints, journals, logs or reports carries the URI with
the password masked (:func:`redact`, for people) or without credentials at all
(:func:`strip_credentials`, for the buffer journal: ``weam tracking sync`` reads them from the
environment again)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
# scheme://user:password@ — the password is whatever runs to the last '@' before the host part.
_USERINFO = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@'\"]*):(?P<secret>[^\s/'\"]*)@")


def redact(text: Any) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` masked (``user:***@``)."""
    return _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@" if m["secret"] != MASK else m[0], str(text))


def strip_credentials(uri: str | None) -> str | None:
    """``uri`` without its user and password (``http://user:pw@host:5000/x`` → ``http://host:5000/x``)."""
    if not uri or "@" not in uri:
        return uri
    parts = urlsplit(uri)
    if not parts.netloc or "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
