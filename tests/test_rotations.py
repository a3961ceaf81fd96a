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
