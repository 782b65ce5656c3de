"""DVC entry point of the ``evaluate`` stage; its code is ``labelcycle.stages.evaluate`` (shipped with the package)."""

from labelcycle.pipeline import run_stage
from labelcycle.stages.evaluate import main

run_stage(main)
