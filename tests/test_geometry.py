"""Plane catalogue, plane transforms and plane metrics on synthetic landmark sets."""

import numpy as np
import pytest

from isp_node.geometry import PLANE_KEYS, Plane, centre_distance_mm, normal_angle_deg, plane_catalogue, transform_plane
from isp_node.geometry.planes import orthogonal_unit, orthonormal
from isp_node.geometry.catalogue import (
    FRAME_NORMALS, PRESCRIPTIONS, fit_plane, frame_constrained_normal, head_frame, hippocampal_axis,
    iac_line, iac_normals)

A = "AFID:"
X, Y, Z = np.eye(3)  # Left, Posterior, Superior in LPS

MIDLINE = {
    "AC": (0, -3, -5), "PC": (0, 25, -5), "infracollicular sulcus": (0, 37, -11), "PMJ": (0, 23, -21),
    "superior interpeduncular fossa": (0, 15, -11), "culmen": (0, 52, 2), "intermammillary sulcus": (0, 8, -15),
    "pineal gland": (0, 32, 1), "genu of CC": (0, -33, 3), "splenium of CC": (0, 38, 6),
}
PAIRED = {  # left-side coordinates; the right side is the mirror image
    "superior LMS": (13, 27, -10), "inferior LMS": (11, 30, -21), "MB": (2, 8, -15), "LV at AC": (15, -5, 24),
    "LV at PC": (19, 22, 27), "AL temporal horn": (35, 6, -26), "superior AM temporal horn": (20, 11, -17),
    "inferior AM temporal horn": (22, 5, -28), "indusium griseum origin": (15, 41, 4),
    "ventral occipital horn": (20, 80, 4), "olfactory sulcal fundus": (13, -17, -13),
}
OWN_PAIRED = {
    "LATERAL_CANTHUS": (46, -69, -41), "EAM": (74, 24, -57), "GLOBE_POSTERIOR_POLE": (34, -46, -41),
    "OPTIC_CANAL": (17, -25, -31), "IAC": (31, 27, -42),
}
OWN_MIDLINE = {"OPTIC_CHIASM": (0, -4, -20), "PITUITARY": (0, -1, -32), "BASILAR_TIP": (0, 10, -24)}


def aligned_head() -> dict[str, np.ndarray]:
    """A symmetric head in standard pose: MSP is x = 0 and AC-PC is horizontal along +y."""
    lm = {A + k: np.array(v, float) for k, v in MIDLINE.items()}
    for k, v in PAIRED.items():
        lm[f"{A}L {k}"] = np.array(v, float)
        lm[f"{A}R {k}"] = np.array(v, float) * [-1, 1, 1]
    for k, v in OWN_PAIRED.items():
        lm[f"L_{k}"] = np.array(v, float)
        lm[f"R_{k}"] = np.array(v, float) * [-1, 1, 1]
    lm.update({k: np.array(v, float) for k, v in OWN_MIDLINE.items()})
    return lm


