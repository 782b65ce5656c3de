"""One helper for secrets: mask credentials wherever they could be shown, logged or stored.

A secret reaches labelcycle as the password of a URL (``postgresql://user:PASSWORD@host/db``, an MLflow
tracking URI with basic auth) or as a query parameter named like a credential (``?password=``,
``?token=``). :func:`mask` replaces every such value in any text with ``***``; :func:`mask_mapping` does the
same for every string in a (nested) mapping, e.g. params before they are logged to MLflow.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

#: scheme://user:password@host -> the password
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)(?P<secret>[^\s@/]+)(?P<tail>@)")
#: ?password=... / &token=... / secret_key=... -> the value
_QUERY_SECRET = re.compile(
    r"(?P<head>(?:^|[?&;\s(,])(?:password|passwd|pwd|token|secret|secret_key|access_key|api_key|apikey)=)"
    r"(?P<secret>[^&;\s]+)",
    re.IGNORECASE,
)


def mask(text: Any) -> Any:
    """``text`` with every URL password and credential-like query value replaced by ``***``.

    Non-strings are returned unchanged, so the helper can be applied to any logged value.
    """
    if not isinstance(text, str):
        return text
    out = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}{m['tail']}", text)
    return _QUERY_SECRET.sub(lambda m: f"{m['head']}{MASK}", out)


def has_secret(text: Any) -> bool:
    """True when :func:`mask` would change ``text``."""
    return isinstance(text, str) and mask(text) != text


def mask_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with :func:`mask` applied to every string, nested mappings and lists included."""

    def walk(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(walk(v) for v in value)
        return mask(value)

    return walk(data)
