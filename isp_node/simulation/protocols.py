"""Localizer protocols as scanners acquire them, randomised within what DESIGN section 5 accepts.

- ``three_plane``: one series holding sagittal, coronal and axial slices (GE-like).
- ``separate_stacks``: one small series per orientation (Siemens-like).
- ``scout_3d``: one contiguous isotropic low-resolution stack.
"""

from dataclasses import dataclass

import numpy as np

from isp_node.geometry.rotations import axis_angle

PROTOCOLS = ("three_plane", "separate_stacks", "scout_3d")

# (row, col) direction cosines of the standard orientations, as scanners write them.
ORIENTATIONS = {
    "sagittal": (np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, -1.0])),
    "coronal": (np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, -1.0])),
    "axial": (np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])),
}


@dataclass(frozen=True)
class StackSpec:
    """One stack of parallel slices of a localizer."""

    orientation: str
    row: np.ndarray
    col: np.ndarray
    centre: np.ndarray  # LPS mm, centre of the middle slice
    n_slices: int
    thickness: float
    spacing: float  # centre to centre; > thickness means gaps
    matrix: tuple[int, int]  # rows, cols
    pixel_spacing: tuple[float, float]  # between rows, between columns
    series: int  # index of the DICOM series it is written to
    phase_axis: int  # 0: phase encoding along columns (rows index), 1: along rows

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.row, self.col)

    def slice_origin(self, index: int) -> np.ndarray:
        """ImagePositionPatient of slice `index` (centre of its first pixel)."""
        offset = (index - (self.n_slices - 1) / 2) * self.spacing
        rows, cols = self.matrix
        return (self.centre + offset * self.normal
                - (cols - 1) / 2 * self.pixel_spacing[1] * self.row
                - (rows - 1) / 2 * self.pixel_spacing[0] * self.col)


@dataclass(frozen=True)
class Protocol:
    name: str
    stacks: tuple[StackSpec, ...]
    series_descriptions: tuple[str, ...]


def _oblique(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """A small random rotation (obliquity of a localizer stack)."""
    return axis_angle(rng.normal(size=3), rng.uniform(-max_deg, max_deg))


def _stack(orientation: str, rng: np.random.Generator, centre: np.ndarray, series: int,
           n_slices: int, thickness: float, spacing: float, fov: float, matrix: int,
           oblique_deg: float) -> StackSpec:
    row, col = ORIENTATIONS[orientation]
    rotation = _oblique(rng, oblique_deg)
    pixel = fov / matrix
    return StackSpec(orientation, rotation @ row, rotation @ col, centre, n_slices, thickness,
                     spacing, (matrix, matrix), (pixel, pixel), series, int(rng.integers(2)))


def random_protocol(rng: np.random.Generator, name: str | None = None,
                    centre: np.ndarray | None = None) -> Protocol:
    """A localizer protocol with random slices, thickness, gaps, matrix and field of view."""
    name = name or str(rng.choice(PROTOCOLS))
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r} (known: {', '.join(PROTOCOLS)})")
    centre = np.zeros(3) if centre is None else np.asarray(centre, dtype=float)
    fov = float(rng.uniform(220, 300))
    if name == "scout_3d":
        voxel = float(rng.uniform(1.5, 4.0))
        matrix = int(round(fov / voxel))
        orientation = str(rng.choice(["sagittal", "coronal", "axial"]))
        n = int(round(rng.uniform(0.7, 1.0) * fov / voxel))
        stack = _stack(orientation, rng, centre + rng.normal(0, 5, 3), 0, n, voxel, voxel,
                       matrix * voxel, matrix, oblique_deg=0.0)
        return Protocol(name, (stack,), ("3D scout",))
    thickness = float(rng.uniform(5, 10))
    gap = float(rng.choice([0.0, rng.uniform(0, 10)]))
    matrix = int(rng.choice([128, 192, 256, 320, 384, 512], p=[0.2, 0.2, 0.35, 0.1, 0.1, 0.05]))
    per_orientation = int(rng.integers(3, 12)) if name == "three_plane" else int(rng.integers(3, 6))
    orientations = ["sagittal", "coronal", "axial"]
    rng.shuffle(orientations)
    stacks = tuple(
        _stack(o, rng, centre + rng.normal(0, 5, 3),
               0 if name == "three_plane" else i, per_orientation, thickness, thickness + gap,
               fov, matrix, oblique_deg=float(rng.choice([0.0, 0.0, 5.0])))
        for i, o in enumerate(orientations)
    )
    if name == "three_plane":
        return Protocol(name, stacks, (str(rng.choice(["3-plane loc", "3Plane Loc SSFSE", "TriPilot"])),))
    return Protocol(name, stacks, tuple(f"localizer_{s.orientation[:3]}" for s in stacks))
