"""DVC entry point of the ``tune`` stage; its code is ``labelcycle.stages.tune`` (shipped with the package)."""

from labelcycle.pipeline import run_stage
from labelcycle.stages.tune import main

run_stage(main)
