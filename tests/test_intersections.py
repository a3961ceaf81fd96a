"""Plane-image intersection lines against known configurations."""

import numpy as np

from isp_node.geometry.intersections import plane_image_line
from isp_node.geometry.planes import Plane
from isp_node.pipeline.slices import ImageSlice


def axial_image(z: float = 0.0) -> ImageSlice:
    # 11x11 pixels of 1 mm, pixel (0, 0) at (-5, -5, z): row along +x (L), col along +y (P)
    return ImageSlice(np.zeros((11, 11), np.float32), np.array([-5.0, -5.0, z]),
                      np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), (1.0, 1.0), 5.0)


def plane(centre, normal, row, col) -> Plane:
    return Plane(np.array(centre, float), np.array(normal, float), np.array(row, float),
                 np.array(col, float), (200, 200), 100, 20, 5)


def test_sagittal_plane_crosses_axial_image_as_a_column():
    msp = plane([2.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, -1])  # x = 2 mm
    line = plane_image_line(msp, axial_image())
    np.testing.assert_allclose(sorted(line.tolist()), [[0.0, 7.0], [10.0, 7.0]])


def test_oblique_plane_through_corners():
    s = np.sqrt(0.5)
    diagonal = plane([0, 0, 0], [s, -s, 0], [s, s, 0], [0, 0, -1])  # x = y
    line = plane_image_line(diagonal, axial_image())
    np.testing.assert_allclose(sorted(line.tolist()), [[0.0, 0.0], [10.0, 10.0]], atol=1e-9)


def test_parallel_and_missing_planes_give_none():
    acpc = plane([0, 0, 3.0], [0, 0, 1], [1, 0, 0], [0, 1, 0])
    assert plane_image_line(acpc, axial_image()) is None
    far = plane([50.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, -1])
    assert plane_image_line(far, axial_image()) is None


def test_end_points_lie_on_the_plane():
    rng = np.random.default_rng(3)
    normal = rng.normal(size=3)
    normal /= np.linalg.norm(normal)
    row = np.cross(normal, [0, 0, 1.0])
    row /= np.linalg.norm(row)
    p = plane([0.5, -1.0, 0.2], normal, row, np.cross(normal, row))
    image = axial_image(0.7)
    line = plane_image_line(p, image)
    for point in image.pixel_to_patient(line):
        assert abs(p.signed_distance(point)) < 1e-9
