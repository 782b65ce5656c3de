"""DVC entry point of the ``aggregate`` stage; its code is ``labelcycle.stages.aggregate`` (shipped with the package)."""

from labelcycle.pipeline import run_stage
from labelcycle.stages.aggregate import main

run_stage(main)