def random_rigid(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q @ np.diag(np.sign(np.diag(r)))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    m = np.eye(4)
    m[:3, :3] = q
    m[:3, 3] = rng.uniform(-60, 60, 3)
    return m


def rotation_about(axis: np.ndarray, degrees: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    t = np.radians(degrees)
    m = np.eye(4)
    m[:3, :3] = np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k
    return m


def apply(m: np.ndarray, landmarks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: m[:3, :3] @ v + m[:3, 3] for k, v in landmarks.items()}


def test_catalogue_has_every_key_of_the_contract():
    planes = plane_catalogue(aligned_head())
    assert tuple(planes) == PLANE_KEYS == (
        "MSP", "ACPC", "OM", "OPTIC_AX", "OPTIC_SAG_L", "OPTIC_SAG_R", "ORBIT_COR", "PIT_SAG", "PIT_COR",
        "IAC_AX", "IAC_COR", "HIPPO_AX", "HIPPO_COR", "COW")
    for key, plane in planes.items():
        rx = PRESCRIPTIONS[key]
        assert plane.fov_mm == rx.fov_mm and plane.n_slices == rx.n_slices
        assert plane.slab_mm == pytest.approx(plane.n_slices * plane.spacing_mm)


@pytest.mark.parametrize("seed", range(5))
def test_rigid_transform_of_landmarks_moves_every_plane_the_same_way(seed):
    rng = np.random.default_rng(seed)
    lm = aligned_head()
    lm = {k: v + rng.normal(0, 1.5, 3) for k, v in lm.items()}  # break the symmetry
    m = random_rigid(rng)
    moved = plane_catalogue(apply(m, lm))
    for key, plane in plane_catalogue(lm).items():
        expected = transform_plane(plane, m)
        got = moved[key]
        for attr in ("centre", "normal", "row", "col"):
            np.testing.assert_allclose(getattr(got, attr), getattr(expected, attr), atol=1e-8, err_msg=f"{key}.{attr}")


def test_standard_pose_gives_scanner_orientations():
    planes = plane_catalogue(aligned_head())
    for key in ("MSP", "PIT_SAG"):
        np.testing.assert_allclose([planes[key].normal, planes[key].row, planes[key].col], [X, Y, -Z], atol=1e-9)
    for key in ("ACPC", "COW", "IAC_AX"):
        np.testing.assert_allclose([planes[key].normal, planes[key].row, planes[key].col], [Z, X, Y], atol=1e-9)
    for key in ("PIT_COR", "IAC_COR"):
        np.testing.assert_allclose([planes[key].normal, planes[key].row, planes[key].col], [Y, X, -Z], atol=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_normals_point_left_posterior_superior_in_any_pose(seed):
    rng = np.random.default_rng(seed)
    m = random_rigid(rng)
    planes = plane_catalogue(apply(m, aligned_head()))
    left, posterior, superior = m[:3, :3].T  # head axes after the pose
    kinds = {"sagittal": left, "coronal": posterior, "axial": superior}
    for key, plane in planes.items():
        assert plane.normal @ kinds[PRESCRIPTIONS[key].kind] > 0.3, key


@pytest.mark.parametrize("seed", range(3))
def test_catalogue_planes_obey_the_frame_constraints_and_tilted_normals_are_brought_back(seed):
    rng = np.random.default_rng(seed)
    lm = apply(random_rigid(rng), {k: v + rng.normal(0, 2.0, 3) for k, v in aligned_head().items()})
    frame, planes = head_frame(lm), plane_catalogue(lm)
    for key, plane in planes.items():
        np.testing.assert_allclose(frame_constrained_normal(key, plane.normal, frame), plane.normal,
                                   atol=1e-9, err_msg=key)
        tilted = (rotation_about(frame.left + frame.superior, 5.0)[:3, :3] @ plane.normal) * 3.0
        corrected = frame_constrained_normal(key, tilted, frame)
        assert np.linalg.norm(corrected) == pytest.approx(1.0)
        if FRAME_NORMALS.get(key) in ("left", "posterior", "superior"):
            np.testing.assert_allclose(corrected, plane.normal, atol=1e-9, err_msg=key)
        elif key in FRAME_NORMALS:
            assert corrected @ frame.left == pytest.approx(0.0, abs=1e-9), key
        else:
            np.testing.assert_allclose(corrected, tilted / 3.0, atol=1e-9, err_msg=key)


def test_msp_is_the_midline_plane_and_centred_on_projected_acpc_midpoint():
    lm = aligned_head()
    lm = {k: v + [5.0, 0, 0] for k, v in lm.items()}  # head shifted 5 mm to the left
    msp = plane_catalogue(lm)["MSP"]
    np.testing.assert_allclose(msp.normal, X, atol=1e-9)
    np.testing.assert_allclose(msp.centre, [5.0, 11.0, -5.0], atol=1e-9)


def test_msp_normal_follows_patient_left_when_sides_are_swapped():
    swapped = {k.replace("L ", "#").replace("R ", "L ").replace("#", "R "): v for k, v in aligned_head().items()}
    assert plane_catalogue(swapped)["MSP"].normal @ X == pytest.approx(-1.0)


def test_acpc_contains_ac_and_pc_and_is_perpendicular_to_msp():
    rng = np.random.default_rng(7)
    lm = {k: v + rng.normal(0, 2.0, 3) for k, v in aligned_head().items()}
    planes = plane_catalogue(lm)
    acpc, msp = planes["ACPC"], planes["MSP"]
    assert acpc.signed_distance(lm[A + "AC"]) == pytest.approx(0, abs=1e-9)
    assert acpc.signed_distance(lm[A + "PC"]) == pytest.approx(0, abs=1e-9)
    assert acpc.normal @ msp.normal == pytest.approx(0, abs=1e-9)
    np.testing.assert_allclose(acpc.centre, (lm[A + "AC"] + lm[A + "PC"]) / 2)


def test_tilted_acpc_line_tilts_acpc_plane():
    lm = aligned_head()
    lm[A + "PC"] = lm[A + "AC"] + 28 * np.array([0, np.cos(np.radians(10)), np.sin(np.radians(10))])
    acpc = plane_catalogue(lm)["ACPC"]
    np.testing.assert_allclose(acpc.normal, [0, -np.sin(np.radians(10)), np.cos(np.radians(10))], atol=1e-9)


def test_om_through_points_on_a_known_plane_is_that_plane():
    lm = aligned_head()
    normal = np.array([0, np.sin(np.radians(12)), np.cos(np.radians(12))])
    centre = np.array([0, -20, -50.0])
    basis_y = np.cross(normal, X)
    for key, (x, s) in {"L_LATERAL_CANTHUS": (46, 47), "R_LATERAL_CANTHUS": (-46, 47),
                        "L_EAM": (74, -47), "R_EAM": (-74, -47)}.items():
        lm[key] = centre + x * X + s * basis_y
    om = plane_catalogue(lm)["OM"]
    np.testing.assert_allclose(om.normal, normal, atol=1e-9)
    np.testing.assert_allclose(om.centre, centre, atol=1e-9)
    np.testing.assert_allclose(om.row, X, atol=1e-9)


def test_optic_planes_contain_their_defining_points():
    rng = np.random.default_rng(3)
    lm = {k: v + rng.normal(0, 1.0, 3) for k, v in aligned_head().items()}
    planes = plane_catalogue(lm)
    ax = planes["OPTIC_AX"]
    for key in ("L_GLOBE_POSTERIOR_POLE", "R_GLOBE_POSTERIOR_POLE", "OPTIC_CHIASM"):
        assert ax.signed_distance(lm[key]) == pytest.approx(0, abs=1e-9)
    for side in "LR":
        sag = planes[f"OPTIC_SAG_{side}"]
        assert sag.signed_distance(lm[f"{side}_GLOBE_POSTERIOR_POLE"]) == pytest.approx(0, abs=1e-9)
        assert sag.signed_distance(lm[f"{side}_OPTIC_CANAL"]) == pytest.approx(0, abs=1e-9)
        assert sag.normal @ ax.normal == pytest.approx(0, abs=1e-9)
    cor = planes["ORBIT_COR"]
    assert cor.normal @ ax.normal == pytest.approx(0, abs=1e-9)
    assert cor.normal @ planes["MSP"].normal == pytest.approx(0, abs=1e-9)
    np.testing.assert_allclose(cor.centre, (lm["L_GLOBE_POSTERIOR_POLE"] + lm["R_GLOBE_POSTERIOR_POLE"]) / 2)


def test_optic_axial_of_symmetric_head_rises_towards_the_chiasm():
    lm = aligned_head()
    ax = plane_catalogue(lm)["OPTIC_AX"]
    pole, chiasm = lm["L_GLOBE_POSTERIOR_POLE"], lm["OPTIC_CHIASM"]
    tilt = np.degrees(np.arctan2(chiasm[2] - pole[2], chiasm[1] - pole[1]))
    np.testing.assert_allclose(ax.normal, [0, -np.sin(np.radians(tilt)), np.cos(np.radians(tilt))], atol=1e-9)


def test_pituitary_planes():
    lm = aligned_head()
    planes = plane_catalogue(lm)
    for key in ("PIT_SAG", "PIT_COR"):
        np.testing.assert_allclose(planes[key].centre, lm["PITUITARY"])
    assert planes["PIT_SAG"].normal @ planes["MSP"].normal == pytest.approx(1)
    assert planes["PIT_COR"].normal @ planes["ACPC"].normal == pytest.approx(0, abs=1e-12)


def test_iac_planes_follow_the_line_between_the_canals():
    lm = aligned_head()
    lm["R_IAC"] = lm["R_IAC"] + [0, 0, -6.0]  # right canal lower: the line tilts in the coronal plane
    planes = plane_catalogue(lm)
    iac_ax, iac_cor = planes["IAC_AX"], planes["IAC_COR"]
    for key in ("L_IAC", "R_IAC"):
        assert iac_ax.signed_distance(lm[key]) == pytest.approx(0, abs=1e-9)
        assert iac_cor.signed_distance(lm[key]) == pytest.approx(0, abs=1e-9)
    line = (lm["R_IAC"] - lm["L_IAC"]) / np.linalg.norm(lm["R_IAC"] - lm["L_IAC"])
    expected = Z - (Z @ line) * line
    np.testing.assert_allclose(iac_ax.normal, expected / np.linalg.norm(expected), atol=1e-9)
    assert iac_cor.normal @ iac_ax.normal == pytest.approx(0, abs=1e-9)
    np.testing.assert_allclose(iac_cor.normal, Y, atol=1e-9)


def test_hippocampal_planes_use_the_long_axis_without_its_left_right_part():
    lm = aligned_head()
    planes = plane_catalogue(lm)
    d = np.array(PAIRED["indusium griseum origin"]) - np.array(PAIRED["inferior AM temporal horn"])
    axis = np.array([0, d[1], d[2]]) / np.hypot(d[1], d[2])
    np.testing.assert_allclose(planes["HIPPO_COR"].normal, axis, atol=1e-9)
    assert planes["HIPPO_AX"].normal @ axis == pytest.approx(0, abs=1e-9)
    assert planes["HIPPO_AX"].normal @ X == pytest.approx(0, abs=1e-9)
    assert planes["HIPPO_AX"].normal @ Z > 0
    centre = np.mean([lm[f"{A}{s} {p} AM temporal horn"] for s in "LR" for p in ("superior", "inferior")], axis=0)
    np.testing.assert_allclose(planes["HIPPO_COR"].centre, centre)
    np.testing.assert_allclose(hippocampal_axis(planes["HIPPO_AX"].normal, head_frame(lm)), axis, atol=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_hippocampal_axis_of_the_axial_plane_is_the_coronal_normal_in_any_pose(seed):
    rng = np.random.default_rng(seed)
    lm = apply(random_rigid(rng), {k: v + rng.normal(0, 2.0, 3) for k, v in aligned_head().items()})
    planes = plane_catalogue(lm)
    axis = hippocampal_axis(planes["HIPPO_AX"].normal, head_frame(lm))
    assert abs(axis @ planes["HIPPO_COR"].normal) == pytest.approx(1.0, abs=1e-9)


def test_orthogonal_unit_drops_the_component_along_the_normal():
    np.testing.assert_allclose(orthogonal_unit(np.array([3.0, 0.0, 4.0]), Z), X)
    with pytest.raises(ValueError):
        orthogonal_unit(2 * Z, Z)


def test_iac_normals_take_the_acpc_pitch_and_the_line_roll():
    """A line through the IACs rolled 45 degrees (left IAC higher): IAC_AX's normal is the
    ACPC normal turned 45 degrees towards the right, IAC_COR's points Posterior; the line
    comes back from IAC_AX's normal."""
    line = (X + Z) / np.sqrt(2)
    axial, coronal = iac_normals(Z, line, X)
    np.testing.assert_allclose(axial, (Z - X) / np.sqrt(2), atol=1e-12)
    np.testing.assert_allclose(coronal, Y, atol=1e-12)
    np.testing.assert_allclose(iac_line(axial, X), line, atol=1e-12)
    pitched = np.array([0.0, np.sin(0.1), np.cos(0.1)])  # an ACPC plane pitched 0.1 rad
    axial, coronal = iac_normals(pitched, X, X)
    np.testing.assert_allclose(axial, pitched, atol=1e-12)
    np.testing.assert_allclose(coronal, [0.0, np.cos(0.1), -np.sin(0.1)], atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_iac_planes_come_back_from_their_line_and_the_frame_in_any_pose(seed):
    """Within 0.3 degree (0.10-0.24 on these heads): IAC_AX's normal does not tell how far the
    line runs front to back within the plane, which turns the normals by a second-order angle."""
    rng = np.random.default_rng(seed)
    lm = apply(random_rigid(rng), {k: v + rng.normal(0, 2.0, 3) for k, v in aligned_head().items()})
    planes, frame = plane_catalogue(lm), head_frame(lm)
    axial, coronal = iac_normals(frame.superior, iac_line(planes["IAC_AX"].normal, frame.left), frame.left)
    for normal, key in ((axial, "IAC_AX"), (coronal, "IAC_COR")):
        assert np.degrees(np.arccos(min(1.0, abs(normal @ planes[key].normal)))) < 0.3


def test_cow_is_parallel_to_acpc_through_basilar_tip():
    rng = np.random.default_rng(11)
    lm = {k: v + rng.normal(0, 1.0, 3) for k, v in aligned_head().items()}
    planes = plane_catalogue(lm)
    np.testing.assert_allclose(planes["COW"].normal, planes["ACPC"].normal, atol=1e-12)
    np.testing.assert_allclose(planes["COW"].centre, lm["BASILAR_TIP"])


def test_missing_landmark_names_the_key():
    lm = aligned_head()
    del lm["BASILAR_TIP"]
    with pytest.raises(KeyError, match="BASILAR_TIP"):
        plane_catalogue(lm)


def test_fit_plane_refuses_collinear_points():
    with pytest.raises(ValueError):
        fit_plane(np.array([[0, 0, 0], [1, 1, 1], [2, 2, 2.0]]))


def axial(centre=(0, 0, 0), normal=Z, row=X) -> Plane:
    normal = np.asarray(normal, float)
    row = np.asarray(row, float)
    return Plane(centre=np.asarray(centre, float), normal=normal, row=row, col=np.cross(normal, row),
                 fov_mm=(200.0, 230.0), slab_mm=150.0, n_slices=30, spacing_mm=5.0)


def test_plane_refuses_non_orthonormal_axes():
    with pytest.raises(ValueError):
        Plane(centre=np.zeros(3), normal=Z, row=X, col=X, fov_mm=(1.0, 1.0), slab_mm=1.0, n_slices=1, spacing_mm=1.0)


def test_transform_plane_applies_rotation_and_translation():
    m = rotation_about(Z, 90)
    m[:3, 3] = [1, 2, 3]
    moved = transform_plane(axial(centre=(10, 0, 0)), m)
    np.testing.assert_allclose(moved.centre, [1, 12, 3], atol=1e-12)
    np.testing.assert_allclose(moved.row, Y, atol=1e-12)
    np.testing.assert_allclose(moved.col, -X, atol=1e-12)
    np.testing.assert_allclose(moved.normal, Z, atol=1e-12)
    assert moved.fov_mm == (200.0, 230.0) and moved.n_slices == 30


def _nan_rotation():
    matrix = np.eye(4)
    matrix[0, 1] = np.nan
    return matrix


@pytest.mark.parametrize("matrix", [np.diag([2.0, 2, 2, 1]), np.diag([-1.0, 1, 1, 1]), np.eye(3),
                                    np.array([[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0.1, 1]]),
                                    _nan_rotation()])
def test_transform_plane_refuses_non_rigid_matrices(matrix):
    with pytest.raises(ValueError):
        transform_plane(axial(), matrix)


def test_orthonormal_as_numpy_would_say_it():
    turned = rotation_about(X + Y, 33.0)[:3, :3]
    assert orthonormal(np.eye(3)) and orthonormal(turned)
    assert orthonormal(turned + 1e-7) and not orthonormal(turned + 1e-5)
    assert orthonormal(turned + 1e-6, tolerance=1e-5)
    assert not orthonormal(2 * turned) and not orthonormal(np.full((3, 3), np.nan))
    rng = np.random.default_rng(3)
    for _ in range(200):
        basis = turned + rng.normal(scale=10 ** rng.uniform(-8, -4), size=(3, 3))
        assert orthonormal(basis) == np.allclose(basis @ basis.T, np.eye(3), atol=1e-6)


@pytest.mark.parametrize("degrees", [0.0, 0.7, 4.6, 30.0, 90.0])
def test_normal_angle_of_a_tilted_plane(degrees):
    truth = axial()
    predicted = transform_plane(truth, rotation_about(X + Y, degrees))
    assert normal_angle_deg(predicted, truth) == pytest.approx(degrees, abs=1e-6)


def test_normal_angle_ignores_sign_unless_asked():
    truth = axial()
    flipped = axial(normal=-Z, row=X)
    assert normal_angle_deg(flipped, truth) == pytest.approx(0.0)
    assert normal_angle_deg(flipped, truth, oriented=True) == pytest.approx(180.0)
    assert normal_angle_deg(transform_plane(truth, rotation_about(X, 120)), truth) == pytest.approx(60.0)


def test_centre_distance_is_measured_to_the_predicted_plane():
    truth = axial(centre=(3, -4, 10))
    assert centre_distance_mm(axial(centre=(50, 50, 12.6)), truth) == pytest.approx(2.6)
    tilted = transform_plane(axial(), rotation_about(X, 30))
    assert centre_distance_mm(tilted, axial(centre=(0, 0, 10))) == pytest.approx(10 * np.cos(np.radians(30)))
    assert centre_distance_mm(axial(centre=(7, 8, 0)), axial()) == 0.0


def test_corners_span_the_field_of_view():
    corners = axial(centre=(1, 2, 3)).corners()
    np.testing.assert_allclose(corners[2] - corners[0], [200, 230, 0])
    np.testing.assert_allclose(corners.mean(axis=0), [1, 2, 3])


def test_whole_brain_planes_are_sized_to_the_brain_about_their_centre():
    """Slab: the farthest point along the normal plus the allowance, in whole slices of the
    prescribed spacing; field of view: the farthest point along row and column plus scalp
    and allowance on each side, rounded up to 10 mm, where that is wider than prescribed."""
    from isp_node.geometry.sizing import sized_to_brain

    points = np.array([[-50.0, 0, 0], [30, 97, 0], [0, -20, 60], [0, 0, -10]])
    sized = sized_to_brain(axial(), points, scalp_mm=15.0, allowance_mm=5.0)
    assert sized.fov_mm == (200.0, 240.0)  # 2 (50 + 20) < 200 prescribed; 2 (97 + 20) -> 240
    assert sized.n_slices == 26 and sized.slab_mm == 130.0 and sized.spacing_mm == 5.0  # 2 (60 + 5)
    np.testing.assert_allclose(sized.normal, Z)
    moved = sized_to_brain(axial(centre=(0, 0, 30)), points, scalp_mm=15.0, allowance_mm=5.0)
    assert moved.n_slices == 18 and moved.fov_mm == (200.0, 240.0)  # 2 (40 + 5): the far side
    assert sized_to_brain(axial(), np.zeros((0, 3))).fov_mm == (200.0, 230.0)  # no brain: as prescribed
