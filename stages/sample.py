"""DVC entry point of the ``sample`` stage; its code is ``labelcycle.stages.sample`` (shipped with the package)."""

from labelcycle.pipeline import run_stage
from labelcycle.stages.sample import main

run_stage(main)
