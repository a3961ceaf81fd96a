"""Read a localizer series from DICOM files into patient-space `ImageSlice`s.

Accepts any slice orientations, positions and spacings: single-frame MR images
(one slice each) and multi-frame Enhanced MR images (one slice per frame).
Files that cannot be used are skipped with a reason; a series with nothing
usable left raises `LocalizerError` saying why.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from isp_node.pipeline.slices import ImageSlice


class LocalizerError(ValueError):
    """The series cannot be planned; the message says why, for the operator."""


@dataclass
class LoadedLocalizer:
    """The usable slices of a series and what was wrong with the rest."""

    slices: list[ImageSlice]
    problems: list[str] = field(default_factory=list)


def _floats(value, count: int, what: str) -> np.ndarray:
    try:
        array = np.array([float(v) for v in value], dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{what} is not numeric") from None
    if array.shape != (count,) or not np.all(np.isfinite(array)):
        raise ValueError(f"{what} must have {count} finite values")
    return array


def _orientation(iop) -> tuple[np.ndarray, np.ndarray]:
    values = _floats(iop, 6, "ImageOrientationPatient")
    row, col = values[:3], values[3:]
    if not (abs(np.linalg.norm(row) - 1) < 1e-2 and abs(np.linalg.norm(col) - 1) < 1e-2
            and abs(row @ col) < 1e-2):
        raise ValueError("ImageOrientationPatient is not two orthonormal directions")
    col = col - (col @ row) * row
    return row / np.linalg.norm(row), col / np.linalg.norm(col)


def _frame_geometry(ds: Dataset, frame: int | None) -> tuple[list, list, list, float | None]:
    """(position, orientation, pixel spacing, thickness) of a single-frame image or one frame."""
    if frame is None:
        return (ds.get("ImagePositionPatient"), ds.get("ImageOrientationPatient"),
                ds.get("PixelSpacing"), ds.get("SliceThickness"))
    groups = [ds.PerFrameFunctionalGroupsSequence[frame]]
    if "SharedFunctionalGroupsSequence" in ds:
        groups.append(ds.SharedFunctionalGroupsSequence[0])

    def find(sequence: str, keyword: str):
        for group in groups:
            if sequence in group and keyword in group[sequence][0]:
                return group[sequence][0][keyword].value
        return None

    return (find("PlanePositionSequence", "ImagePositionPatient"),
            find("PlaneOrientationSequence", "ImageOrientationPatient"),
            find("PixelMeasuresSequence", "PixelSpacing"),
            find("PixelMeasuresSequence", "SliceThickness"))


def image_slices(ds: Dataset) -> list[ImageSlice]:
    """The patient-space slices of one MR image (one per frame); ValueError says why not."""
    if "PixelData" not in ds:
        raise ValueError("no pixel data")
    pixels = ds.pixel_array.astype(np.float32)
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    pixels = pixels * slope + intercept
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if pixels.ndim == 2:
        pixels = pixels[None]
    if pixels.ndim != 3 or pixels.shape[0] != frames:
        raise ValueError(f"pixel data of shape {pixels.shape} is not {frames} grayscale frame(s)")
    slices = []
    for index in range(frames):
        position, iop, spacing, thickness = _frame_geometry(
            ds, index if "PerFrameFunctionalGroupsSequence" in ds else None)
        if position is None or iop is None or spacing is None:
            raise ValueError("no patient geometry (ImagePositionPatient, "
                             "ImageOrientationPatient, PixelSpacing)")
        row, col = _orientation(iop)
        spacing = _floats(spacing, 2, "PixelSpacing")
        if np.any(spacing <= 0):
            raise ValueError("PixelSpacing must be positive")
        thickness = float(thickness) if thickness not in (None, "") else float(spacing.min())
        uid = str(ds.SOPInstanceUID) + (f"#{index + 1}" if frames > 1 else "")
        slices.append(ImageSlice(
            pixels[index], _floats(position, 3, "ImagePositionPatient"), row, col,
            (float(spacing[0]), float(spacing[1])), max(thickness, 1e-3), uid,
            str(ds.get("SeriesInstanceUID", "")),
            meta={"instance_number": int(ds.get("InstanceNumber", 0) or 0)},
        ))
    return slices


def load_localizer(paths: Iterable[Path]) -> LoadedLocalizer:
    """Read the files of one series; raise LocalizerError when nothing can be planned."""
    loaded = LoadedLocalizer([])
    for path in paths:
        try:
            ds = pydicom.dcmread(path)
            if str(ds.get("Modality", "")) != "MR":
                raise ValueError(f"modality {ds.get('Modality', 'missing')!s}, not MR")
            loaded.slices.extend(image_slices(ds))
        except Exception as exc:  # any undecodable or inconsistent file is reported, not fatal
            loaded.problems.append(f"{Path(path).name}: {exc}")
    if not loaded.slices:
        reasons = "; ".join(loaded.problems[:3]) or "no files"
        raise LocalizerError(f"no usable localizer image ({reasons})")
    if len(loaded.slices) < 2:
        raise LocalizerError("only one localizer image: at least two orientations are needed")
    return loaded
