"""Project command: ``init`` (a new project folder for one's own data)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("init")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Write the project's files into a folder that is not empty.")
def init(folder: Path, force: bool) -> None:
    """Create a labelcycle project in FOLDER: dvc.yaml, params.yaml, stages/, .gitignore, git and DVC
    initialised (cache in .dvc/cache), a first commit. No data: bring yours in with `labelcycle ingest`."""
    from labelcycle.project import init_project

    written = init_project(folder, force=force)
    click.echo(f"init: created the project {folder} ({len(written)} files, git + DVC, first commit)")
    click.echo("next:")
    click.echo(f"  cd {folder}")
    click.echo(
        "  labelcycle ingest --annotations FILE [--item-col C --annotator-col C --label-col C] "
        "[--items FILE] [--gold FILE]"
    )
    click.echo("  dvc repro")
    click.echo("  labelcycle predict ITEMS -o predictions.csv")


COMMANDS = [init]
