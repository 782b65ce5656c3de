"""DVC entry point of the ``annotators`` stage; its code is ``labelcycle.stages.annotators`` (shipped with the package)."""

from labelcycle.pipeline import run_stage
from labelcycle.stages.annotators import main

run_stage(main)
