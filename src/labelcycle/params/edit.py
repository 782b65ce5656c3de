"""Edit one key of ``params.yaml`` in place, keeping every comment, every other key and the layout.

A YAML round trip (load, dump) would drop the comments that document each key; this rewrites only
the value on the key's own line (its trailing comment kept), or adds the line when the key is absent.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from labelcycle.errors import ConfigError


def flow(value: Any) -> str:
    """``value`` as one line of YAML (``[ok, bad]``, ``0.5``, ``'yes'``)."""
    return yaml.safe_dump(value, default_flow_style=True, width=10**9).strip().removesuffix("...").strip()


def set_value(text: str, section: str, key: str, value: Any, where: str = "params.yaml") -> str:
    """``text`` (a params.yaml) with ``section.key`` set to ``value`` on one line.

    Raises:
        ConfigError: the result does not read back as ``value`` (e.g. the key holds a block list that a
            one-line edit cannot replace); the message names the key to edit by hand.
    """
    lines = text.splitlines(keepends=True)
    head = re.compile(rf"^{re.escape(section)}:\s*(#.*)?$")
    start = next((i for i, line in enumerate(lines) if head.match(line.rstrip("\n"))), None)
    new_line = f"{key}: {flow(value)}"
    if start is None:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines += [f"{section}:\n", f"  {new_line}\n"]
    else:
        end = next(
            (j for j in range(start + 1, len(lines)) if lines[j].strip() and not lines[j][0].isspace()),
            len(lines),
        )
        own = re.compile(rf"^(\s+){re.escape(key)}:(\s*)([^#\n]*?)(\s*#.*)?$")
        for j in range(start + 1, end):
            m = own.match(lines[j].rstrip("\n"))
            if m:
                comment = m.group(4) or ""
                lines[j] = f"{m.group(1)}{new_line}{comment}\n"
                break
        else:
            lines.insert(start + 1, f"  {new_line}\n")
    out = "".join(lines)
    try:
        back = (yaml.safe_load(out) or {}).get(section, {}).get(key)
    except yaml.YAMLError:
        back = None
    if back != value:
        raise ConfigError(f"{where}: could not set {section}.{key} to {flow(value)} in place; set it by hand")
    return out


def write_value(path: Path, section: str, key: str, value: Any) -> None:
    """Set ``section.key`` to ``value`` in the file at ``path`` (see :func:`set_value`)."""
    path.write_text(set_value(path.read_text(), section, key, value, where=str(path)))
