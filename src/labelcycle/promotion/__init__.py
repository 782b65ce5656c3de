"""Promotion of a release (curated dataset version + the models trained on it + the evaluation that judged
them) to production, behind evidence gates; status and rollback.

In the pip-tools shape: :mod:`~labelcycle.promotion.facts` gathers the facts (git, DVC and MLflow through
their adapters) into the pure :class:`~labelcycle.promotion.plan.Evidence`; :func:`build_plan` judges the
gates and computes every action without side effects; :func:`execute` carries the actions out, each by its
own fields. :mod:`~labelcycle.promotion.status` reads the production release and plans its rollback.

The CLI calls::

    from labelcycle.promotion import (
        plan_promotion, plan_rollback, execute, status, render_status, render_plan,
    )
"""

from labelcycle.promotion.execute import Context, execute
from labelcycle.promotion.facts import plan_promotion
from labelcycle.promotion.gates import Gate
from labelcycle.promotion.plan import Action, Plan, RegistryState, build_plan
from labelcycle.promotion.release import ModelRef, Release
from labelcycle.promotion.render import render_plan, render_status
from labelcycle.promotion.status import plan_rollback, status

__all__ = [
    "Action",
    "Context",
    "Gate",
    "ModelRef",
    "Plan",
    "RegistryState",
    "Release",
    "build_plan",
    "execute",
    "plan_promotion",
    "plan_rollback",
    "render_plan",
    "render_status",
    "status",
]
