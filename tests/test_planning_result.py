"""The typed planning result: round trip through the planner's JSON, and refusals."""

import json

import numpy as np
import pytest

from isp_node.geometry import PRESCRIPTIONS, Plane
from isp_node.geometry.catalogue import make_plane, HeadFrame
from isp_node.pipeline.result import PlaneStatus, PlannedPlane, PlanningResult, ResultError


def _planes() -> dict[str, Plane]:
    tilt = np.radians(12.0)
    frame = HeadFrame(left=np.array([1.0, 0, 0]),
                      posterior=np.array([0, np.cos(tilt), np.sin(tilt)]),
                      superior=np.array([0, -np.sin(tilt), np.cos(tilt)]))
    rng = np.random.default_rng(3)
    return {key: make_plane(key, rng.normal(0, 20, 3), rng.normal(0, 1, 3), frame)
            for key in PRESCRIPTIONS}


def example_result() -> PlanningResult:
    statuses = list(PlaneStatus)
    planes = tuple(PlannedPlane(key, plane, 0.5 + i / 40, statuses[i % 3])
                   for i, (key, plane) in enumerate(_planes().items()))
    return PlanningResult(True, "localizer usable", planes, models={"Orientation-Net": "1"})


def test_json_round_trip_keeps_every_plane():
    result = example_result()
    parsed = PlanningResult.from_json(json.loads(json.dumps(result.to_json())))
    assert parsed.to_json() == result.to_json()
    for original, back in zip(result.planes, parsed.planes):
        assert back.key == original.key and back.status == original.status
        np.testing.assert_allclose(back.plane.corners(), original.plane.corners(), atol=1e-9)


def test_rounded_directions_are_reorthonormalised():
    entry = example_result().planes[0].to_json()
    for name in ("row", "col", "normal"):
        entry[name] = [round(v, 5) for v in entry[name]]
    plane = PlannedPlane.from_json(entry).plane
    basis = np.stack([plane.row, plane.col, plane.normal])
    np.testing.assert_allclose(basis @ basis.T, np.eye(3), atol=1e-9)
    np.testing.assert_allclose(plane.normal, entry["normal"], atol=1e-4)


def test_planner_results_of_today_parse():
    result = PlanningResult.from_json({
        "usable": False, "message": "brain not covered: re-acquire localizer",
        "image_classes": {"anatomy": 0}, "planes": [],
        "images": [{"uid": "1.2.3", "orientation": "axial", "class": "irrelevant",
                    "probabilities": [0, 0, 1]}]})
    assert not result.usable and result.planes == () and result.class_of() == {"1.2.3": "irrelevant"}


@pytest.mark.parametrize("change, says", [
    (lambda e: e.update(key="acpc"), "plane key"),
    (lambda e: e.update(key="A_KEY_LONGER_THAN_16"), "plane key"),
    (lambda e: e.update(confidence=1.5), "confidence"),
    (lambda e: e.update(confidence=float("nan")), "confidence"),
    (lambda e: e.update(status="GOOD"), "GOOD"),
    (lambda e: e.update(normal=[0, 0, 2]), "orthonormal"),
    (lambda e: e.update(centre=[0, float("inf"), 0]), "finite"),
    (lambda e: e.update(fov_mm=[200]), "two values"),
    (lambda e: e.update(n_slices=2.5), "n_slices"),
    (lambda e: e.update(spacing_mm=0), "positive"),
    (lambda e: e.pop("row"), "missing 'row'"),
])
def test_bad_plane_entries_are_refused_with_the_reason(change, says):
    entry = example_result().planes[0].to_json()
    change(entry)
    with pytest.raises(ResultError, match=says):
        PlanningResult.from_json({"usable": True, "message": "", "planes": [entry]})


@pytest.mark.parametrize("result, says", [
    ([], "must be an object"),
    ({"message": "x"}, "usable"),
    ({"usable": True, "planes": {}}, "lists"),
    ({"usable": True, "images": [{"uid": "1", "class": "bone"}]}, "class"),
])
def test_bad_results_are_refused(result, says):
    with pytest.raises(ResultError, match=says):
        PlanningResult.from_json(result)


def test_unusable_localizer_claims_no_plane_and_keys_are_unique():
    ok = example_result().planes[0]
    with pytest.raises(ResultError, match="unusable"):
        PlanningResult(False, "knee", (PlannedPlane(ok.key, ok.plane, 0.9, PlaneStatus.OK),))
    with pytest.raises(ResultError, match="twice"):
        PlanningResult(True, "", (ok, ok))
