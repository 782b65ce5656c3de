"""The ``labelcycle`` command line: one click group, thin command modules by concern.

:mod:`~labelcycle.cli.project` (init), :mod:`~labelcycle.cli.data` (demo, ingest, aggregate, predict),
:mod:`~labelcycle.cli.analysis` (annotators, errors, review, simulate-review), :mod:`~labelcycle.cli.versions` (experiments, compare),
:mod:`~labelcycle.cli.release` (promote, status, rollback) and :mod:`~labelcycle.cli.team` (server,
tune-worker) each parse their options (shared ones from :mod:`~labelcycle.cli.options`), call the package
and print. Every :class:`~labelcycle.errors.LabelcycleError` becomes a one-line ``error:`` message on
stderr and its exit code; no traceback reaches the user for a fault they caused.
"""

from __future__ import annotations

import os
import sys

import click

from labelcycle.errors import LabelcycleError

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class LabelcycleGroup(click.Group):
    """A click group that turns a :class:`LabelcycleError` into ``error: message`` and its exit code."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except LabelcycleError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=LabelcycleGroup)
@click.version_option(package_name="labelcycle")
def main() -> None:
    """labelcycle: when we change our labelled data, do our models get better?"""


from labelcycle.cli import analysis, data, gold, project, release, team, versions  # noqa: E402  (the group exists first)

for _module in (project, data, analysis, gold, versions, release, team):
    for _command in _module.COMMANDS:
        main.add_command(_command)

__all__ = ["LabelcycleGroup", "main"]
