"""The cascade runs stage 3 when an Orientation-Net is installed beside the other networks."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from isp_node.cascade.models import build_orientation_net
from isp_node.cascade.orientation import FINE_SHAPE
from isp_node.cascade.planner import (
    COVERAGE_MODEL, FINE_MODEL, IQ_MODEL, ORIENTATION_MODEL, Cascade, models_dir)
from isp_node.geometry import PLANE_KEYS
from isp_node.pipeline.result import PlanningResult
from isp_node.simulation.cases import simulate_case
from isp_node.simulation.tensors import GRID_SPACING_MM


def test_installed_orientation_net_gives_planes_in_the_planner_shape(tmp_path: Path):
    for name in (IQ_MODEL, COVERAGE_MODEL):
        shutil.copy(models_dir() / name, tmp_path / name)
    without = Cascade(tmp_path)
    build_orientation_net(len(PLANE_KEYS)).save(tmp_path / "orientation_net.keras")  # untrained
    cascade = Cascade(tmp_path)
    assert without.orientation is None and "Orientation-Net" in cascade.models
    slices = simulate_case(7, kind="usable", protocol="three_plane",
                           resolution_mm=GRID_SPACING_MM).slices
    result = cascade.run(slices)
    assert without.run(slices)["planes"] == []
    build_orientation_net(len(PLANE_KEYS), FINE_SHAPE).save(tmp_path / FINE_MODEL)
    fine = Cascade(tmp_path)
    assert cascade.fine is None and "Orientation-Net fine stage" in fine.models
    assert {p["key"] for p in fine.run(slices)["planes"]} <= set(PLANE_KEYS)
    assert result["usable"] and isinstance(result["planes"], list)
    parsed = PlanningResult.from_json(result)  # whatever an untrained net finds is encodable
    assert {p.key for p in parsed.planes} <= set(PLANE_KEYS)
    assert all(0.0 <= p.confidence <= 1.0 for p in parsed.planes)
    assert np.isfinite(result["seconds"])


def test_a_fine_stage_that_finds_nothing_leaves_the_first_stages_planes(tmp_path: Path):
    for name in (IQ_MODEL, COVERAGE_MODEL, ORIENTATION_MODEL):
        shutil.copy(models_dir() / name, tmp_path / name)
    first = Cascade(tmp_path)
    blind = build_orientation_net(len(PLANE_KEYS), FINE_SHAPE)  # distances saturated everywhere
    distance = blind.get_layer("distance")
    distance.set_weights([np.zeros_like(w) for w in distance.get_weights()[:-1]]
                         + [np.full(len(PLANE_KEYS), 5.0, np.float32)])
    blind.save(tmp_path / FINE_MODEL)
    both = Cascade(tmp_path)
    assert both.fine is not None
    slices = simulate_case(8, kind="usable", protocol="three_plane",
                           resolution_mm=GRID_SPACING_MM).slices
    planes = first.run(slices)["planes"]
    assert {p["key"] for p in planes} == set(PLANE_KEYS)
    assert both.run(slices)["planes"] == planes  # every fine key from the first stage, in order


def test_the_first_stage_looks_again_with_the_head_upright(tmp_path: Path, monkeypatch):
    """With a second look the first stage sees the localizer turned upright by its own MSP
    and AC-PC plane: its planes change and come back in the scanner's frame (the head here
    is tilted by 29 degrees, which a plane left in the head frame would keep; this first
    stage alone is up to 11 degrees off), and the MSP is the first look's, whose symmetry
    agrees best with itself between poses."""
    import isp_node.cascade.planner as planner

    for name in (IQ_MODEL, COVERAGE_MODEL, ORIENTATION_MODEL):
        shutil.copy(models_dir() / name, tmp_path / name)
    cascade = Cascade(tmp_path)
    case = simulate_case(22, kind="usable", protocol="three_plane", resolution_mm=GRID_SPACING_MM)
    monkeypatch.setattr(planner, "FIRST_PASSES", 1)
    once = {p["key"]: p for p in cascade.run(case.slices)["planes"]}
    monkeypatch.setattr(planner, "FIRST_PASSES", 2)
    twice = {p["key"]: p for p in cascade.run(case.slices)["planes"]}
    assert set(once) == set(twice) == set(PLANE_KEYS)

    def angle(a, b) -> float:
        return float(np.degrees(np.arccos(min(1.0, abs(float(np.dot(a, b)))))))

    assert angle(twice["MSP"]["normal"], once["MSP"]["normal"]) < 1e-6
    assert angle(twice["ACPC"]["normal"], once["ACPC"]["normal"]) > 0.01  # looked at again
    for key in PLANE_KEYS:
        assert angle(twice[key]["normal"], case.planes[key].normal) < 16.0, key


def test_whole_brain_planes_cover_the_simulated_brain():
    """The MSP and AC-PC planes the node plans (Orientation-Net as shipped) are sized to the
    brain Coverage-Net finds: their slabs hold every voxel of the simulated brain (4 mm, on
    the grid the node uses) by no more than allowance and rounding, their fields of view by
    at least the scalp and, where wider than prescribed, by no more than scalp, allowance
    and rounding; the planes of one structure keep their prescriptions."""
    from isp_node.geometry import PRESCRIPTIONS
    from isp_node.geometry.sizing import BRAIN_PLANES, EDGE_ALLOWANCE_MM, FOV_STEP_MM, SCALP_MM
    from isp_node.pipeline.volume import Grid, localizer_centre
    from isp_node.simulation.tensors import GRID_SHAPE, brain_target

    case = simulate_case(4, kind="usable", protocol="three_plane", resolution_mm=GRID_SPACING_MM)
    planes = {p["key"]: p for p in Cascade().run(case.slices)["planes"]}  # as installed
    grid = Grid.centred(localizer_centre(case.slices), GRID_SHAPE, GRID_SPACING_MM)
    brain = grid.origin + np.argwhere(brain_target(case.subject, grid) >= 0.5) * grid.spacing
    assert set(planes) == set(PLANE_KEYS)
    for key, plane in planes.items():
        if key not in BRAIN_PLANES:
            assert tuple(plane["fov_mm"]) == PRESCRIPTIONS[key].fov_mm, key
            assert plane["n_slices"] == PRESCRIPTIONS[key].n_slices, key
            continue
        reach = np.abs((brain - plane["centre"]) @ np.array(
            [plane["row"], plane["col"], plane["normal"]]).T).max(axis=0)
        room = np.array([*plane["fov_mm"], plane["slab_mm"]]) / 2 - reach
        assert (room[:2] >= SCALP_MM).all() and room[2] >= 0, (key, room)
        assert (np.array(plane["fov_mm"]) >= PRESCRIPTIONS[key].fov_mm).all(), key
        widened = np.array(plane["fov_mm"]) > PRESCRIPTIONS[key].fov_mm
        assert (room[:2][widened] <= SCALP_MM + EDGE_ALLOWANCE_MM + FOV_STEP_MM / 2 + 10).all(), \
            (key, room)
        assert room[2] <= EDGE_ALLOWANCE_MM + plane["spacing_mm"] / 2 + 10, (key, room)
        assert plane["slab_mm"] == plane["n_slices"] * plane["spacing_mm"]


def test_a_fine_stage_with_a_landmark_head_turns_acpc_towards_its_points(tmp_path: Path, mni_head):
    """A fine stage that finds the midline landmarks is called for them too, and its ACPC
    plane turns halfway from its votes' (here: a plane tilted by 6 degrees) to the plane
    through the AC and PC it finds."""
    from isp_node.cascade.orientation import (
        FINE_LANDMARKS, fine_grid, landmark_points, landmark_targets, plane_array, plane_targets)
    from isp_node.geometry import normal_angle_deg, plane_catalogue, transform_plane
    from isp_node.geometry.rotations import head_rotation, rigid

    for name in (IQ_MODEL, COVERAGE_MODEL, ORIENTATION_MODEL):
        shutil.copy(models_dir() / name, tmp_path / name)
    build_orientation_net(len(PLANE_KEYS), FINE_SHAPE, landmarks=len(FINE_LANDMARKS)).save(
        tmp_path / FINE_MODEL)
    cascade = Cascade(tmp_path)
    outputs = cascade.fine(np.zeros((1, *FINE_SHAPE, 2), np.float32))
    assert [tuple(o.shape) for o in outputs] == [(1, *FINE_SHAPE, len(PLANE_KEYS))] * 2 + [(1, *FINE_SHAPE, 10)]
    slices = simulate_case(9, kind="usable", protocol="three_plane", resolution_mm=GRID_SPACING_MM).slices
    assert {p["key"] for p in cascade.run(slices)["planes"]} == set(PLANE_KEYS)

    truth = plane_catalogue(mni_head.landmarks)
    centre = truth["ACPC"].centre
    tilt = head_rotation(6, 0, 0)
    tilted = {**truth, "ACPC": transform_plane(truth["ACPC"], rigid(tilt, centre - tilt @ centre))}
    grid = fine_grid(centre + np.array([2.0, 3.0, -1.0]))
    votes = plane_targets(grid, plane_array(tilted))
    points = np.stack([mni_head.landmarks[name] for name in FINE_LANDMARKS])
    logits = np.log(landmark_targets(grid, points) + 1e-9)
    options = dict(centre_from_acpc_mm=(0.0, 0.0, 0.0), keys=("MSP", "ACPC"))
    found = landmark_points(logits, grid)
    voted = cascade._decode(grid, votes.distance, votes.heat, None, None, None, **options)
    pointed = cascade._decode(grid, votes.distance, votes.heat, None, found, found[:2], **options)
    off = normal_angle_deg(voted["ACPC"].plane, truth["ACPC"], oriented=True)
    assert off > 5.9
    assert normal_angle_deg(pointed["ACPC"].plane, truth["ACPC"], oriented=True) < off / 2 + 0.1
    # all the way, as with the commissure look: the plane through AC and PC
    through = cascade._decode(grid, votes.distance, votes.heat, None, found, found[:2], **options,
                              commissure_weight=1.0)
    assert normal_angle_deg(through["ACPC"].plane, truth["ACPC"], oriented=True) < 0.5  # the MSP's


def test_the_installed_commissure_look_finds_ac_and_pc_again(tmp_path: Path):
    """The installed cascade has the commissure look; on a new MNI individual, given AC and
    PC 4 mm off in the head frame, it takes them halfway back towards the truth and further
    (the points kept are the mean of those given and those it finds); a cascade without it
    is the fine stage's alone."""
    from isp_node.cascade.evaluation import PLANNED_MM
    from isp_node.cascade.orientation import head_frame_transform
    from isp_node.cascade.planner import COMMISSURE_MODEL
    from isp_node.geometry.catalogue import AC, PC
    from isp_node.pipeline.volume import LocalizerStacks

    cascade = Cascade(models_dir())
    assert cascade.commissure is not None and "Orientation-Net commissure look" in cascade.models
    case = simulate_case(5_600_003, kind="usable", heads=("mni",), resolution_mm=PLANNED_MM)
    truth = case.planes
    to_head = head_frame_transform(truth["MSP"].normal, truth["ACPC"].normal, truth["ACPC"].centre)
    true = np.stack([case.landmarks[AC], case.landmarks[PC]]) @ to_head[:3, :3].T + to_head[:3, 3]
    given = true + np.array([[2.0, -2.0, 2.0], [-2.0, 2.0, 2.0]]) * 2 / np.sqrt(3)  # 4 mm off
    found = cascade._commissures(LocalizerStacks(case.slices), to_head, given)
    assert np.all(np.linalg.norm(found - true, axis=1) < 0.5 * 4.0 + 1.0)
    assert np.linalg.norm(found - true, axis=1).mean() < 2.5
    for name in (IQ_MODEL, COVERAGE_MODEL, ORIENTATION_MODEL, FINE_MODEL):
        shutil.copy(models_dir() / name, tmp_path / name)
    without = Cascade(tmp_path)
    assert without.commissure is None and not (tmp_path / COMMISSURE_MODEL).exists()


