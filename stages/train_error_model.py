"""DVC entry point of the ``train_error_model`` stage; its code is ``labelcycle.stages.train_error_model`` (shipped with the package)."""

from labelcycle.pipeline import run_stage
from labelcycle.stages.train_error_model import main

run_stage(main)
