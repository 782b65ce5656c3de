"""DVC entry point of the ``curate`` stage; its code is ``labelcycle.stages.curate`` (shipped with the package)."""

from labelcycle.pipeline import run_stage
from labelcycle.stages.curate import main

run_stage(main)
