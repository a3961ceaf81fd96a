"""The planner interface between the job queue and the planning cascade.

A worker process calls the configured factory (``[jobs] planner =
"module:factory"``) once at start-up, so models load once per process, then
calls the returned planner once per job. A planner returns a JSON-serialisable
result or raises; an exception fails the job, never the node.
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PlanRequest:
    """One completed localizer series to plan."""

    job_id: int
    study_uid: str
    series_uid: str
    files: tuple[Path, ...]


Planner = Callable[[PlanRequest], dict]
PlannerFactory = Callable[[], Planner]


def load_planner_factory(spec: str) -> PlannerFactory:
    """Import ``module:factory`` and return the factory."""
    module_name, _, attribute = spec.partition(":")
    module = importlib.import_module(module_name)
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ImportError(f"planner factory {spec!r} is not a callable")
    return factory
