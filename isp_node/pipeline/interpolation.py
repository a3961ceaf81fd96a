"""Linear interpolation of images and volumes at scattered points, compiled.

The loader resamples every localizer image onto the network grids, and the
simulator samples its template, maps and displacement fields at hundreds of
thousands of points per case; scipy's ``map_coordinates`` costs 55-250 ns a
point on a 2-core machine, this kernel about 25, and it samples every component
of a vector field with one set of weights. Its two edge modes are those of
``map_coordinates(order=1)``: ``"zero"`` (``mode="constant", cval=0``: zero
beyond the outermost pixel centres) and ``"nearest"`` (coordinates clamped).
"""

from functools import lru_cache

import numba
import numpy as np

EDGES = ("zero", "nearest")


def sample_trilinear(volume: np.ndarray, to_voxel: np.ndarray, points: np.ndarray,
                     edge: str = "zero") -> np.ndarray:
    """Values of `volume` (nx, ny, nz) or of every component of (c, nx, ny, nz) at
    points (..., 3), where `to_voxel` (4x4 or 3x4) maps a point to voxel indices.

    Returns (...) or (..., c), in the volume's float type (float32 for integers).
    """
    if edge not in EDGES:
        raise ValueError(f"unknown edge mode {edge!r} (known: {', '.join(EDGES)})")
    if volume.ndim not in (3, 4):
        raise ValueError(f"volume must be 3D or 4D (components first), not {volume.ndim}D")
    to_voxel = np.asarray(to_voxel, dtype=np.float64)
    if to_voxel.shape not in ((4, 4), (3, 4)):
        raise ValueError(f"to_voxel must be 4x4 or 3x4, not {to_voxel.shape}")
    points = np.asarray(points)
    if points.shape[-1] != 3:
        raise ValueError(f"points must be (..., 3), not {points.shape}")
    dtype = volume.dtype if volume.dtype in (np.float32, np.float64) else np.dtype(np.float32)
    fields = np.asarray(volume if volume.ndim == 4 else volume[None], dtype=dtype)  # any layout: no copy
    flat = np.ascontiguousarray(points.reshape(-1, 3), dtype=np.float64)
    out = np.empty((len(flat), fields.shape[0]), dtype)
    _trilinear(fields, np.ascontiguousarray(to_voxel[:3]), flat, edge == "nearest", out)
    if volume.ndim == 3:
        return out[:, 0].reshape(points.shape[:-1])
    return out.reshape(*points.shape[:-1], fields.shape[0])


def upsample_linear(values: np.ndarray, shape: tuple[int, ...], step: float,
                    first_axis: int = 0) -> np.ndarray:
    """Linear interpolation of regularly spaced samples `values` at positions 0, step,
    2*step, ... (clamped to the last sample) along `len(shape)` axes from `first_axis`,
    giving `shape` there: one small matrix product per axis (trilinear is separable)."""
    for offset, n in enumerate(shape):
        axis = first_axis + offset
        values = np.moveaxis(np.tensordot(linear_weights(n, step, values.shape[axis]), values,
                                          axes=(1, axis)), 0, axis)
    return values


@lru_cache(maxsize=256)
def linear_weights(n: int, step: float, size: int) -> np.ndarray:
    """(n, size) matrix that linearly interpolates `size` samples at positions 0, step, 2*step, ...
    (clamped to the last sample), as ``map_coordinates(order=1, mode="nearest")`` would.
    Cached (a simulated localizer asks for the same few dozen), hence read-only."""
    weights = interpolation_matrix(np.arange(n) * step, size)
    weights.flags.writeable = False
    return weights


def interpolation_matrix(positions: np.ndarray, size: int) -> np.ndarray:
    """(len(positions), size) matrix that linearly interpolates `size` samples at fractional
    `positions`, clamped to the first and last sample (the "nearest" edge)."""
    position = np.clip(positions, 0, size - 1)
    low = np.minimum(np.floor(position).astype(int), size - 1)
    high = np.minimum(low + 1, size - 1)
    t = position - low
    weights = np.zeros((len(position), size))
    np.add.at(weights, (np.arange(len(position)), low), 1 - t)
    np.add.at(weights, (np.arange(len(position)), high), t)
    return weights


@numba.njit(cache=True, nogil=True)
def bilinear_at(images, index, r, c):
    """Value of image `index` of a stack (n, rows, cols) at fractional pixel indices, clamped
    to the outermost pixel centres (the "nearest" edge), as float32; for compiled callers
    (the stack and index are passed rather than one image: a view costs reference counting)."""
    _, rows, cols = images.shape
    r0, r1, fr, _ = corner(r, rows, True)
    c0, c1, fc, _ = corner(c, cols, True)
    return np.float32((images[index, r0, c0] * (1 - fr) + images[index, r1, c0] * fr) * (1 - fc)
                      + (images[index, r0, c1] * (1 - fr) + images[index, r1, c1] * fr) * fc)


@numba.njit(cache=True, nogil=True)
def corner(position: float, n: int, clamp: bool) -> tuple[int, int, float, bool]:
    """Lower and upper voxel index, weight of the upper, and whether the point is inside."""
    if clamp:
        position = min(max(position, 0.0), n - 1.0)
    elif position < 0.0 or position > n - 1.0:
        return 0, 0, 0.0, False
    low = min(int(np.floor(position)), max(n - 2, 0))
    return low, min(low + 1, n - 1), position - low, True


@numba.njit(cache=True, nogil=True)
def _trilinear(fields, to_voxel, points, clamp, out):
    components, nx, ny, nz = fields.shape
    for i in range(points.shape[0]):
        p0, p1, p2 = points[i, 0], points[i, 1], points[i, 2]
        x0, x1, fx, inside_x = corner(
            to_voxel[0, 0] * p0 + to_voxel[0, 1] * p1 + to_voxel[0, 2] * p2 + to_voxel[0, 3], nx, clamp)
        y0, y1, fy, inside_y = corner(
            to_voxel[1, 0] * p0 + to_voxel[1, 1] * p1 + to_voxel[1, 2] * p2 + to_voxel[1, 3], ny, clamp)
        z0, z1, fz, inside_z = corner(
            to_voxel[2, 0] * p0 + to_voxel[2, 1] * p1 + to_voxel[2, 2] * p2 + to_voxel[2, 3], nz, clamp)
        if not (inside_x and inside_y and inside_z):
            for c in range(components):
                out[i, c] = 0.0
            continue
        for c in range(components):
            out[i, c] = trilinear_at(fields, c, x0, x1, fx, y0, y1, fy, z0, z1, fz)


@numba.njit(cache=True, nogil=True)
def trilinear_at(fields, c, x0, x1, fx, y0, y1, fy, z0, z1, fz):
    """Component `c` of a field (c, nx, ny, nz) between the corners `corner` gave, for
    compiled callers (the field and component are passed rather than a view)."""
    low = ((fields[c, x0, y0, z0] * (1 - fx) + fields[c, x1, y0, z0] * fx) * (1 - fy)
           + (fields[c, x0, y1, z0] * (1 - fx) + fields[c, x1, y1, z0] * fx) * fy)
    high = ((fields[c, x0, y0, z1] * (1 - fx) + fields[c, x1, y0, z1] * fx) * (1 - fy)
            + (fields[c, x0, y1, z1] * (1 - fx) + fields[c, x1, y1, z1] * fx) * fy)
    return low * (1 - fz) + high * fz
