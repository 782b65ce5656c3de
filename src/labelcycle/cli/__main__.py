"""``python -m labelcycle.cli``: the same as the ``labelcycle`` command."""

from __future__ import annotations

from labelcycle.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
