"""DVC entry point of the ``train_quality`` stage; its code is ``labelcycle.stages.train_quality`` (shipped with the package)."""

from labelcycle.pipeline import run_stage
from labelcycle.stages.train_quality import main

run_stage(main)
