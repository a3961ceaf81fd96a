"""The brain as Coverage-Net finds it: volume, centre and extent in patient coordinates.

The extent is read off the probability map with sub-voxel precision: along each
grid axis the brain's profile (the highest probability in each plane of voxels
across that axis) crosses 0.5 between two voxel centres, and the crossing is
interpolated linearly. A thresholded mask would round it to whole 4 mm voxels.
"""

import numpy as np

from isp_node.pipeline.volume import Grid

THRESHOLD = 0.5


def brain_extent(probability: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(low, high) fractional voxel indices (3,) where the brain begins and ends along each
    axis, or None without brain. A brain running off the grid ends at its edge (-0.5, n-0.5)."""
    probability = np.asarray(probability, dtype=float)
    if probability.max(initial=0.0) < THRESHOLD:
        return None
    low, high = np.zeros(3), np.zeros(3)
    for axis in range(3):
        profile = probability.max(axis=tuple(a for a in range(3) if a != axis))
        above = np.flatnonzero(profile >= THRESHOLD)
        first, last = above[0], above[-1]
        low[axis] = first - 0.5 if first == 0 else \
            first - 1 + _crossing(profile[first - 1], profile[first])
        high[axis] = last + 0.5 if last == len(profile) - 1 else \
            last + 1 - _crossing(profile[last + 1], profile[last])
    return low, high


def _crossing(below: float, above: float) -> float:
    """Where between a value below the threshold (at 0) and one above it (at 1) it is crossed."""
    return (THRESHOLD - below) / (above - below)


def brain_summary(probability: np.ndarray, grid: Grid) -> dict:
    """Volume (ml), centre and axis-aligned extent (LPS mm) of the brain on `grid`."""
    mask = np.asarray(probability) >= THRESHOLD
    extent = brain_extent(probability)
    if extent is None:
        return {"volume_ml": 0.0}
    low, high = (grid.origin + index * grid.spacing for index in extent)
    centre = grid.origin + np.argwhere(mask).mean(axis=0) * grid.spacing
    return {"volume_ml": round(float(mask.sum() * grid.spacing**3 / 1000), 1),
            "centre_lps": centre.round(2).tolist(),
            "low_lps": low.round(2).tolist(), "high_lps": high.round(2).tolist()}
