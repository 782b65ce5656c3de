"""The error vocabulary.

Every error a user can cause raises a :class:`LabelcycleError` whose message says what was wrong, where
(file, row, column) and what to do. There are three kinds, each with its own exit code:

* :class:`InputError` (exit 2): a file or its values cannot be used (unreadable, missing columns, no
  valid rows);
* :class:`ConfigError` (exit 2): params.yaml or a command-line option is missing or invalid;
* :class:`StateError` (exit 1): the project, its stores or its versions are not in the state the
  command needs (run a stage first, commit, reach the tracking server); a refused promotion is a state
  error with exit code 3.

The CLI and the stages print the message without a traceback and exit with :attr:`exit_code`.
"""

from __future__ import annotations


class LabelcycleError(Exception):
    """Base class of every error labelcycle raises on purpose."""

    exit_code = 1


class InputError(LabelcycleError):
    """An input file or its values cannot be used."""

    exit_code = 2


class InputFileError(InputError):
    """A file cannot be read at all: missing, empty, corrupt, wrong encoding, ragged."""


class SchemaError(InputError):
    """A table lacks required columns or has columns of the wrong type."""


class ValidationError(InputError):
    """Values are present but not acceptable (e.g. no valid rows are left)."""


class ConfigError(LabelcycleError):
    """params.yaml or a command-line option is missing or invalid."""

    exit_code = 2


class UnknownVersionError(ConfigError):
    """A version name is neither "workspace", a project folder, a DVC experiment, a git revision nor an MLflow run."""


class StateError(LabelcycleError):
    """The project, its stores or its versions are not in the state a command needs."""

    exit_code = 1


class NotFittedError(StateError):
    """An estimator was used before ``fit``."""


class WorkspaceError(StateError):
    """The project workspace (git, DVC, data folders) is not in the state a command needs."""


class TrackingError(StateError):
    """The MLflow tracking store cannot be reached or refused a request."""


class EvalSetMismatchError(StateError):
    """Two evaluations were made on different gold eval splits and cannot be compared."""


class MissingPredictionsError(StateError):
    """A version has no saved per-item predictions on the gold eval split (its evaluate stage never ran)."""


class PromotionRefusedError(StateError):
    """A promotion gate failed; nothing was changed (``--force --reason`` overrides, and is recorded)."""

    exit_code = 3
