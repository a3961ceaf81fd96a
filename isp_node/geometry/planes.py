"""Prescribed imaging planes in patient space, their rigid transforms and accuracy metrics.

A plane is what a radiographer drags on the console: a centre, a slice normal,
the in-plane row and column directions of the images, a field of view and a
stack of slices. Everything is DICOM patient space, LPS, millimetres.
"""

from dataclasses import dataclass

import numpy as np

ORTHONORMAL_TOLERANCE = 1e-6
_IDENTITY = np.eye(3)
_HOMOGENEOUS_ROW = np.array([0.0, 0.0, 0.0, 1.0])
_HOMOGENEOUS_TOLERANCE = 1e-8 + 1e-5 * _HOMOGENEOUS_ROW  # as np.allclose's defaults


@dataclass(frozen=True)
class Plane:
    """A prescribed slice stack: centre, unit normal, row and column directions, coverage."""

    centre: np.ndarray  # (3,) mm, LPS
    normal: np.ndarray  # (3,) unit, slices are stacked along it
    row: np.ndarray  # (3,) unit, direction along an image row (DICOM ImageOrientationPatient[:3])
    col: np.ndarray  # (3,) unit, direction down an image column (ImageOrientationPatient[3:])
    fov_mm: tuple[float, float]  # extent along row, extent along col
    slab_mm: float  # thickness covered by the whole stack
    n_slices: int
    spacing_mm: float  # centre-to-centre distance of adjacent slices

    def __post_init__(self) -> None:
        for name in ("centre", "normal", "row", "col"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=float).reshape(3))
        if not orthonormal(np.stack([self.row, self.col, self.normal])):
            raise ValueError("plane row, col and normal must be orthonormal")

    def corners(self) -> np.ndarray:
        """The four corners (4, 3) of the field-of-view rectangle, in drawing order."""
        half_row = self.row * self.fov_mm[0] / 2
        half_col = self.col * self.fov_mm[1] / 2
        c = self.centre
        return np.stack([c - half_row - half_col, c + half_row - half_col,
                         c + half_row + half_col, c - half_row + half_col])

    def signed_distance(self, point: np.ndarray) -> float:
        """Distance (mm) of ``point`` from the plane, positive on the side the normal points to."""
        return float((np.asarray(point, dtype=float) - self.centre) @ self.normal)


def orthonormal(basis: np.ndarray, tolerance: float = ORTHONORMAL_TOLERANCE) -> bool:
    """Whether the rows of the 3x3 `basis` are orthonormal within `tolerance`: what
    ``np.allclose(basis @ basis.T, np.eye(3), atol=tolerance)`` says, at a tenth of its
    cost (every plane made and moved is checked, dozens per localizer)."""
    return bool((np.abs(basis @ basis.T - _IDENTITY) <= tolerance + 1e-5 * _IDENTITY).all())


def plane_json(p: Plane) -> dict:
    """The plane as JSON-ready lists and numbers (the shape planners and truth.json use)."""
    return {"centre": p.centre.tolist(), "normal": p.normal.tolist(), "row": p.row.tolist(),
            "col": p.col.tolist(), "fov_mm": list(p.fov_mm), "slab_mm": p.slab_mm,
            "n_slices": p.n_slices, "spacing_mm": p.spacing_mm}


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to length 1; refuses a zero vector because no direction can be had from it."""
    v = np.asarray(v, dtype=float)
    norm = np.linalg.norm(v)
    if norm < 1e-9:
        raise ValueError("cannot normalise a zero-length vector (coincident landmarks?)")
    return v / norm


def orthogonal_unit(v: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The direction of ``v`` with its component along the unit vector ``n`` removed (unit)."""
    return unit(v - (v @ n) * n)


def rigid_parts(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a 4x4 rigid transform into rotation and translation, refusing anything else."""
    m = np.asarray(matrix, dtype=float)
    if m.shape != (4, 4) or not (np.abs(m[3] - _HOMOGENEOUS_ROW) <= _HOMOGENEOUS_TOLERANCE).all():
        raise ValueError("expected a 4x4 homogeneous matrix")
    rotation = m[:3, :3]
    if not orthonormal(rotation) or np.linalg.det(rotation) < 0:
        raise ValueError("matrix is not a proper rigid transform (rotation + translation)")
    return rotation, m[:3, 3]


def transform_plane(plane: Plane, matrix: np.ndarray) -> Plane:
    """The plane carried by a rigid 4x4 transform (e.g. a head's pose)."""
    rotation, translation = rigid_parts(matrix)
    return Plane(
        centre=rotation @ plane.centre + translation,
        normal=rotation @ plane.normal,
        row=rotation @ plane.row,
        col=rotation @ plane.col,
        fov_mm=plane.fov_mm, slab_mm=plane.slab_mm,
        n_slices=plane.n_slices, spacing_mm=plane.spacing_mm,
    )


def normal_angle_deg(predicted: Plane, truth: Plane, oriented: bool = False) -> float:
    """Angle (degrees) between the normals; by default of the unoriented planes (0..90)."""
    cosine = float(predicted.normal @ truth.normal)
    if not oriented:
        cosine = abs(cosine)
    return float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))))


def centre_distance_mm(predicted: Plane, truth: Plane) -> float:
    """Distance (mm) from the true centre to the predicted plane."""
    return abs(predicted.signed_distance(truth.centre))
