"""Coarse tissue maps of a template head (brain, depth inside the brain, lateral ventricles).

The deformation and lesion models need to know where the brain and its
ventricles are. The maps are derived from each head's brain segmentation, T1
image and landmarks on first use, at 2 mm, and kept in memory for the
lifetime of the ``Head`` object (2-3 s per head, once):

- intensities are taken relative to ``white``, the 95th percentile in a 20 mm
  ball 25 mm above the AC-PC midpoint (white matter of the centrum semiovale);
- brain: the head's segmentation (``Head.brain``, ROBEX's), taken to 2 mm and hole-filled;
- depth: Euclidean distance (mm) from outside the brain, lightly smoothed;
- intracranial: the brain closed by a 10 mm ball, which fills the basal
  cisterns (suprasellar, interpeduncular) but not the sella, the internal
  auditory canals or the orbits; ``cranial_depth_mm`` is the distance from its
  outside, so deep structures weigh fully even where a cistern lies below;
- ventricles: at the image's resolution, the darkest voxel within 4 voxels of
  each AFID "LV at AC" / "LV at PC" point is a seed; voxels inside the brain
  darker than a quarter of the way from the seeds' median to white, connected
  (6-neighbourhood) to a seed, are the lateral ventricles (bodies, frontal
  horns, atria); temporal horns are too thin to be caught. Where CSF is too
  faint against grey matter for that rule, the region runs into the sulci;
  more than MAX_VENTRICLES_ML is taken for that and no ventricles are kept
  (the head's individuals then vary without ventricle push);
- ventricle push: the unit outward normal of the wall of the ventricle complex
  (both lateral ventricles closed by a 3 mm ball, so the septum counts as
  inside and is not squeezed), from its signed distance map, times a profile
  that is 1 inside and on the wall and falls as (1 - d / 15 mm)^2 outside,
  smoothed by a 2 mm Gaussian (which also makes it pass smoothly through 0 on
  the medial axis of a thin horn); split into a left and a right share that
  blend linearly across +-10 mm of the midline. ``a * push`` dilates the
  ventricles by about ``a`` mm.

Everything is in template space, LPS mm, on the ``affine`` 2 mm grid.
"""

import threading
import weakref
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from isp_node.geometry.catalogue import AC, PC, head_frame
from isp_node.pipeline.interpolation import sample_trilinear
from isp_node.simulation.anatomy import AFID_PREFIX, Head

STEP_MM = 2.0
CSF_FRACTION = 0.25  # of the way from ventricular CSF to white matter
SEED_SEARCH_VOXELS = 4
PUSH_REACH_MM = 15.0
PUSH_SMOOTH_MM = 2.0
PUSH_MARGIN_VOXELS = 24
SEPTUM_CLOSING_VOXELS = 3
SIDE_BLEND_MM = 10.0
CISTERN_CLOSING_VOXELS = 5
MAX_VENTRICLES_ML = 150.0  # larger than severe hydrocephalus: the threshold leaked into the sulci


