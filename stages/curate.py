"""DVC entry point of the ``curate`` stage; its code is ``labelcycle.stages.curate`` (shipped with the package)."""

from labelcycle.pipeline import run_stage
from labelcycle.stages.curate import main

if __name__ == "__main__":  # not when a worker process of the stage imports this file again
    run_stage(main)
