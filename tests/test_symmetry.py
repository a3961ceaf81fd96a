"""The mid-sagittal plane refined by left-right symmetry, on volumes of known symmetry."""

import numpy as np
import pytest

from isp_node.cascade.symmetry import symmetry_plane
from isp_node.pipeline.volume import Grid, LocalizerVolume

NORMAL = np.array([0.96, 0.2, -0.1]) / np.linalg.norm([0.96, 0.2, -0.1])
OFFSET = 4.0  # mm: the plane NORMAL . x = OFFSET


def blobs_volume(grid: Grid, mirrored: bool, seed: int = 0) -> LocalizerVolume:
    """Gaussian blobs of random size and brightness about the grid's centre, each with its
    mirror image about the plane (`mirrored`) or not."""
    rng = np.random.default_rng(seed)
    points = grid.points().reshape(-1, 3)
    image = np.zeros(len(points))
    for _ in range(40):
        centre = grid.centre + rng.uniform(-45, 45, 3)
        pair = [centre, centre - 2 * (centre @ NORMAL - OFFSET) * NORMAL] if mirrored else [centre]
        sigma, brightness = rng.uniform(4, 10), rng.uniform(0.2, 1.0)
        for c in pair:
            image += brightness * np.exp(-((points - c) ** 2).sum(axis=1) / (2 * sigma**2))
    image = (image / image.max()).reshape(grid.shape).astype(np.float32)
    return LocalizerVolume(image, np.ones(grid.shape, np.float32), grid)


def tilted(normal: np.ndarray, degrees: float) -> np.ndarray:
    side = np.cross(normal, [0.0, 0.0, 1.0])
    side /= np.linalg.norm(side)
    return np.cos(np.radians(degrees)) * normal + np.sin(np.radians(degrees)) * side


@pytest.mark.parametrize("tilt_deg, shift_mm", [(6.0, 3.0), (-12.0, -5.0)])
def test_a_mirror_symmetric_volume_gives_its_plane_back(tilt_deg, shift_mm):
    grid = Grid.centred(np.array([10.0, -20.0, 15.0]), (64, 64, 64), 3.0)
    volume = blobs_volume(grid, mirrored=True)
    start = tilted(NORMAL, tilt_deg)
    found = symmetry_plane(volume, grid.centre, start, OFFSET + shift_mm + start @ grid.centre
                           - NORMAL @ grid.centre)
    assert found.trusted and found.match > 0.95
    assert np.degrees(np.arccos(found.normal @ NORMAL)) < 0.3
    assert abs(found.offset - OFFSET) < 0.3


def test_an_asymmetric_or_uncovered_volume_is_not_trusted():
    grid = Grid.centred(np.zeros(3), (64, 64, 64), 3.0)
    lopsided = symmetry_plane(blobs_volume(grid, mirrored=False), grid.centre, NORMAL, OFFSET)
    assert not lopsided.trusted and lopsided.match < 0.6
    empty = blobs_volume(grid, mirrored=True)
    empty = LocalizerVolume(empty.image, np.zeros(grid.shape, np.float32), grid)
    nothing = symmetry_plane(empty, grid.centre, NORMAL, OFFSET)
    assert not nothing.trusted
    np.testing.assert_allclose(nothing.normal, NORMAL)
