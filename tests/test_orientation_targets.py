"""Orientation-Net's targets decode back into the planes they were made from."""

import numpy as np
import pytest

from isp_node.cascade.orientation import (
    DISTANCE_RANGE_MM, SATURATED_WEIGHT, VOTE_RADIUS_MM, mirrored_plane_array, orientation_grid,
    plane_array, plane_targets, planes_from_outputs, planned_planes, pooled)
from isp_node.geometry import PLANE_KEYS, normal_angle_deg, plane_catalogue, transform_plane
from isp_node.geometry.rotations import head_rotation, rigid
from isp_node.pipeline.volume import Grid


def test_grid_is_centred_on_the_brain_and_scaled_to_it():
    grid = orientation_grid(np.array([5.0, -10.0, 20.0]), 168.0)
    np.testing.assert_allclose(grid.centre, [5.0, -10.0, 20.0])
    assert grid.spacing == 3.5
    assert orientation_grid(np.zeros(3), 60.0).spacing == 2.5  # never finer than the limit


def test_targets_decode_into_the_catalogue_planes(mni_head):
    pose = rigid(head_rotation(14, -6, 9), np.array([4.0, -9.0, 12.0]))
    truth = {key: transform_plane(p, pose) for key, p in plane_catalogue(mni_head.landmarks).items()}
    grid = orientation_grid(truth["ACPC"].centre + np.array([2.0, 20.0, 15.0]), 170.0)
    targets = plane_targets(grid, plane_array(truth))
    assert targets.distance.shape == (*grid.shape, len(PLANE_KEYS))
    assert np.abs(targets.distance).max() <= 1.0 and targets.weight[..., 0].sum() > 1000
    decoded = planes_from_outputs(grid, targets.distance, targets.heat)
    assert set(decoded) == set(PLANE_KEYS)
    for key, found in decoded.items():
        plane = found.plane
        assert normal_angle_deg(plane, truth[key], oriented=True) < 0.05, key
        assert abs(truth[key].signed_distance(plane.centre)) < 0.05, key
        assert np.linalg.norm(plane.centre - truth[key].centre) < 1.0, key  # the heat blob's centre
        np.testing.assert_allclose(plane.row, truth[key].row, atol=2e-3)
        assert plane.fov_mm == truth[key].fov_mm and plane.n_slices == truth[key].n_slices
        assert found.fit.residual_mm < 0.5


def test_fine_targets_decode_into_the_catalogue_planes_in_a_given_frame(mni_head):
    """On the fine grid about the AC-PC midpoint (off by a few mm), the targets decode into
    the planes the fine stage plans; the MSP handed over from the first stage is kept as
    it is, mirror match and all."""
    from dataclasses import replace

    from isp_node.cascade.orientation import FINE_KEYS, fine_grid

    pose = rigid(head_rotation(-11, 7, 4), np.array([3.0, 8.0, -6.0]))
    truth = {key: transform_plane(p, pose) for key, p in plane_catalogue(mni_head.landmarks).items()}
    coarse = planes_from_outputs(*_decodable(orientation_grid(truth["ACPC"].centre, 170.0), truth))
    handed = replace(coarse["MSP"], mirror_match=0.8)
    grid = fine_grid(truth["ACPC"].centre + np.array([3.0, -2.0, 4.0]))
    assert grid.shape == (48, 48, 48) and grid.spacing == 1.5
    decoded = planes_from_outputs(*_decodable(grid, truth), centre_from_acpc_mm=(0.0, 0.0, 0.0),
                                  msp=handed, keys=("MSP",) + FINE_KEYS)
    assert set(decoded) == {"MSP", *FINE_KEYS}  # only the keys asked for
    assert decoded["MSP"].fit is handed.fit and decoded["ACPC"].mirror_match == 0.8
    for key in FINE_KEYS:
        assert normal_angle_deg(decoded[key].plane, truth[key], oriented=True) < 0.05, key
        assert abs(truth[key].signed_distance(decoded[key].plane.centre)) < 0.05, key



