"""DVC entry point of the ``ingest`` stage; its code is ``labelcycle.stages.ingest`` (shipped with the package)."""

from labelcycle.pipeline import run_stage
from labelcycle.stages.ingest import main

run_stage(main)
