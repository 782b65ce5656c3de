"""The one check every params section uses."""

from __future__ import annotations

from labelcycle.errors import ConfigError


def check(ok: bool, message: str) -> None:
    """Raise :class:`ConfigError` with ``message`` unless ``ok``."""
    if not ok:
        raise ConfigError(message)
