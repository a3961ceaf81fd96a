"""The compiled linear interpolation agrees with scipy's map_coordinates(order=1)."""

import numpy as np
import pytest
from scipy import ndimage

from isp_node.pipeline.interpolation import interpolation_matrix, sample_trilinear, upsample_linear


@pytest.mark.parametrize("shape", [(5, 6, 7), (1, 4, 3), (2, 2, 2)])
@pytest.mark.parametrize("edge, mode", [("zero", "constant"), ("nearest", "nearest")])
def test_trilinear_equals_map_coordinates_inside_on_and_beyond_the_edges(shape, edge, mode):
    rng = np.random.default_rng(3)
    volume = rng.random(shape).astype(np.float32)
    points = rng.uniform(-1.5, np.array(shape) + 0.5, (5000, 3))
    points[:200] = np.round(points[:200])  # exactly on nodes, the outermost ones included
    expected = ndimage.map_coordinates(volume, points.T, order=1, mode=mode, cval=0.0)
    np.testing.assert_allclose(sample_trilinear(volume, np.eye(4), points, edge), expected, atol=1e-6)


def test_affine_and_components_are_honoured():
    rng = np.random.default_rng(4)
    field = rng.random((3, 6, 7, 8))
    to_voxel = np.array([[0.5, 0, 0, 2.0], [0, 0.25, 0, 1.0], [0, 0, 1.0, -3.0]])
    points = rng.uniform(-4, 12, (100, 2, 3))  # any leading shape
    voxels = points @ to_voxel[:, :3].T + to_voxel[:, 3]
    out = sample_trilinear(field, to_voxel, points, "nearest")
    assert out.shape == (100, 2, 3) and out.dtype == np.float64
    for c in range(3):
        expected = ndimage.map_coordinates(field[c], voxels.reshape(-1, 3).T, order=1, mode="nearest")
        np.testing.assert_allclose(out[..., c].ravel(), expected, atol=1e-12)


def test_known_values_and_layouts():
    volume = np.arange(8, dtype=np.float32).reshape(2, 2, 2)  # value = 4i + 2j + k
    points = np.array([[0.5, 0.5, 0.5], [1, 0, 0.25], [0, 0, -0.01]])
    np.testing.assert_allclose(sample_trilinear(volume, np.eye(4), points), [3.5, 4.25, 0.0])
    np.testing.assert_allclose(sample_trilinear(np.asfortranarray(volume), np.eye(4), points),
                               [3.5, 4.25, 0.0])
    np.testing.assert_allclose(interpolation_matrix(np.array([0.5, 5.0, -1.0, 0.25]), 2) @ [2.0, 4.0],
                               [3.0, 4.0, 2.0, 2.5])  # clamped beyond the first and last sample


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="edge"):
        sample_trilinear(np.zeros((2, 2, 2)), np.eye(4), np.zeros((1, 3)), "wrap")
    with pytest.raises(ValueError, match="points"):
        sample_trilinear(np.zeros((2, 2, 2)), np.eye(4), np.zeros((1, 2)))


def test_separable_upsampling_is_trilinear_interpolation():
    coarse = np.random.default_rng(2).standard_normal((7, 9, 8))
    step, shape = 0.32, (19, 25, 22)
    out = upsample_linear(coarse, shape, step)
    coords = np.stack(np.meshgrid(*[np.arange(n) * step for n in shape], indexing="ij"))
    np.testing.assert_allclose(out, ndimage.map_coordinates(coarse, coords, order=1, mode="nearest"),
                               atol=1e-12)
