"""labelcycle: curate crowd-labelled data and judge dataset versions by downstream impact."""

from __future__ import annotations

__version__ = "0.1.0"
