"""A three-plane localizer of an ellipsoid phantom, written as scanner-like MR images.

Small and fast: used to exercise the network node end to end (tests, demo,
benchmarks) where the content of the images does not matter, only that they
are valid MR localizer images with consistent patient-space geometry.
"""

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from isp_node.pipeline.slices import ImageSlice
from isp_node.simulation.dicom_series import StudyInfo, mr_image, write_datasets
from isp_node.simulation.protocols import ORIENTATIONS

SEMI_AXES_MM = np.array([70.0, 90.0, 75.0])  # L-R, A-P, S-I of the phantom


def _slice(row: np.ndarray, col: np.ndarray, offset: float, matrix: int, spacing: float,
           rng: np.random.Generator) -> ImageSlice:
    normal = np.cross(row, col)
    origin = -(matrix - 1) / 2 * spacing * (row + col) + offset * normal
    geometry = ImageSlice(np.zeros((matrix, matrix), np.float32), origin, row, col,
                          (spacing, spacing), 8.0)
    inside = ((geometry.pixel_grid() / SEMI_AXES_MM) ** 2).sum(axis=-1) <= 1.0
    pixels = np.where(inside, 800.0, 0.0) + rng.normal(20.0, 8.0, inside.shape)
    return ImageSlice(pixels.astype(np.float32), origin, row, col, (spacing, spacing), 8.0)


def phantom_localizer(
    seed: int = 0, per_orientation: int = 3, matrix: int = 64, fov_mm: float = 256.0,
    slice_gap_mm: float = 10.0, patient_id: str = "PHANTOM", series_number: int = 1,
) -> list[Dataset]:
    """The images of one three-plane localizer series (sagittal, coronal, axial)."""
    rng = np.random.default_rng(seed)
    study = StudyInfo(seed, f"Phantom^{seed}", patient_id, manufacturer="isp-node phantom")
    spacing = fov_mm / matrix
    datasets = []
    for name, (row, col) in ORIENTATIONS.items():
        for k in range(per_orientation):
            offset = (k - (per_orientation - 1) / 2) * slice_gap_mm
            s = _slice(row, col, offset, matrix, spacing, rng)
            datasets.append(mr_image(s, study, series_number - 1, "3-plane loc",
                                     len(datasets) + 1))
    return datasets


def write_series(datasets: list[Dataset], directory: Path) -> list[Path]:
    """Write datasets as DICOM files; return the paths."""
    return write_datasets(datasets, directory)
