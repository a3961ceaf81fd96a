"""The mid-sagittal plane refined by the head's left-right symmetry.

Orientation-Net places the MSP to a few degrees and millimetres. The brain is close
to mirror-symmetric about that plane, so the localizer itself says where the plane
lies: reflected about the right plane, the voxels near the brain's centre match
their mirror images best. Starting from the network's plane, a Nelder-Mead search
over its tilt (two angles) and offset maximises the normalised cross-correlation
of those voxels with their mirror images, where the localizer covers both. The
search also starts from the plane tilted a few degrees each way, and the best
match wins: from one start it can stop on a lesser optimum. A search that ends
far from the start, or on a poor match, is not trusted and the network's plane
stands.
"""

from dataclasses import dataclass

import numba
import numpy as np
from scipy import optimize

from isp_node.pipeline.interpolation import corner, trilinear_at
from isp_node.pipeline.volume import LocalizerVolume

RADIUS_MM = 55.0  # voxels this close to the brain's centre are compared: brain, not scalp and face
POINTS = 3000  # of them, evenly spread: enough for a stable correlation, fast to reflect
MIN_MATCH = 0.6  # correlation with the mirror image below this: the search is not trusted
MAX_TILT_DEG, MAX_SHIFT_MM = 20.0, 8.0  # nor if it moves the plane further than this
# the searches' starting tilts (degrees, about two axes in the plane): the plane itself and
# tilted each way (on the held-out usable localizers the extra starts took the MSP's p95
# error from 7.6 to 5.4 degrees (MNI) and 9.7 to 6.6 (pydeface), for about 30 ms)
START_TILTS_DEG = ((0.0, 0.0), (6.0, 0.0), (-6.0, 0.0), (0.0, 6.0), (0.0, -6.0))
COARSE_TOLERANCE, FINE_TOLERANCE = 0.5, 0.1  # degrees and mm: the searches' stopping steps


@dataclass(frozen=True)
class SymmetryPlane:
    """The plane ``normal . x = offset`` about which the localizer best mirrors itself."""

    normal: np.ndarray  # (3,) unit, pointing the way of the starting normal
    offset: float  # mm
    match: float  # correlation of the compared voxels with their mirror images
    trusted: bool  # a good match, found near the start


def symmetry_plane(volume: LocalizerVolume, centre: np.ndarray, normal: np.ndarray,
                   offset: float) -> SymmetryPlane:
    """Refine the plane ``normal . x = offset`` (LPS mm) by the symmetry of `volume` about it,
    comparing voxels within `RADIUS_MM` of `centre`."""
    grid = volume.grid
    normal = np.asarray(normal, dtype=float) / np.linalg.norm(normal)
    centre = np.asarray(centre, dtype=float)
    covered = volume.coverage > 0.5
    near = (grid.squared_distance(centre) < RADIUS_MM**2).reshape(grid.shape)
    chosen = covered & near
    if np.count_nonzero(chosen) < 100:
        return SymmetryPlane(normal, float(offset), 0.0, False)
    chosen &= volume.image > 0.1 * np.percentile(volume.image[chosen], 99)  # not background
    index = np.argwhere(chosen)
    index = index[::max(1, len(index) // POINTS)]
    points = grid.origin + grid.spacing * index
    values = volume.image[tuple(index.T)].astype(np.float64)
    # uncovered voxels and a border around the grid are NaN, and so is any mirror image
    # that touches them: only voxels whose mirror images the localizer shows are compared
    mirror_source = np.pad(np.where(covered, volume.image, np.nan).astype(np.float32), 1,
                           constant_values=np.nan)[None]
    to_voxel = np.linalg.inv(grid.affine)[:3]
    to_voxel[:, 3] += 1.0  # the border
    u = np.cross(normal, [0.0, 0.0, 1.0] if abs(normal[2]) < 0.9 else [1.0, 0.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(normal, u)
    centre_distance = normal @ centre - offset  # from the starting plane

    def plane(p: np.ndarray) -> tuple[np.ndarray, float]:
        n = normal + np.tan(np.radians(p[0])) * u + np.tan(np.radians(p[1])) * v  # tilts in degrees
        n /= np.linalg.norm(n)
        # the plane through the start's point nearest `centre`, moved by p[2] along the normal
        anchor = centre - centre_distance * normal + p[2] * normal
        return n, float(n @ anchor)

    def mismatch(p: np.ndarray, every: int = 1) -> float:
        n, o = plane(p)
        return _mirror_mismatch(mirror_source, to_voxel, points, values, n, o, every)

    steps = np.array([[0, 0, 0], [2.0, 0, 0], [0, 2.0, 0], [0, 0, 2.0]])  # degrees, degrees, mm

    def search(start: np.ndarray, step: float, tolerance: float,
               every: int = 1) -> tuple[np.ndarray, float, bool]:
        found = optimize.minimize(mismatch, start, args=(every,), method="Nelder-Mead",
                                  options={"initial_simplex": start + step * steps,
                                           "xatol": tolerance, "fatol": tolerance * 1e-3})
        n, _ = plane(found.x)
        moved_deg = float(np.degrees(np.arccos(min(1.0, abs(float(n @ normal))))))
        trusted = (-found.fun >= MIN_MATCH and moved_deg <= MAX_TILT_DEG
                   and abs(found.x[2]) <= MAX_SHIFT_MM)
        return found.x, -float(found.fun), trusted

    # a coarse search from every start on a third of the voxels, then the best one refined
    coarse = [search(np.array([*tilts, 0.0]), 1.0, COARSE_TOLERANCE, every=3)
              for tilts in START_TILTS_DEG]
    best = max(coarse, key=lambda c: (c[2], c[1]))
    x, match, trusted = search(best[0], 0.25, FINE_TOLERANCE)
    n, o = plane(x)
    return SymmetryPlane(n, o, match, bool(trusted))


@numba.njit(cache=True, nogil=True)
def _mirror_mismatch(source, to_voxel, points, values, normal, offset, every):
    """Minus the correlation of every `every`-th of `values` (at `points`) with `source`
    (NaN where not shown, sampled clamped to its edge) at the points' mirror images about
    the plane ``normal . x = offset``; 1 when fewer than 50 mirror images are shown.
    One pass, no temporaries: the searches call it a few hundred times a localizer."""
    nx, ny, nz = source.shape[1:]
    count, sa, sb, saa, sbb, sab = 0, 0.0, 0.0, 0.0, 0.0, 0.0
    mirrored, at = np.empty(3), np.empty(3)
    for i in range(0, points.shape[0], every):
        distance = points[i, 0] * normal[0] + points[i, 1] * normal[1] + points[i, 2] * normal[2] - offset
        for a in range(3):
            mirrored[a] = points[i, a] - 2.0 * distance * normal[a]
        for a in range(3):
            at[a] = (to_voxel[a, 0] * mirrored[0] + to_voxel[a, 1] * mirrored[1]
                     + to_voxel[a, 2] * mirrored[2] + to_voxel[a, 3])
        x0, x1, fx, _ = corner(at[0], nx, True)
        y0, y1, fy, _ = corner(at[1], ny, True)
        z0, z1, fz, _ = corner(at[2], nz, True)
        b = trilinear_at(source, 0, x0, x1, fx, y0, y1, fy, z0, z1, fz)
        if np.isnan(b):
            continue
        a = values[i]
        count += 1
        sa += a
        sb += b
        saa += a * a
        sbb += b * b
        sab += a * b
    if count < 50:
        return 1.0
    covariance = sab - sa * sb / count
    return -covariance / np.sqrt((saa - sa * sa / count) * (sbb - sb * sb / count) + 1e-12)