@dataclass(frozen=True, eq=False)
class TemplateMaps:
    """Brain, depth and ventricle maps of one template head, on a 2 mm grid (template LPS mm)."""

    affine: np.ndarray  # 4x4, map voxel -> LPS mm
    brain: np.ndarray  # bool
    brain_fraction: np.ndarray  # float32, the brain mask lightly blurred (for soft lookups)
    depth_mm: np.ndarray  # float32, distance inside the brain, 0 outside
    cranial_depth_mm: np.ndarray  # float32, distance inside the brain with its basal cisterns
    ventricles: np.ndarray  # float32, fraction of each 2 mm voxel that is lateral ventricle
    ventricle_push: dict[str, np.ndarray]  # "L"/"R" -> (3, ...) float32 LPS, outward, 1 on the wall
    head_lo: np.ndarray  # (3,) LPS corner of the head's bounding box
    head_hi: np.ndarray
    brain_centre: np.ndarray  # (3,) centroid of the brain mask

    def sample(self, volume: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Trilinear value of a map at LPS points (..., 3); 0 outside the grid."""
        return sample_trilinear(volume, np.linalg.inv(self.affine), points)


_CACHE: dict[tuple[int, str], tuple[weakref.ref, object]] = {}
_LOCK = threading.RLock()


def cached_for(owner: object, name: str, compute):
    """``compute()``, kept in memory under ``name`` for as long as ``owner`` is alive."""
    key = (id(owner), name)
    with _LOCK:
        entry = _CACHE.get(key)
        if entry is not None and entry[0]() is owner:
            return entry[1]
        value = compute()
        _CACHE[key] = (weakref.ref(owner, lambda _, key=key: _CACHE.pop(key, None)), value)
        return value


def template_maps(head: Head) -> TemplateMaps:
    """The maps of ``head``, computed on first use and cached while the head is alive."""
    return cached_for(head, "maps", lambda: compute_maps(head))


def _ball(radius: int) -> np.ndarray:
    grid = np.mgrid[-radius:radius + 1, -radius:radius + 1, -radius:radius + 1]
    return (grid ** 2).sum(axis=0) <= radius * radius


def _to_voxel(affine: np.ndarray, point: np.ndarray) -> tuple[int, ...]:
    inverse = np.linalg.inv(affine)
    return tuple(np.rint(inverse[:3, :3] @ point + inverse[:3, 3]).astype(int))


def _clamp(index: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(np.clip(i, 0, s - 1)) for i, s in zip(index, shape))


def _white_level(volume: np.ndarray, affine: np.ndarray, centre: np.ndarray) -> float:
    """95th percentile intensity in a 20 mm ball around ``centre`` (white matter)."""
    inverse = np.linalg.inv(affine)
    idx = np.indices(volume.shape).reshape(3, -1).T
    near = np.abs(idx - (inverse[:3, :3] @ centre + inverse[:3, 3])).max(axis=1) <= 25
    points = idx[near] @ affine[:3, :3].T + affine[:3, 3]
    inside = np.linalg.norm(points - centre, axis=1) <= 20
    return float(np.percentile(volume[tuple(idx[near][inside].T)], 95))


def ventricle_mask(volume: np.ndarray, affine: np.ndarray, brain1: np.ndarray,
                   landmarks: dict[str, np.ndarray], white: float) -> np.ndarray:
    """Lateral ventricles at the template's resolution: dark voxels connected to the AFID ventricle points."""
    seeds = []
    for side in "LR":
        for level in ("AC", "PC"):
            i, j, k = _clamp(_to_voxel(affine, landmarks[f"{AFID_PREFIX}{side} LV at {level}"]), volume.shape)
            lo = [max(0, c - SEED_SEARCH_VOXELS) for c in (i, j, k)]
            hi = [c + SEED_SEARCH_VOXELS + 1 for c in (i, j, k)]
            box = volume[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
            seeds.append(tuple(np.add(lo, np.unravel_index(np.argmin(box), box.shape))))
    darkest = float(np.median([volume[s] for s in seeds]))
    labels, _ = ndi.label((volume < darkest + CSF_FRACTION * (white - darkest)) & brain1)
    keep = {int(labels[s]) for s in seeds} - {0}
    found = np.isin(labels, sorted(keep))
    voxel_ml = abs(np.linalg.det(affine[:3, :3])) / 1000.0
    return found if found.sum() * voxel_ml <= MAX_VENTRICLES_ML else np.zeros_like(found)


def _downsample(volume: np.ndarray) -> np.ndarray:
    """2:1 in each axis after a light blur, voxel (i, j, k) -> source voxel (2i, 2j, 2k)."""
    return ndi.gaussian_filter(volume.astype(np.float32), 0.85)[::2, ::2, ::2]


def ventricle_push(ventricles1: np.ndarray, affine1: np.ndarray, centre: np.ndarray, left: np.ndarray,
                   shape2: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Per side, the outward wall push field (module doc) on the 2 mm grid, computed at 1 mm near the ventricles."""
    push = {side: np.zeros((3, *shape2), dtype=np.float32) for side in "LR"}
    found = np.argwhere(ventricles1)
    if not len(found):
        return push
    lo = np.maximum(found.min(axis=0) - PUSH_MARGIN_VOXELS, 0) // 2 * 2  # even, so 1 mm index 2i is 2 mm index i
    hi = np.minimum(found.max(axis=0) + PUSH_MARGIN_VOXELS + 1, ventricles1.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    linear = affine1[:3, :3]
    voxel_mm = np.linalg.norm(linear, axis=0)
    complex_ = ndi.binary_closing(ventricles1[box], _ball(SEPTUM_CLOSING_VOXELS)) | ventricles1[box]
    sdf = ndi.distance_transform_edt(~complex_, sampling=voxel_mm) - ndi.distance_transform_edt(
        complex_, sampling=voxel_mm)
    to_lps = np.linalg.inv(linear).T  # turns index-space gradients into LPS gradients
    gradient = np.tensordot(to_lps, np.stack(np.gradient(ndi.gaussian_filter(sdf, 1.0))), axes=1)
    gradient /= np.maximum(np.linalg.norm(gradient, axis=0), 1e-6)
    profile = np.where(sdf < 0, 1.0, np.clip(1.0 - sdf / PUSH_REACH_MM, 0.0, 1.0) ** 2)
    field = np.stack([ndi.gaussian_filter(g * profile, PUSH_SMOOTH_MM / voxel_mm) for g in gradient])
    idx = np.indices(hi - lo).reshape(3, -1).T + lo
    lateral = (((idx @ linear.T + affine1[:3, 3]) - centre) @ left).reshape(tuple(hi - lo))
    share_left = np.clip(0.5 + lateral / (2 * SIDE_BLEND_MM), 0.0, 1.0)
    start = lo // 2
    stop = np.minimum(start + -(-(hi - lo) // 2), shape2)
    target = (slice(None), *(slice(a, b) for a, b in zip(start, stop)))
    source = (slice(None), *(slice(0, 2 * (b - a), 2) for a, b in zip(start, stop)))
    for side, share in (("L", share_left), ("R", 1.0 - share_left)):
        push[side][target] = (field * share)[source]
    return push


def _depth(mask: np.ndarray) -> np.ndarray:
    """Distance (mm) from outside ``mask``, lightly smoothed."""
    return ndi.gaussian_filter(ndi.distance_transform_edt(mask, sampling=STEP_MM).astype(np.float32), 1.0)


def compute_maps(head: Head) -> TemplateMaps:
    """Derive the maps of ``head`` from its T1 image and landmarks (see the module doc)."""
    lm = head.landmarks
    frame = head_frame(lm)
    centre = (lm[AC] + lm[PC]) / 2
    white = _white_level(head.volume, head.affine, centre + 25.0 * frame.superior)
    volume2 = _downsample(head.volume)
    affine2 = head.affine @ np.diag([STEP_MM, STEP_MM, STEP_MM, 1.0])
    brain = ndi.binary_fill_holes(_downsample(head.brain) > 0.5)

    brain1 = ndi.zoom(brain, 2, order=0)[tuple(slice(0, s) for s in head.volume.shape)]
    pad = [(0, s - b) for s, b in zip(head.volume.shape, brain1.shape)]
    brain1 = np.pad(brain1, pad, mode="edge")
    ventricles1 = ventricle_mask(head.volume, head.affine, brain1, lm, white)
    ventricles = _downsample(ventricles1)  # fraction of each 2 mm cell

    depth = _depth(brain)
    pad = CISTERN_CLOSING_VOXELS + 2
    closed = ndi.binary_closing(np.pad(brain, pad), _ball(CISTERN_CLOSING_VOXELS))[pad:-pad, pad:-pad, pad:-pad]
    cranial_depth = _depth(ndi.binary_fill_holes(closed))

    points = np.indices(brain.shape).reshape(3, -1).T @ affine2[:3, :3].T + affine2[:3, 3]
    push = ventricle_push(ventricles1, head.affine, centre, frame.left, brain.shape)

    head_mask = ndi.binary_fill_holes(volume2 > 0.05 * white)
    idx = np.argwhere(head_mask)
    corners = np.array([idx.min(axis=0), idx.max(axis=0)]) @ affine2[:3, :3].T + affine2[:3, 3]
    brain_points = points[brain.ravel()]
    return TemplateMaps(
        affine=affine2, brain=brain, brain_fraction=ndi.gaussian_filter(brain.astype(np.float32), 0.75),
        depth_mm=depth, cranial_depth_mm=cranial_depth, ventricles=ventricles.astype(np.float32),
        ventricle_push=push, head_lo=corners.min(axis=0), head_hi=corners.max(axis=0),
        brain_centre=brain_points.mean(axis=0))
