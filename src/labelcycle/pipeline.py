"""Wiring shared by the thin stage scripts: project root, params, atomic output writes."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from labelcycle.errors import LabelcycleError
from labelcycle.params import load_params, section

T = TypeVar("T")


def project_root() -> Path:
    """The project root: the current folder when it holds dvc.yaml (DVC runs stages there, also in the
    temporary copies of ``dvc exp run --temp``/``--queue``, where ``DVC_ROOT`` names the parent repo),
    else ``DVC_ROOT``, else the current folder."""
    here = Path.cwd().resolve()
    if (here / "dvc.yaml").exists():
        return here
    return Path(os.environ.get("DVC_ROOT") or here).resolve()


def stage_params(cls: type[T], name: str, root: Path | None = None) -> T:
    return section(cls, load_params((root or project_root()) / "params.yaml"), name)


def all_params(root: Path | None = None) -> dict[str, Any]:
    return load_params((root or project_root()) / "params.yaml")


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    _atomic(path, lambda p: df.to_parquet(p, index=False))


def write_json(data: Any, path: Path) -> None:
    _atomic(path, lambda p: p.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"))


def write_text(text: str, path: Path) -> None:
    _atomic(path, lambda p: p.write_text(text))


def save_figure(fig: Any, path: Path) -> None:
    _atomic(
        path, lambda p: fig.savefig(p, format=path.suffix.lstrip(".") or "png", dpi=110, bbox_inches="tight")
    )


def read_parquet(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise LabelcycleError(f"{path}: missing; run the upstream stage first (`dvc repro`)")
    return pd.read_parquet(path)


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's main; a LabelcycleError becomes a clean message and a non-zero exit."""
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        main()
    except LabelcycleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
