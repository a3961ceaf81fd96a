"""Planners for tests of the worker machinery and the result objects (loaded by
worker processes)."""

import json
import os
import time
from pathlib import Path

import pydicom

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


TRUTH_ENV = "ISP_NODE_TEST_TRUTH"


def make_truth_planner() -> Planner:
    """Answers with the simulator's ground truth for the pushed case: its true planes
    (status OK, confidence 1) and image labels, found by study in the truth.json files
    under $ISP_NODE_TEST_TRUTH. For checking how the node encodes and routes planes."""
    def plan(request: PlanRequest) -> dict:
        study = pydicom.dcmread(request.files[0], stop_before_pixels=True).StudyInstanceUID
        for path in Path(os.environ[TRUTH_ENV]).rglob("truth.json"):
            truth = json.loads(path.read_text())
            if truth["study_uid"] == study:
                break
        else:
            raise LookupError(f"no truth.json for study {study}")
        series = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in request.files}
        return {
            "planner": "truth",
            "usable": truth["usable"],
            "message": "localizer usable" if truth["usable"] else f"simulated {truth['kind']}",
            "images": [{"uid": i["sop_instance_uid"], "orientation": i["orientation"],
                        "class": i["label"]} for i in truth["images"]
                       if i["sop_instance_uid"] in series],
            "planes": [{"key": key, **plane, "confidence": 1.0,
                        "status": "OK" if truth["usable"] else "FAILED"}
                       for key, plane in truth["planes"].items()],
            "models": {"ground truth": f"simulator seed {truth['seed']}"},
        }

    return plan


def make_malformed_planner() -> Planner:
    """Returns a plane whose directions are not orthonormal, as a buggy stage would."""

    def plan(request: PlanRequest) -> dict:
        result = check_series(request)
        result["planes"] = [{"key": "ACPC", "centre": [0, 0, 0], "normal": [0, 0, 1],
                             "row": [1, 0, 0], "col": [1, 0, 0], "fov_mm": [200, 230],
                             "slab_mm": 150, "n_slices": 30, "spacing_mm": 5,
                             "confidence": 0.9, "status": "OK"}]
        return result

    return plan
