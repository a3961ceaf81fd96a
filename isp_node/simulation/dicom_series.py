"""Write simulated localizer slices as scanner-like MR Image Storage objects."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, PYDICOM_IMPLEMENTATION_UID, generate_uid

from isp_node import __version__
from isp_node.pipeline.slices import ImageSlice

MAX_STORED = 4095  # 12 bits stored, as most MR scanners write


def make_uid(seed: int, *parts: object) -> str:
    """A UID derived deterministically from a seed and labels."""
    return generate_uid(entropy_srcs=[str(seed), *map(str, parts)])


@dataclass(frozen=True)
class StudyInfo:
    """Patient and study attributes shared by every image of a simulated case."""

    seed: int
    patient_name: str
    patient_id: str
    study_date: str = "20260101"
    study_time: str = "080000"
    birth_date: str = "19700101"
    sex: str = "O"
    manufacturer: str = "isp-node simulator"
    field_strength: float = 3.0

    @property
    def study_uid(self) -> str:
        return make_uid(self.seed, "study")

    @property
    def frame_uid(self) -> str:
        return make_uid(self.seed, "frame")

    def series_uid(self, series: int) -> str:
        return make_uid(self.seed, "series", series)


def mr_image(s: ImageSlice, study: StudyInfo, series: int, description: str,
             number: int, image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "LOCALIZER"),
             phase_direction: str = "ROW") -> Dataset:
    """One MR Image Storage dataset holding slice `s` (pixels rounded to 12 bits)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    sop_uid = make_uid(study.seed, "image", series, number)
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta.ImplementationVersionName = f"ISPNODE_{__version__}"[:16]
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = list(image_type)
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = study.study_date
    ds.StudyTime = study.study_time
    ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = f"{int(study.study_time[:2]):02d}{series:02d}00"
    ds.AccessionNumber = f"A{study.seed % 10**8:08d}"
    ds.Modality = "MR"
    ds.Manufacturer = study.manufacturer
    ds.InstitutionName = "isp-node"
    ds.ReferringPhysicianName = ""
    ds.StationName = "SIM"
    ds.StudyDescription = "BRAIN"
    ds.SeriesDescription = description
    ds.ManufacturerModelName = "localizer simulator"
    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    ds.PatientBirthDate = study.birth_date
    ds.PatientSex = study.sex
    ds.ScanningSequence = "GR"
    ds.SequenceVariant = "SP"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.SliceThickness = round(float(s.thickness), 4)
    ds.RepetitionTime = 8.0
    ds.EchoTime = 3.5
    ds.ImagingFrequency = round(42.577 * study.field_strength, 4)
    ds.MagneticFieldStrength = study.field_strength
    ds.FlipAngle = 20
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study.study_uid
    ds.SeriesInstanceUID = study.series_uid(series)
    ds.StudyID = "1"
    ds.SeriesNumber = series + 1
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = number
    ds.ImagePositionPatient = [round(float(v), 4) for v in s.position]
    ds.ImageOrientationPatient = [round(float(v), 6) for v in (*s.row, *s.col)]
    ds.FrameOfReferenceUID = study.frame_uid
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = round(float(s.centre @ s.normal), 4)
    ds.InPlanePhaseEncodingDirection = phase_direction
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = s.shape
    ds.PixelSpacing = [round(float(v), 6) for v in s.spacing]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    pixels = np.clip(np.rint(s.pixels), 0, MAX_STORED).astype(np.uint16)
    ds.WindowCenter = int(np.percentile(pixels, 99) / 2) or 1
    ds.WindowWidth = int(np.percentile(pixels, 99)) or 2
    ds.PixelData = pixels.tobytes()
    return ds


def write_datasets(datasets: list[Dataset], directory: Path) -> list[Path]:
    """Write datasets as DICOM files named by series and instance number."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in datasets:
        path = directory / f"S{int(ds.SeriesNumber):02d}_IM{int(ds.InstanceNumber):04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
