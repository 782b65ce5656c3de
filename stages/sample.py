"""DVC entry point of the ``sample`` stage; its code is ``labelcycle.stages.sample`` (shipped with the package)."""

from labelcycle.pipeline import run_stage
from labelcycle.stages.sample import main

if __name__ == "__main__":  # not when a worker process of the stage imports this file again
    run_stage(main)
