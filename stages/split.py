"""DVC entry point of the ``split`` stage; its code is ``labelcycle.stages.split`` (shipped with the package)."""

from labelcycle.pipeline import run_stage
from labelcycle.stages.split import main

run_stage(main)
