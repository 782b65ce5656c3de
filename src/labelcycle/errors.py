"""Exception hierarchy.

Every error a user can cause raises a :class:`LabelcycleError` subclass whose message says what was
wrong, where (file, row, column) and what to do. The CLI prints the message without a traceback and
exits with :attr:`LabelcycleError.exit_code`.
"""

from __future__ import annotations


class LabelcycleError(Exception):
    """Base class of every error labelcycle raises on purpose."""

    exit_code = 1


class InputFileError(LabelcycleError):
    """A file cannot be read at all: missing, empty, corrupt, wrong encoding, ragged."""

    exit_code = 2


class SchemaError(LabelcycleError):
    """A table lacks required columns or has columns of the wrong type."""

    exit_code = 2


class ValidationError(LabelcycleError):
    """Values are present but not acceptable (e.g. every row was quarantined)."""

    exit_code = 2


class ConfigError(LabelcycleError):
    """params.yaml or a command-line option is missing or invalid."""

    exit_code = 2


class NotFittedError(LabelcycleError):
    """An estimator was used before ``fit``."""


class WorkspaceError(LabelcycleError):
    """The project workspace (git, DVC, data folders) is not in the state a command needs."""


class TrackingError(LabelcycleError):
    """The MLflow tracking store cannot be reached or refused a request."""


class EvalSetMismatchError(LabelcycleError):
    """Two evaluations were made on different gold eval splits and cannot be compared."""


class UnknownVersionError(LabelcycleError):
    """A version name is neither "workspace", a project folder, a DVC experiment, a git revision nor an MLflow run."""

    exit_code = 2


class MissingPredictionsError(LabelcycleError):
    """A version has no saved per-item predictions on the gold eval split (its evaluate stage never ran)."""