def test_the_acpc_plane_turns_towards_the_commissures_found(mni_head):
    """Given AC and PC as points, the fine stage's ACPC plane goes through their midpoint,
    which centres it, perpendicular to the MSP, halfway between its votes' plane (here
    tilted by 5 degrees) and the plane through both points, the catalogue's; points too
    close together for commissures are ignored. The confidence is the votes' plane's,
    which is not perpendicular to the MSP."""
    from isp_node.cascade.orientation import fine_grid
    from isp_node.geometry.catalogue import AC, PC

    pose = rigid(head_rotation(-11, 7, 4), np.array([3.0, 8.0, -6.0]))
    truth = {key: transform_plane(p, pose) for key, p in plane_catalogue(mni_head.landmarks).items()}
    ac, pc = (pose[:3, :3] @ mni_head.landmarks[name] + pose[:3, 3] for name in (AC, PC))
    centre = truth["ACPC"].centre
    tilt = head_rotation(5, 0, 0)
    tilted = {**truth, "ACPC": transform_plane(truth["ACPC"], rigid(tilt, centre - tilt @ centre))}
    msp = planes_from_outputs(*_decodable(orientation_grid(centre, 170.0), truth))["MSP"]
    grid = fine_grid(centre + np.array([3.0, -2.0, 4.0]))
    options = dict(centre_from_acpc_mm=(0.0, 0.0, 0.0), msp=msp, keys=("MSP", "ACPC", "COW"))
    voted = planes_from_outputs(*_decodable(grid, tilted), **options)
    found = planes_from_outputs(*_decodable(grid, tilted), **options, commissures=(ac, pc))
    off = normal_angle_deg(voted["ACPC"].plane, truth["ACPC"], oriented=True)
    assert off > 4.9
    assert normal_angle_deg(found["ACPC"].plane, truth["ACPC"], oriented=True) == pytest.approx(off / 2, abs=0.05)
    assert normal_angle_deg(found["ACPC"].plane, voted["ACPC"].plane) == pytest.approx(off / 2, abs=0.05)
    assert abs(truth["ACPC"].signed_distance(found["ACPC"].plane.centre)) < 0.05
    np.testing.assert_allclose(found["ACPC"].plane.centre, (ac + pc) / 2, atol=0.05)
    assert normal_angle_deg(found["COW"].plane, found["ACPC"].plane, oriented=True) < 0.05  # parallel to it
    implausible = planes_from_outputs(*_decodable(grid, tilted), **options, commissures=(ac, ac + 5.0))
    assert normal_angle_deg(implausible["ACPC"].plane, voted["ACPC"].plane) < 1e-9  # 5 mm apart: votes
    # the confidence still weighs how far the votes' plane was from perpendicular to the MSP
    assert found["ACPC"].frame_error_deg > 0.1 and voted["ACPC"].frame_error_deg is None
    confidences = [[p["confidence"] for p in planned_planes(planes)] for planes in (voted, found)]
    assert confidences[0] == confidences[1]


def test_through_commissures_tilts_the_plane_by_their_height_difference():
    """PC 2.8 mm below AC over 28 mm behind it: the plane through both is pitched by
    atan(0.1) = 5.71 degrees, its normal on the side the votes' was, its offset that of
    their midpoint; halfway from the votes' plane (pitched 5.71 degrees the other way), it
    is level."""
    from isp_node.cascade.orientation import through_commissures
    from isp_node.geometry.fitting import PlaneFit

    votes = PlaneFit(np.array([0.0, 0.1, -1.0]) / np.sqrt(1.01), 3.0, 0.7, 900.0, 1.0)
    ends = np.array([2.0, 0.0, 0.0]), np.array([3.0, 28.0, -2.8])
    fit = through_commissures(votes, np.array([1.0, 0.0, 0.0]), *ends, weight=1.0)
    np.testing.assert_allclose(fit.normal, -np.array([0.0, 2.8, 28.0]) / np.hypot(2.8, 28.0))
    assert np.degrees(np.arccos(-fit.normal[2])) == pytest.approx(5.7106, abs=1e-4)
    assert fit.offset == pytest.approx(fit.normal @ [2.5, 14.0, -1.4])
    assert (fit.residual_mm, fit.support, fit.gradient) == (0.7, 900.0, 1.0)
    halfway = through_commissures(votes, np.array([1.0, 0.0, 0.0]), *ends, weight=0.5)
    np.testing.assert_allclose(halfway.normal, [0.0, 0.0, -1.0], atol=1e-12)
    assert halfway.offset == pytest.approx(1.4)