def test_the_installed_cascade_keeps_every_plane_in_the_frame_of_the_msp_it_plans():
    """The installed fine stage turns the MSP towards the midline landmarks it finds; every
    plane the catalogue ties to the MSP (`FRAME_NORMALS`), the first stage's ORBIT_COR
    too, keeps its tie to the MSP planned, and AC-PC stays perpendicular to it. The planes
    the catalogue ties to each other are planned so too: IAC_AX and IAC_COR perpendicular
    about one centre, the optic nerves' sagittal planes perpendicular to OPTIC_AX."""
    from isp_node.cascade.evaluation import PLANNED_MM
    from isp_node.geometry.catalogue import FRAME_NORMALS

    cascade = Cascade(models_dir())
    assert cascade.fine_landmarks
    slices = simulate_case(5_600_003, kind="usable", heads=("mni",), resolution_mm=PLANNED_MM).slices
    entries = {p["key"]: p for p in cascade.run(slices)["planes"]}
    planes = {key: np.asarray(p["normal"]) for key, p in entries.items()}
    assert set(planes) == set(PLANE_KEYS)
    assert abs(planes["IAC_AX"] @ planes["IAC_COR"]) < 1e-9
    np.testing.assert_allclose(entries["IAC_AX"]["centre"], entries["IAC_COR"]["centre"], atol=1e-6)
    for key in ("OPTIC_SAG_L", "OPTIC_SAG_R"):
        assert abs(planes[key] @ planes["OPTIC_AX"]) < 1e-9, key
    left = planes["MSP"]
    for key, rule in FRAME_NORMALS.items():
        if rule == "left":
            assert abs(planes[key] @ left) == pytest.approx(1.0, abs=1e-9), key
        else:
            assert abs(planes[key] @ left) < 1e-6, key
