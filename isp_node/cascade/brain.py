"""The brain as Coverage-Net finds it: volume, centre and extent in patient coordinates.

The extent is read off the probability map with sub-voxel precision: along each
grid axis the brain's profile (the highest probability in each plane of voxels
across that axis) crosses a threshold between two voxel centres, and the crossing is
interpolated linearly. A thresholded mask would round it to whole 4 mm voxels. The
map's extent is read at `MAP_EXTENT_THRESHOLD`, below the 0.5 of its mask (volume,
centre, images' brain) and of the truth's occupancy.
Each localizer image's share of the brain is the map sampled on the image's plane,
interpolated between voxels and thresholded there: an image at the brain's edge then
takes its area from where the map crosses the threshold, not from whole 4 mm voxels.
"""

import itertools

import numpy as np

from isp_node.pipeline.interpolation import sample_trilinear
from isp_node.pipeline.volume import Grid

THRESHOLD = 0.5
# Coverage-Net's map fades below 0.5 inside the brain's thin ends (the cerebellum's lower
# edge, the vertex): at 0.5 its brains came out 1-3 mm short at both ends on its training
# heads; 0.35 gave the most localizers with every extent within 3 mm on held-out ones of
# those heads (docs/extent_threshold.py; its card, "Where the map ends")
MAP_EXTENT_THRESHOLD = 0.35
# The map draws brain where no image reaches (it learnt whole brains): reaching this far
# beyond every image it says the brain runs off the localizer. On the training heads'
# tuning localizers it found 11 of the 12 usable ones whose brain ran over 4 mm beyond the
# images, with 4 sides wrongly named (docs/brain_margins.py; Coverage-Net's card, "Brain beyond
# the images")
RUN_OFF_MM = 4.0
# the patient's sides at the low and high ends of the LPS axes
SIDES = (("right", "anterior", "inferior"), ("left", "posterior", "superior"))


def brain_extent(probability: np.ndarray, threshold: float = THRESHOLD
                 ) -> tuple[np.ndarray, np.ndarray] | None:
    """(low, high) fractional voxel indices (3,) where the brain, `probability` at or over
    `threshold`, begins and ends along each axis, or None without brain. A brain running
    off the grid ends at its edge (-0.5, n-0.5)."""
    probability = np.asarray(probability, dtype=float)
    if probability.max(initial=0.0) < max(THRESHOLD, threshold):
        return None
    low, high = np.zeros(3), np.zeros(3)
    for axis in range(3):
        profile = probability.max(axis=tuple(a for a in range(3) if a != axis))
        above = np.flatnonzero(profile >= threshold)
        first, last = above[0], above[-1]
        low[axis] = first - 0.5 if first == 0 else \
            first - 1 + _crossing(profile[first - 1], profile[first], threshold)
        high[axis] = last + 0.5 if last == len(profile) - 1 else \
            last + 1 - _crossing(profile[last + 1], profile[last], threshold)
    return low, high


def _crossing(below: float, above: float, threshold: float) -> float:
    """Where between a value below `threshold` (at 0) and one above it (at 1) it is crossed."""
    return (threshold - below) / (above - below)


def brain_summary(probability: np.ndarray, grid: Grid,
                  extent_threshold: float = THRESHOLD) -> dict:
    """Volume (ml), centre and axis-aligned extent (LPS mm) of the brain on `grid`: a truth
    map's at 0.5 throughout, Coverage-Net's with `extent_threshold=MAP_EXTENT_THRESHOLD`."""
    mask = np.asarray(probability) >= THRESHOLD
    extent = brain_extent(probability, extent_threshold)
    if extent is None:
        return {"volume_ml": 0.0}
    low, high = (grid.origin + index * grid.spacing for index in extent)
    centre = grid.origin + np.argwhere(mask).mean(axis=0) * grid.spacing
    return {"volume_ml": round(float(mask.sum() * grid.spacing**3 / 1000), 1),
            "centre_lps": centre.round(2).tolist(),
            "low_lps": low.round(2).tolist(), "high_lps": high.round(2).tolist()}