def test_iac_planes_take_the_acpc_pitch_keep_their_places_and_share_a_centre():
    """IAC_AX found level, its line rolled 10 degrees, in a frame pitched 0.1 rad: it comes out
    with the frame's pitch and the line's roll, IAC_COR perpendicular to it and the MSP; each
    plane where it was, both about one centre."""
    from isp_node.cascade.orientation import FittedPlane, frame_from, iac_planes
    from isp_node.geometry.catalogue import make_plane
    from isp_node.geometry.fitting import PlaneFit

    frame = frame_from(np.array([1.0, 0.0, 0.0]), np.array([0.0, np.sin(0.1), np.cos(0.1)]))
    roll = np.radians(10.0)
    found_ax = np.array([-np.sin(roll), 0.0, np.cos(roll)])
    found_cor = np.array([0.1, 1.0, 0.2]) / np.linalg.norm([0.1, 1.0, 0.2])
    places = {"IAC_AX": np.array([1.0, 20.0, -40.0]), "IAC_COR": np.array([0.0, 22.0, -35.0])}
    fits = {key: PlaneFit(n, float(n @ places[key]), 1.0, 500.0, 1.0)
            for key, n in (("IAC_AX", found_ax), ("IAC_COR", found_cor))}
    ax, cor = iac_planes(*(FittedPlane(make_plane(key, places[key], fits[key].normal, frame), fits[key])
                           for key in ("IAC_AX", "IAC_COR")), frame)
    # the superior axis (0, sin 0.1, cos 0.1) made orthogonal to the line (cos r, 0, sin r)
    expected = np.array([-np.cos(0.1) * np.sin(roll) * np.cos(roll), np.sin(0.1), np.cos(0.1) * np.cos(roll) ** 2])
    np.testing.assert_allclose(ax.plane.normal, expected / np.linalg.norm(expected), atol=1e-12)
    assert ax.plane.normal @ cor.plane.normal == pytest.approx(0.0, abs=1e-12)
    assert cor.plane.normal @ frame.left == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(ax.plane.centre, cor.plane.centre)
    for plane, key in ((ax, "IAC_AX"), (cor, "IAC_COR")):
        assert (plane.plane.centre - places[key]) @ plane.plane.normal == pytest.approx(0.0, abs=1e-9)
        assert plane.fit == fits[key]


