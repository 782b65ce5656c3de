"""Wiring shared by the thin stage scripts: project root, params, atomic output writes."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from labelcycle import catalog
from labelcycle import params as params_mod
from labelcycle.catalog import Catalog, SampleReport
from labelcycle.errors import LabelcycleError, StateError
from labelcycle.masking import mask
from labelcycle.quality.data import TrainingRows, training_rows

#: outputs this process wrote (or is about to write) as a stage; removed again if the stage fails, so a
#: failed stage leaves no outputs behind for DVC to mistake for results (dvc.lock keeps the last good ones,
#: `dvc checkout` restores them)
_WRITTEN: list[Path] = []


def project_root() -> Path:
    """The project root: the current folder when it holds dvc.yaml (DVC runs stages there, also in the
    temporary copies of ``dvc exp run --temp``/``--queue``, where ``DVC_ROOT`` names the parent repo),
    else ``DVC_ROOT``, else the current folder."""
    here = Path.cwd().resolve()
    if (here / "dvc.yaml").exists():
        return here
    return Path(os.environ.get("DVC_ROOT") or here).resolve()


def stage_params(root: Path | None = None) -> params_mod.Params:
    """The project's params (every section; a stage reads only the ones dvc.yaml lists for it)."""
    return params_mod.load(root or project_root())


@dataclass(frozen=True)
class StageContext:
    """What a stage needs from its project: the root, its catalog, its params."""

    root: Path
    catalog: Catalog
    params: params_mod.Params

    def path(self, rel: str) -> Path:
        return self.catalog.path(rel)

    def read(self, rel: str) -> pd.DataFrame:
        """A Parquet input of the stage (a clear error when an upstream stage has not run)."""
        return read_parquet(self.catalog.path(rel))

    def read_all(self, *rels: str) -> tuple[pd.DataFrame, ...]:
        """Several Parquet inputs at once, in the order named."""
        return tuple(self.read(rel) for rel in rels)

    def training_inputs(self) -> TrainingInputs:
        """What tune and train_quality train on: the training sample less the gold eval items."""
        sample, eval_split = self.read(catalog.TRAIN_SAMPLE), self.read(catalog.EVAL)
        sampled = self.catalog.report(SampleReport)  # names the curated set the sample was drawn from
        return TrainingInputs(
            sample, eval_split, training_rows(sample, eval_split), sampled.curated_digest if sampled else None
        )


@dataclass(frozen=True)
class TrainingInputs:
    """The quality model's inputs: the sample, the eval split, the rows it may fit, the curated digest."""

    sample: pd.DataFrame
    eval_split: pd.DataFrame
    rows: TrainingRows
    curated_digest: str | None


def stage_context() -> StageContext:
    """The project this stage runs in (see :func:`project_root`)."""
    root = project_root()
    return StageContext(root, Catalog(root), stage_params(root))


def register_output(path: Path) -> Path:
    """Note an output (file or folder) that a failed stage must not leave behind; returns ``path``."""
    _WRITTEN.append(Path(path))
    return Path(path)


def _remove_outputs() -> list[Path]:
    removed = []
    for path in reversed(_WRITTEN):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        elif path.exists() or path.is_symlink():
            with contextlib.suppress(OSError):  # a read-only disk keeps it; dvc.lock still does not
                path.unlink(missing_ok=True)
                removed.append(path)
    _WRITTEN.clear()
    return removed


#: errors of the disk rather than of the stage: full, read-only, no permission, over quota
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT})


def disk_error(path: Path | str | None, exc: OSError) -> StateError:
    """A :class:`StateError` saying which file could not be written, why, and what to do."""
    where = path or exc.filename or "a stage output"
    reason = exc.strerror or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        todo = "free disk space (or raise the quota)"
    else:
        todo = "make the folder writable (or run the stage where it is)"
    return StateError(f"{where}: cannot write ({reason}); {todo}, then rerun `dvc repro`")


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    register_output(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno in DISK_ERRNOS:
            raise disk_error(path, exc) from exc
        raise
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


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
        raise StateError(f"{path}: missing; run the upstream stage first (`dvc repro`)")
    return pd.read_parquet(path)


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's main; a LabelcycleError becomes a clean message and a non-zero exit.

    The tracking store is checked first (a server that is down fails the stage in seconds, before any
    work), and whatever the stage wrote is removed again if it fails or is interrupted. Nothing runs
    when the stage file is imported by a worker process the stage started (multiprocessing's spawn
    imports the main script again, as ``__mp_main__``: a stage file without a ``__main__`` guard would
    run the stage again).
    """
    if sys._getframe(1).f_globals.get("__name__") == "__mp_main__":
        return
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    _WRITTEN.clear()
    try:
        from labelcycle.tracking.runs import configure

        configure(project_root())
        main()
    except (LabelcycleError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno not in DISK_ERRNOS:
            _remove_outputs()
            raise
        err = exc if isinstance(exc, LabelcycleError) else disk_error(None, exc)
        removed = _remove_outputs()
        note = f" (removed this stage's {len(removed)} partial output(s))" if removed else ""
        print(f"error: {mask(str(err))}{note}", file=sys.stderr)
        sys.exit(err.exit_code)
    except BaseException:
        _remove_outputs()
        raise
    _WRITTEN.clear()
