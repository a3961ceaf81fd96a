"""The planner interface between the job queue and the planning cascade.

A worker process calls the configured factory (``[jobs] planner =
"module:factory"``) once at start-up, so models load once per process, then
calls the returned planner once per job. A planner returns a JSON-serialisable
result or raises; an exception fails the job, never the node.

The result objects (SR, presentation state, secondary captures) are made from
these keys of the result (`isp_node.pipeline.result.PlanningResult` reads them;
others are kept in the job record only)::

    {
      "usable": true,                  # false: the localizer cannot be planned
      "message": "localizer usable",   # for the operator; says why when not usable, and
                                       # warns of a caveat on a usable one
      "images": [{"uid": "<SOP Instance UID>[#<frame>]", "orientation": "sagittal",
                  "class": "anatomy"}, ...],          # anatomy / artifact / irrelevant
      "planes": [{"key": "ACPC",                      # a plane key of the catalogue
                  "centre": [x, y, z],                # LPS mm, the field of view's centre
                  "normal": [x, y, z], "row": [x, y, z], "col": [x, y, z],  # orthonormal
                  "fov_mm": [along_row, along_col],
                  "slab_mm": 150.0, "n_slices": 30, "spacing_mm": 5.0,
                  "confidence": 0.97,                 # 0..1
                  "status": "OK"}, ...],              # OK / LOW_CONFIDENCE / FAILED
      "models": {"LocalizerIQ-Net": "<version>", ...}  # network name -> version
    }

Geometry follows `isp_node.geometry.Plane` and the catalogue's orientation
conventions (normal toward patient Left, Posterior or Superior). A FAILED plane
still carries its best estimate; an unusable localizer has only FAILED planes or
none. Missing "images", "planes" or "models" mean none.
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PlanRequest:
    """One completed localizer series to plan, with the images of the localizer series
    acquired with it (one series per orientation), which the planner should plan from
    together with its own."""

    job_id: int
    study_uid: str
    series_uid: str
    files: tuple[Path, ...]
    companions: tuple[Path, ...] = ()


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