def brain_points(probability: np.ndarray, grid: Grid,
                 threshold: float = MAP_EXTENT_THRESHOLD) -> np.ndarray:
    """The centres (n, 3; LPS mm) of the voxels of `grid` where the brain's `probability` is at
    or over `threshold`: what the planes that image the whole brain are sized to."""
    return grid.origin + np.argwhere(np.asarray(probability) >= threshold) * grid.spacing


def images_box(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The LPS box (low, high; mm) around every pixel centre of images with these frames
    (n, 11) (`ImageSlice.frame`)."""
    frames = np.asarray(frames, dtype=float).reshape(-1, 11)
    start, rows, cols = frames[:, :3], frames[:, 3:6], frames[:, 6:9]
    across, down = rows * frames[:, 9:10], cols * frames[:, 10:11]
    corners = np.concatenate([start, start + across, start + down, start + across + down])
    return corners.min(axis=0), corners.max(axis=0)


def run_off_sides(brain: dict, frames: np.ndarray, beyond_mm: float = RUN_OFF_MM) -> list[str]:
    """The patient's sides (`SIDES`) where the brain of `brain_summary` reaches at least
    `beyond_mm` past every image of the localizer (frames (n, 11)): there the localizer
    does not show where the brain ends, and its extent is the map's guess."""
    if "low_lps" not in brain:
        return []
    low, high = images_box(frames)
    past = np.stack([low - np.asarray(brain["low_lps"]), np.asarray(brain["high_lps"]) - high])
    return [SIDES[end][axis] for end, axis in zip(*np.nonzero(past >= beyond_mm))]


def image_brain_mm2(probability: np.ndarray, grid: Grid, frames: np.ndarray) -> np.ndarray:
    """The brain area (mm2) Coverage-Net's map shows in each image, from the images' frames
    (n, 11) (`ImageSlice.frame`): the map sampled (trilinear, then thresholded) every grid
    spacing across each image's field of view, where it can meet the brain's bounding box.
    All images at once: a 3D scout has over a hundred."""
    frames = np.asarray(frames, dtype=float).reshape(-1, 11)
    probability = np.asarray(probability, dtype=np.float32)
    mask = probability >= THRESHOLD
    areas = np.zeros(len(frames))
    if not mask.any():
        return areas
    found = np.argwhere(mask)  # the box, in voxels, then everything in voxel units
    corners = np.array(list(itertools.product(*zip(found.min(axis=0) - 1.0,
                                                   found.max(axis=0) + 1.0))))
    starts, rows, cols = (frames[:, :3] - grid.origin) / grid.spacing, frames[:, 3:6], frames[:, 6:9]
    relative = corners[None] - starts[:, None]  # (n, 8, 3)
    meets = np.ptp(np.sign(np.einsum("nkd,nd->nk", relative, np.cross(rows, cols))), axis=1) > 0
    (across, wide), (down, tall) = (
        _samples(size / grid.spacing, np.einsum("nkd,nd->nk", relative, axis), meets)
        for size, axis in ((frames[:, 9], rows), (frames[:, 10], cols)))
    if across.shape[1] and down.shape[1]:
        points = (starts[:, None, None] + across[:, :, None, None] * rows[:, None, None]
                  + down[:, None, :, None] * cols[:, None, None])  # (n, across, down, 3)
        kept = wide[:, :, None] & tall[:, None, :]
        inside = sample_trilinear(probability, np.eye(4), points[kept]) >= THRESHOLD
        owners = np.broadcast_to(np.arange(len(frames))[:, None, None], kept.shape)[kept]
        areas += np.bincount(owners, weights=inside, minlength=len(frames))
    return areas * grid.spacing**2


def _samples(size: np.ndarray, reach: np.ndarray, meets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample positions one voxel apart across image sides of `size` (n,) voxels, centred
    on each, kept where they fall between the least and greatest of `reach` (n, 8) and the
    image `meets` the box: (n, m) positions from the first kept, and which (n, m) are kept."""
    offset = size / 2 % 1.0
    first = np.maximum(np.ceil(reach.min(axis=1) - offset), 0)
    last = np.minimum(np.floor(reach.max(axis=1) - offset), np.floor(size + 1e-6 - offset))
    count = np.where(meets, np.maximum(last - first + 1, 0), 0).astype(int)
    steps = np.arange(count.max(initial=0))
    return offset[:, None] + first[:, None] + steps, steps < count[:, None]
