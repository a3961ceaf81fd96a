"""Rotation helpers against known values."""

import numpy as np

from isp_node.geometry.rotations import axis_angle, head_rotation, rigid


def test_axis_angle_known_values():
    np.testing.assert_allclose(axis_angle([0, 0, 1], 90) @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(axis_angle([1, 0, 0], 90) @ [0, 1, 0], [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(axis_angle([1, 1, 1], 120) @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(axis_angle([0, 2, 0], 0), np.eye(3))


def test_head_rotation_order_and_orthonormality():
    r = head_rotation(10, 20, 30)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.isclose(np.linalg.det(r), 1.0)
    expected = axis_angle([0, 0, 1], 30) @ axis_angle([0, 1, 0], 20) @ axis_angle([1, 0, 0], 10)
    np.testing.assert_allclose(r, expected)
    # pure pitch keeps the left-right axis fixed
    np.testing.assert_allclose(head_rotation(25, 0, 0) @ [1, 0, 0], [1, 0, 0], atol=1e-12)


def test_rigid_applies_rotation_then_translation():
    m = rigid(axis_angle([0, 0, 1], 90), np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(m @ [1, 0, 0, 1], [1, 3, 3, 1], atol=1e-12)


def _tilts(rotation: np.ndarray) -> np.ndarray:
    """Pitch, roll, yaw (degrees) of a `head_rotation`."""
    pitch = np.degrees(np.arctan2(rotation[2, 1], rotation[2, 2]))
    roll = np.degrees(np.arcsin(-rotation[2, 0]))
    yaw = np.degrees(np.arctan2(rotation[1, 0], rotation[0, 0]))
    return np.array([pitch, roll, yaw])


def test_tilts_of_a_head_rotation_are_read_back():
    np.testing.assert_allclose(_tilts(head_rotation(17.0, -8.0, 23.0)), [17.0, -8.0, 23.0], atol=1e-9)


def test_wide_poses_spread_the_tilts_evenly_up_to_their_limits():
    from isp_node.simulation.cases import WIDE_TILTS_DEG, random_pose

    rng = np.random.default_rng(3)
    centre = np.array([0.0, -20.0, 10.0])
    coil = np.array([_tilts(random_pose(rng, centre)[:3, :3]) for _ in range(2000)])
    wide = np.array([_tilts(random_pose(rng, centre, wide=True)[:3, :3]) for _ in range(2000)])
    assert np.all(np.abs(wide) <= np.array(WIDE_TILTS_DEG) + 1e-9)
    # uniform: a third of the pitches beyond two thirds of the limit (20 degrees); in a
    # coil, pitch ~ N(0, 12 degrees), about a tenth
    assert 0.3 < np.mean(np.abs(wide[:, 0]) > 20) < 0.37
    assert np.mean(np.abs(coil[:, 0]) > 20) < 0.13
    np.testing.assert_allclose(np.std(wide, axis=0), np.array(WIDE_TILTS_DEG) / np.sqrt(3), rtol=0.06)
