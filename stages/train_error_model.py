"""DVC entry point of the ``train_error_model`` stage; its code is ``labelcycle.stages.train_error_model`` (shipped with the package)."""

from labelcycle.pipeline import run_stage
from labelcycle.stages.train_error_model import main

if __name__ == "__main__":  # not when a worker process of the stage imports this file again
    run_stage(main)
