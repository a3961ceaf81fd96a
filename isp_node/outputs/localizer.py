"""The localizer series the result objects refer to, and who made them.

Every result object goes into the localizer's study, in a new series, with the
localizer's Frame of Reference; `Localizer` gathers what they copy from it and
`ResultSeries` hands out their UIDs and series numbers.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from isp_node import __version__
from isp_node.pipeline.loader import image_slices
from isp_node.pipeline.slices import ImageSlice

MANUFACTURER = "isp-node"
REQUIRED = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
# Type 2 attributes the results copy from the localizer: empty when a scanner left them out.
COPIED = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber",
          "StudyID", "StudyDate", "StudyTime", "ReferringPhysicianName")


class LocalizerInputError(ValueError):
    """No result object can refer to these files; the message says why."""


@dataclass(frozen=True)
class Localizer:
    """One localizer series: its datasets, and the geometry of every image that has one."""

    datasets: tuple[Dataset, ...]
    slices: dict[str, ImageSlice]  # by SOP Instance UID, "#<frame>" appended for multi-frame

    def __post_init__(self) -> None:
        if not self.datasets:
            raise LocalizerInputError("no localizer images")
        for ds in self.datasets:
            missing = [k for k in REQUIRED if not ds.get(k)]
            if missing:
                raise LocalizerInputError(f"a localizer image lacks {', '.join(missing)}")
        studies = {ds.StudyInstanceUID for ds in self.datasets}
        series = {ds.SeriesInstanceUID for ds in self.datasets}
        if len(studies) > 1 or len(series) > 1:
            raise LocalizerInputError("localizer images of more than one series")

    @classmethod
    def from_datasets(cls, datasets: Iterable[Dataset]) -> "Localizer":
        """Images without usable geometry or pixels stay as evidence but get no overlay."""
        datasets = tuple(sorted(datasets, key=lambda d: (int(d.get("InstanceNumber", 0) or 0),
                                                         str(d.get("SOPInstanceUID", "")))))
        slices: dict[str, ImageSlice] = {}
        for ds in datasets:
            for keyword in COPIED:
                if keyword not in ds:
                    setattr(ds, keyword, "")
            try:
                slices.update((s.uid, s) for s in image_slices(ds))
            except Exception:  # undecodable or geometry-less images are reported by the planner
                continue
        return cls(datasets, slices)

    @classmethod
    def from_files(cls, paths: Iterable[Path]) -> "Localizer":
        """Read the stored files of one series."""
        return cls.from_datasets(pydicom.dcmread(p) for p in paths)

    @property
    def first(self) -> Dataset:
        return self.datasets[0]

    @property
    def frame_of_reference_uid(self) -> str:
        return next((str(ds.FrameOfReferenceUID) for ds in self.datasets
                     if ds.get("FrameOfReferenceUID")), "")

    @property
    def series_number(self) -> int:
        try:
            return int(self.first.get("SeriesNumber") or 0)
        except (TypeError, ValueError):
            return 0

    def image_slices(self, ds: Dataset) -> list[tuple[int | None, ImageSlice]]:
        """(frame number or None for single-frame, slice) of one dataset that has geometry."""
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        if frames == 1:
            s = self.slices.get(str(ds.SOPInstanceUID))
            return [(None, s)] if s is not None else []
        return [(n, self.slices[key]) for n in range(1, frames + 1)
                if (key := f"{ds.SOPInstanceUID}#{n}") in self.slices]


# Series numbers of the results: the localizer's number times 100 plus these.
SERIES_OFFSETS = {"report": 91, "presentation": 92, "capture": 93}


@dataclass(frozen=True)
class ResultSeries:
    """Identity of the result objects made for one localizer: deterministic UIDs from
    `seed`, so that a job run again after a restart remakes the same objects."""

    localizer: Localizer
    seed: str = field(default_factory=generate_uid)
    device_serial_number: str = "ISPNODE"
    software_version: str = __version__

    def uid(self, *parts: object) -> str:
        return generate_uid(entropy_srcs=[self.seed, *map(str, parts)])

    def series_uid(self, kind: str) -> str:
        return self.uid(kind, "series")

    def series_number(self, kind: str) -> int:
        return self.localizer.series_number * 100 + SERIES_OFFSETS[kind]