def test_perpendicular_to_turns_a_sagittal_plane_least_about_its_centre():
    """A sagittal plane tilted 0.2 rad towards Superior, made perpendicular to an axial plane:
    it turns upright about its centre, its fit untouched."""
    from isp_node.cascade.orientation import FittedPlane, frame_from, perpendicular_to
    from isp_node.geometry.catalogue import make_plane
    from isp_node.geometry.fitting import PlaneFit

    frame = frame_from(np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0]))
    normal, centre = np.array([np.cos(0.2), 0.0, np.sin(0.2)]), np.array([25.0, -50.0, -30.0])
    fit = PlaneFit(normal, float(normal @ centre), 1.0, 500.0, 1.0)
    found = FittedPlane(make_plane("OPTIC_SAG_L", centre, normal, frame), fit)
    turned = perpendicular_to(found, "OPTIC_SAG_L", np.array([0.0, 0.0, 1.0]), frame)
    np.testing.assert_allclose(turned.plane.normal, [1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(turned.plane.centre, centre)
    assert turned.fit == fit


def test_towards_midline_turns_the_msp_to_the_plane_of_the_points():
    """Midline points on a plane turned 10 degrees from the MSP about the posterior axis, 2 mm
    to its left at their centroid: all the way (weight 1) the MSP is their plane, normal on
    its own side; at 0.3 it is turned by the angle of the blended normals and moved 0.3 of
    the way to the centroid."""
    from isp_node.cascade.orientation import towards_midline
    from isp_node.geometry.fitting import PlaneFit

    msp = PlaneFit(np.array([1.0, 0.0, 0.0]), 0.0, 0.6, 800.0, 1.0)
    normal = -head_rotation(0, 10, 0)[:, 0]  # the points' plane, its normal the other way
    along = np.array([[0.0, 0.0, 0.0], [0.0, 25.0, 0.0], [0.0, 0.0, 20.0], [0.0, -15.0, -10.0],
                      [0.0, 10.0, 30.0]]) @ head_rotation(0, 10, 0).T
    points = along - along.mean(axis=0) + [2.0, 5.0, 3.0]
    fit = towards_midline(msp, points, weight=1.0)
    np.testing.assert_allclose(fit.normal, -normal, atol=1e-12)
    assert fit.offset == pytest.approx(-normal @ [2.0, 5.0, 3.0])
    partly = towards_midline(msp, points, weight=0.3)
    blend = 0.7 * msp.normal - 0.3 * normal
    np.testing.assert_allclose(partly.normal, blend / np.linalg.norm(blend), atol=1e-12)
    assert partly.normal @ [0.6, 5.0, 3.0] == pytest.approx(partly.offset)  # 0.3 of 2 mm left
    assert (partly.residual_mm, partly.support, partly.gradient) == (0.6, 800.0, 1.0)


def test_the_msp_turns_towards_the_midline_landmarks_found(mni_head):
    """Given the MSP (here turned 4 degrees off) and at least four midline landmarks, the
    fine stage turns the MSP MIDLINE_WEIGHT of the way to the landmarks' plane; with three,
    or with points on a line, it keeps the MSP given. Only landmarks inside the grid, a voxel
    from its faces, count."""
    from isp_node.cascade.orientation import (
        MIDLINE_WEIGHT, MSP_LANDMARKS, FittedPlane, fine_grid, within)
    from isp_node.geometry.catalogue import fit_plane

    truth = plane_catalogue(mni_head.landmarks)
    centre = truth["ACPC"].centre
    grid = fine_grid(centre)
    points = np.stack([mni_head.landmarks[name] for name in MSP_LANDMARKS])
    inside = within(grid, points)
    assert inside.sum() >= 6 and not within(grid, grid.origin + 0.5 * grid.spacing)[0]
    turn = head_rotation(0, 4, 0)
    given = planes_from_outputs(*_decodable(orientation_grid(centre, 170.0), {
        **truth, "MSP": transform_plane(truth["MSP"], rigid(turn, centre - turn @ centre))}))["MSP"]
    assert isinstance(given, FittedPlane)
    options = dict(centre_from_acpc_mm=(0.0, 0.0, 0.0), msp=given, keys=("MSP", "ACPC"))
    kept = planes_from_outputs(*_decodable(grid, truth), **options, midline=points[inside][:3])
    assert normal_angle_deg(kept["MSP"].plane, given.plane) < 1e-9
    on_a_line = centre + np.outer(np.arange(6.0), [0.0, 4.0, 1.0])  # no plane: kept, no error
    kept = planes_from_outputs(*_decodable(grid, truth), **options, midline=on_a_line)
    assert normal_angle_deg(kept["MSP"].plane, given.plane) < 1e-9
    turned = planes_from_outputs(*_decodable(grid, truth), **options, midline=points[inside])
    _, normal = fit_plane(points[inside])
    off = np.degrees(np.arccos(abs(given.fit.normal @ normal)))
    assert off > 3.0
    assert normal_angle_deg(turned["MSP"].plane, given.plane) == pytest.approx(
        np.degrees(np.arctan2(MIDLINE_WEIGHT * np.sin(np.radians(off)),
                              1 - MIDLINE_WEIGHT + MIDLINE_WEIGHT * np.cos(np.radians(off)))), abs=0.01)
    assert normal_angle_deg(turned["ACPC"].plane, turned["MSP"].plane) == pytest.approx(90.0, abs=1e-6)


def test_landmark_targets_decode_into_their_points():
    """A landmark's target is a Gaussian summing to 1 about it; the points decoded from its
    logarithm lie within 0.05 mm of the truth; a point off the grid learns nothing."""
    from isp_node.cascade.orientation import (
        LANDMARK_SIGMA_MM, fine_grid, landmark_points, landmark_targets)

    grid = fine_grid(np.array([3.0, -10.0, 5.0]))
    points = grid.centre + np.array([[1.3, -2.2, 0.4], [10.1, 5.0, -7.7], [100.0, 0.0, 0.0]])
    targets = landmark_targets(grid, points)
    assert targets.shape == (*grid.shape, 3)
    np.testing.assert_allclose(targets.sum(axis=(0, 1, 2)), [1.0, 1.0, 0.0], atol=1e-5)
    voxels = grid.points()
    spread = np.sqrt((targets[..., 0, None] * (voxels - points[0]) ** 2).sum(axis=(0, 1, 2)))
    np.testing.assert_allclose(spread, LANDMARK_SIGMA_MM, rtol=0.02)
    found = landmark_points(np.log(targets[..., :2] + 1e-12), grid)
    np.testing.assert_allclose(found, points[:2], atol=0.05)

def _decodable(grid, truth: dict) -> tuple:
    """(grid, distance, heat) as a perfect network would give them for `truth`."""
    targets = plane_targets(grid, plane_array(truth))
    return grid, targets.distance, targets.heat


def _mirrored_landmarks(landmarks: dict, x_mm: float) -> dict:
    """The landmarks of the head mirrored about x = `x_mm`: positions reflected, left and
    right names swapped."""
    def swapped(name: str) -> str:
        for left, right in (("AFID:L ", "AFID:R "), ("L_", "R_")):
            if name.startswith(left):
                return right + name[len(left):]
            if name.startswith(right):
                return left + name[len(right):]
        return name
    return {swapped(k): np.array([2 * x_mm - v[0], v[1], v[2]]) for k, v in landmarks.items()}


def test_mirrored_planes_are_the_catalogue_planes_of_the_mirrored_head(mni_head):
    """Training on mirror images needs the planes a mirrored head has: the catalogue,
    computed from the mirrored landmarks, must agree, sides and normals' signs included."""
    pose = rigid(head_rotation(12, -7, 5), np.array([3.0, -8.0, 10.0]))
    landmarks = {k: pose[:3, :3] @ v + pose[:3, 3] for k, v in mni_head.landmarks.items()}
    planes = plane_array(plane_catalogue(landmarks))
    mirrored = mirrored_plane_array(planes, 7.5)
    expected = plane_array(plane_catalogue(_mirrored_landmarks(landmarks, 7.5)))
    np.testing.assert_allclose(mirrored, expected, atol=1e-3)
    assert not np.allclose(mirrored, planes, atol=1.0)
    np.testing.assert_allclose(mirrored_plane_array(mirrored, 7.5), planes, atol=1e-4)


def test_distance_is_learnt_wherever_the_decoding_looks_for_votes(mni_head):
    truth = plane_catalogue(mni_head.landmarks)
    grid = orientation_grid(truth["ACPC"].centre, 170.0)
    targets = plane_targets(grid, plane_array(truth))
    points = grid.points().reshape(-1, 3)
    for k, key in enumerate(PLANE_KEYS):
        plane = truth[key]
        d = (points - plane.centre) @ plane.normal
        looked_at = np.linalg.norm(points - plane.centre, axis=1) < VOTE_RADIUS_MM[key] + DISTANCE_RANGE_MM
        weight = targets.weight[..., k].ravel()
        assert np.all(weight[looked_at & (np.abs(d) < DISTANCE_RANGE_MM - 0.1)] == 1.0), key
        assert np.all(weight[looked_at & (np.abs(d) > DISTANCE_RANGE_MM + 0.1)] == SATURATED_WEIGHT), key
        assert np.all(np.abs(targets.distance[..., k].ravel()[np.abs(d) > DISTANCE_RANGE_MM]) == 1.0)


def test_wrong_votes_far_from_the_plane_are_rejected(mni_head):
    truth = plane_catalogue(mni_head.landmarks)
    grid = orientation_grid(truth["ACPC"].centre, 170.0)
    targets = plane_targets(grid, plane_array(truth))
    distance = targets.distance.copy()
    rng = np.random.default_rng(0)
    corrupt = rng.random(grid.shape) < 0.1  # a tenth of the voxels vote 8-15 mm off
    distance[corrupt] += rng.uniform(8, 15, corrupt.sum())[:, None] / DISTANCE_RANGE_MM
    decoded = planes_from_outputs(grid, distance, targets.heat)
    assert normal_angle_deg(decoded["MSP"].plane, truth["MSP"]) < 0.3
    assert abs(truth["ACPC"].signed_distance(decoded["ACPC"].plane.centre)) < 0.3


def test_exact_votes_give_confident_planes_and_bent_ones_do_not(mni_head):
    from isp_node.pipeline.result import PlanningResult

    truth = plane_catalogue(mni_head.landmarks)
    grid = orientation_grid(truth["ACPC"].centre, 170.0)
    targets = plane_targets(grid, plane_array(truth))
    entries = planned_planes(planes_from_outputs(grid, targets.distance, targets.heat))
    assert {e["key"] for e in entries} == set(PLANE_KEYS)
    assert all(e["status"] == "OK" and e["confidence"] > 0.9 for e in entries)
    # the planner's JSON is what the result objects read
    result = PlanningResult.from_json({"usable": True, "message": "ok", "planes": entries})
    assert len(result.planes) == len(PLANE_KEYS)
    noisy = targets.distance + np.random.default_rng(1).normal(0, 0.4, targets.distance.shape)
    bent = planned_planes(planes_from_outputs(grid, noisy.astype(np.float32), targets.heat))
    assert all(e["status"] != "OK" for e in bent)


def test_a_head_that_does_not_mirror_itself_lowers_every_plane_s_confidence(mni_head):
    from dataclasses import replace

    from isp_node.cascade.orientation import planned_planes

    truth = plane_catalogue(mni_head.landmarks)
    grid = orientation_grid(truth["ACPC"].centre, 170.0)
    targets = plane_targets(grid, plane_array(truth))
    fitted = planes_from_outputs(grid, targets.distance, targets.heat)

    def confidences(match):
        return [e["confidence"] for e in planned_planes(
            {key: replace(found, mirror_match=match) for key, found in fitted.items()})]

    unchecked = confidences(None)
    assert confidences(0.95) == unchecked  # a convincing mirror image changes nothing
    assert all(c == pytest.approx(0.25 * u, abs=1e-4) for c, u in zip(confidences(0.0), unchecked))
    assert all(c < u for c, u in zip(confidences(0.7), unchecked))


def _entries(planes: dict, status: str = "OK") -> list[dict]:
    """Planner JSON entries of known planes."""
    from isp_node.geometry.planes import plane_json

    return [{"key": key, **plane_json(p), "confidence": 0.9, "status": status}
            for key, p in planes.items()]


def test_evaluation_measures_known_errors():
    """A planner whose MSP is turned by 2 degrees and whose ACPC is shifted by 1.5 mm is
    measured as exactly that, its other planes as exact; the localizers it refuses and
    the unusable ones it plans all the same are counted apart."""
    from isp_node.cascade.evaluation import evaluate_orientation
    from isp_node.geometry.planes import Plane
    from isp_node.simulation.protocols import PROTOCOLS

    seen = []

    def plan(case):
        seen.append(case.usable)
        if case.usable and seen.count(True) == 1:
            return []  # the first usable localizer refused
        wrong = dict(case.planes)
        rotation = head_rotation(0, 0, 2.0)  # yaw turns the MSP normal by 2 degrees
        msp, acpc = wrong["MSP"], wrong["ACPC"]
        wrong["MSP"] = Plane(msp.centre, rotation @ msp.normal, rotation @ msp.row,
                             rotation @ msp.col, msp.fov_mm, msp.slab_mm, msp.n_slices, msp.spacing_mm)
        wrong["ACPC"] = Plane(acpc.centre + 1.5 * acpc.normal, acpc.normal, acpc.row, acpc.col,
                              acpc.fov_mm, acpc.slab_mm, acpc.n_slices, acpc.spacing_mm)
        return _entries(wrong)

    records = []
    result = evaluate_orientation(plan, range(2_000_000, 2_000_006), "mni", unusable_fraction=0.5,
                                  records=records, progress=False)
    usable, unusable = seen.count(True), seen.count(False)
    assert usable >= 2 and unusable >= 1  # these seeds give both
    assert result["cases"] == usable and result["refused"] == 1 and result["planes_missing"] == 0
    assert result["unusable_planned"]["cases"] == result["unusable_planned"]["of"] == unusable
    assert abs(result["unusable_planned"]["angle_deg_median"]["MSP"] - 2.0) < 0.05
    assert len(records) == (usable - 1) * len(PLANE_KEYS)
    assert abs(result["angle_deg_median_p95_max"]["MSP"][0] - 2.0) < 0.05
    assert abs(result["distance_mm_median_p95_max"]["ACPC"][0] - 1.5) < 0.05
    assert result["angle_deg_median_p95_max"]["OM"][2] <= 0.02  # truth held as float32
    assert result["distance_mm_median_p95_max"]["COW"][2] <= 0.02
    by_tilt = result["angle_deg_median_by_tilt"]
    assert sum(band["cases"] for band in by_tilt.values()) == usable - 1
    by_protocol = result["angle_deg_distance_mm_median_by_protocol"]
    assert sum(p["cases"] for p in by_protocol.values()) == usable - 1
    assert set(by_protocol) <= set(PROTOCOLS)
    assert all(abs(p["MSP"][0] - 2.0) < 0.05 and abs(p["ACPC"][1] - 1.5) < 0.05
               for p in by_protocol.values())
    assert result["bad_planes"] == 0 and result["good_planes_not_ok"] == 0.0


def test_consistency_of_true_planes_is_exact():
    """The true planes of each pose, carried back into the head, coincide: the spread
    measures the planner, not the bookkeeping of poses."""
    from isp_node.cascade.evaluation import evaluate_consistency

    result = evaluate_consistency(lambda case: _entries(case.planes), "mni", range(11, 12),
                                  poses=3, progress=False)
    assert set(result["angle_sd_deg"]) == set(PLANE_KEYS)
    assert max(result["angle_sd_deg"].values()) < 0.05
    assert max(result["distance_sd_mm"].values()) < 0.05


def test_plane_spread_of_known_planes():
    from isp_node.cascade.evaluation import plane_spread

    tilt = np.radians(1.0)
    planes = [(np.array([np.sin(tilt), 0.0, np.cos(tilt)]), np.array([0.0, 0.0, 0.5])),
              (np.array([np.sin(tilt), 0.0, -np.cos(tilt)]), np.array([0.0, 0.0, -0.5]))]  # flipped
    angle, distance = plane_spread(planes)
    assert abs(angle - 1.0) < 1e-6 and abs(distance - 0.5) < 1e-3


def test_head_frame_transform_turns_the_head_upright_about_the_centre(mni_head):
    from isp_node.cascade.orientation import head_frame_transform

    pose = rigid(head_rotation(21, -9, 13), np.array([5.0, -7.0, 11.0]))
    truth = {key: transform_plane(p, pose) for key, p in plane_catalogue(mni_head.landmarks).items()}
    centre = truth["ACPC"].centre + np.array([2.0, -1.0, 3.0])
    to_head = head_frame_transform(truth["MSP"].normal, truth["ACPC"].normal, centre)
    upright = {key: transform_plane(p, to_head) for key, p in truth.items()}
    np.testing.assert_allclose(upright["MSP"].normal, [1, 0, 0], atol=1e-9)
    np.testing.assert_allclose(upright["ACPC"].normal, [0, 0, 1], atol=1e-9)
    np.testing.assert_allclose(to_head[:3, :3] @ centre + to_head[:3, 3], centre, atol=1e-9)
    untouched = {key: transform_plane(p, pose) for key, p in plane_catalogue(mni_head.landmarks).items()}
    assert normal_angle_deg(upright["HIPPO_AX"], untouched["HIPPO_AX"]) > 5  # it did turn


def test_a_fitted_plane_and_its_votes_move_together():
    from isp_node.cascade.orientation import FittedPlane, moved_fit
    from isp_node.geometry.fitting import fit_distance_votes
    from isp_node.geometry.planes import Plane

    rng = np.random.default_rng(0)
    normal = np.array([0.6, 0.0, 0.8])
    points = rng.uniform(-30, 30, (500, 3))
    fit = fit_distance_votes(points, points @ normal - 4.0)
    plane = Plane(normal * 4.0, normal, np.array([0.0, 1.0, 0.0]), np.cross(normal, [0.0, 1.0, 0.0]),
                  (200.0, 200.0), 5.0, 1, 5.0)
    matrix = rigid(head_rotation(10, 20, -30), np.array([3.0, -4.0, 5.0]))
    moved = moved_fit(FittedPlane(plane, fit, 0.7), matrix)
    on_plane = matrix[:3, :3] @ (normal * 4.0 + np.array([0.0, 7.0, 0.0])) + matrix[:3, 3]
    assert abs(on_plane @ moved.fit.normal - moved.fit.offset) < 1e-9
    assert abs(moved.plane.signed_distance(on_plane)) < 1e-9 and moved.mirror_match == 0.7
    back = moved_fit(moved, np.linalg.inv(matrix))
    np.testing.assert_allclose(back.fit.normal, fit.normal, atol=1e-12)
    assert abs(back.fit.offset - fit.offset) < 1e-9


def test_pooled_distances_keep_a_linear_field_at_the_blocks_centres():
    grid = Grid.centred(np.array([1.0, -2.0, 3.0]), (7, 6, 6), 1.5)  # the seventh row is dropped
    normal = np.array([0.36, 0.48, 0.8])
    field = np.stack([grid.projection(np.zeros(3), normal).reshape(grid.shape), np.ones(grid.shape)], -1)
    blocks, pooled_field = pooled(grid, field, 2)
    assert blocks.shape == (3, 3, 3) and blocks.spacing == 3.0
    np.testing.assert_allclose(blocks.origin, grid.origin + 0.75)
    np.testing.assert_allclose(pooled_field[..., 0], blocks.projection(np.zeros(3), normal).reshape(3, 3, 3),
                               atol=1e-5)
    np.testing.assert_allclose(pooled_field[..., 1], 1.0)
    same_grid, same_field = pooled(grid, field, 1)
    assert same_grid is grid and same_field is field
