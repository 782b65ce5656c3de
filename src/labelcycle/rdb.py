"""Old name of :mod:`labelcycle.databases`, kept only until the CLI imports that module.

Delete this file once ``cli`` imports ``ensure_database`` and ``masked_url`` from ``labelcycle.databases``.
"""

from __future__ import annotations

from labelcycle.databases import ensure_database
from labelcycle.databases import masked_url as _safe

__all__ = ["_safe", "ensure_database"]
