"""Promotion of a release (curated dataset version + the models trained on it + the evaluation that judged
them) to production, behind evidence gates.

Pure logic only (no mlflow, git, dvc or printing), in the pip-tools shape: :func:`build_plan` computes what
would change and every gate's result from facts gathered elsewhere (``tracking/promote.py``), and
``tracking/promote.py`` carries the plan out.
"""

from labelcycle.promotion.gates import Gate
from labelcycle.promotion.plan import Action, Plan, RegistryState, build_plan, render_plan
from labelcycle.promotion.release import ModelRef, Release

__all__ = ["Action", "Gate", "ModelRef", "Plan", "RegistryState", "Release", "build_plan", "render_plan"]
