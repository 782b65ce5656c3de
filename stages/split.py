"""DVC entry point of the ``split`` stage; its code is ``labelcycle.stages.split`` (shipped with the package)."""

from labelcycle.pipeline import run_stage
from labelcycle.stages.split import main

if __name__ == "__main__":  # not when a worker process of the stage imports this file again
    run_stage(main)
