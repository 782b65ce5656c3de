"""DVC entry point of the ``annotators`` stage; its code is ``labelcycle.stages.annotators`` (shipped with the package)."""

from labelcycle.pipeline import run_stage
from labelcycle.stages.annotators import main

if __name__ == "__main__":  # not when a worker process of the stage imports this file again
    run_stage(main)
