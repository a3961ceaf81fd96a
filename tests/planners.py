"""Planners for tests of the worker machinery (loaded by worker processes)."""

import os
import time

from isp_node.pipeline.planner import PlanRequest, Planner
from isp_node.pipeline.series_check import check_series


def make_slow_planner() -> Planner:
    """Checks the series like the default planner, but takes 3 s doing it."""

    def plan(request: PlanRequest) -> dict:
        time.sleep(3.0)
        return check_series(request)

    return plan


def make_failing_planner() -> Planner:
    """Raises for every series, as a planner bug would."""

    def plan(request: PlanRequest) -> dict:
        raise RuntimeError(f"cannot plan {len(request.files)} images")

    return plan


def make_crashing_planner() -> Planner:
    """Kills its worker process on the first job, as a native crash would."""

    def plan(request: PlanRequest) -> dict:
        if request.job_id == 1:
            os._exit(3)
        return check_series(request)

    return plan
