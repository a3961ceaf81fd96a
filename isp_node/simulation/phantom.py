"""A three-plane localizer of an ellipsoid phantom, written as scanner-like MR images.

Small and fast: used to exercise the network node end to end (tests, demo,
benchmarks) where the content of the images does not matter, only that they
are valid MR localizer images with consistent patient-space geometry.
"""

from datetime import datetime
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, PYDICOM_IMPLEMENTATION_UID, generate_uid

# Row and column direction cosines (LPS) of the three localizer orientations.
ORIENTATIONS = {
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
    "axial": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
}
SEMI_AXES_MM = np.array([70.0, 90.0, 75.0])  # L-R, A-P, S-I of the phantom


def _uid(seed: int, *parts: object) -> str:
    return generate_uid(entropy_srcs=[str(seed), *map(str, parts)])


def _image(row: np.ndarray, col: np.ndarray, origin: np.ndarray, matrix: int,
           spacing: float, rng: np.random.Generator) -> np.ndarray:
    i, j = np.meshgrid(np.arange(matrix), np.arange(matrix), indexing="ij")
    points = origin + j[..., None] * spacing * row + i[..., None] * spacing * col
    inside = ((points / SEMI_AXES_MM) ** 2).sum(axis=-1) <= 1.0
    image = np.where(inside, 800.0, 0.0) + rng.normal(20.0, 8.0, inside.shape)
    return np.clip(image, 0, 4095).astype(np.uint16)


def phantom_localizer(
    seed: int = 0, per_orientation: int = 3, matrix: int = 64, fov_mm: float = 256.0,
    slice_gap_mm: float = 10.0, patient_id: str = "PHANTOM", series_number: int = 1,
    study_uid: str | None = None,
) -> list[Dataset]:
    """The images of one three-plane localizer series (sagittal, coronal, axial)."""
    rng = np.random.default_rng(seed)
    now = datetime(2026, 1, 1, 8, 0, 0)
    study_uid = study_uid or _uid(seed, "study")
    series_uid = _uid(seed, "series", series_number)
    frame_uid = _uid(seed, "frame")
    spacing = fov_mm / matrix
    datasets = []
    number = 0
    for name, (row, col) in ORIENTATIONS.items():
        row, col = np.array(row), np.array(col)
        normal = np.cross(row, col)
        for k in range(per_orientation):
            number += 1
            offset = (k - (per_orientation - 1) / 2) * slice_gap_mm
            origin = -(matrix / 2) * spacing * (row + col) + offset * normal
            pixels = _image(row, col, origin, matrix, spacing, rng)
            ds = Dataset()
            ds.file_meta = FileMetaDataset()
            ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
            sop_uid = _uid(seed, "image", series_number, number)
            ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
            ds.SpecificCharacterSet = "ISO_IR 100"
            ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
            ds.SOPClassUID = MRImageStorage
            ds.SOPInstanceUID = sop_uid
            ds.StudyDate = ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
            ds.StudyTime = ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
            ds.AccessionNumber = f"A{seed:06d}"
            ds.Modality = "MR"
            ds.Manufacturer = "isp-node phantom"
            ds.ReferringPhysicianName = ""
            ds.StudyDescription = "BRAIN"
            ds.SeriesDescription = "3-plane loc"
            ds.PatientName = f"Phantom^{seed}"
            ds.PatientID = patient_id
            ds.PatientBirthDate = "19700101"
            ds.PatientSex = "O"
            ds.ScanningSequence = "GR"
            ds.SequenceVariant = "SP"
            ds.MRAcquisitionType = "2D"
            ds.SliceThickness = 8.0
            ds.StudyInstanceUID = study_uid
            ds.SeriesInstanceUID = series_uid
            ds.StudyID = "1"
            ds.SeriesNumber = series_number
            ds.InstanceNumber = number
            ds.ImagePositionPatient = [round(float(v), 4) for v in origin]
            ds.ImageOrientationPatient = [float(v) for v in (*row, *col)]
            ds.FrameOfReferenceUID = frame_uid
            ds.PositionReferenceIndicator = ""
            ds.SliceLocation = round(float(offset), 4)
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.Rows = ds.Columns = matrix
            ds.PixelSpacing = [spacing, spacing]
            ds.BitsAllocated = 16
            ds.BitsStored = 12
            ds.HighBit = 11
            ds.PixelRepresentation = 0
            ds.PixelData = pixels.tobytes()
            datasets.append(ds)
    return datasets


def write_series(datasets: list[Dataset], directory: Path) -> list[Path]:
    """Write datasets as DICOM files named by instance number; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in datasets:
        path = directory / f"IM{int(ds.InstanceNumber):04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
