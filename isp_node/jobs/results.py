"""The result objects of a planned job: made from the stored localizer and the
planner's result, stored through the archive (durable and indexed, so C-FIND,
C-MOVE and C-GET serve them) and queued for forwarding in the same transaction.

The report is stored before the overlays are made, so it is found as early as
possible. UIDs derive from the series and job, so a job run again after a
restart remakes (and keeps) the same objects instead of adding copies.
"""

from dataclasses import dataclass
from io import BytesIO

from pydicom.dataset import Dataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import ExplicitVRLittleEndian

from isp_node.outputs import make_overlays
from isp_node.outputs.localizer import Localizer, ResultSeries
from isp_node.outputs.planning_report import build_planning_report
from isp_node.pipeline.planner import PlanRequest
from isp_node.pipeline.result import PlanningResult
from isp_node.storage.archive import SUCCESS, Archive


class ResultStoreError(RuntimeError):
    """A result object could not be stored; the message says why."""


@dataclass(frozen=True)
class StoredResults:
    """What a job returned, for its record."""

    report_uid: str
    overlay_uids: tuple[str, ...]

    def to_json(self) -> dict:
        return {"report": self.report_uid, "overlays": list(self.overlay_uids)}


def encode(ds: Dataset) -> bytes:
    """The object as a DICOM file (explicit VR little endian)."""
    buffer = BytesIO()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def store(archive: Archive, ds: Dataset, ae_title: str) -> None:
    """Store one object the node made, as if its own AE had sent it."""
    outcome = archive.store(ds, encode(ds), transfer_syntax=ExplicitVRLittleEndian,
                            calling_ae=ae_title)
    if outcome.status != SUCCESS:
        raise ResultStoreError(f"{ds.Modality} {ds.SOPInstanceUID} not stored: "
                               f"{outcome.reason or outcome.outcome.value}")


def store_results(archive: Archive, request: PlanRequest, result: dict,
                  ae_title: str) -> StoredResults:
    """Make and store the report, then the overlays, of one planned localizer series."""
    planning = PlanningResult.from_json(result)
    localizer = Localizer.from_files(request.files)
    series = ResultSeries(localizer, seed=f"{request.series_uid}/job {request.job_id}",
                          device_serial_number=ae_title)
    report = build_planning_report(localizer, planning, series)
    store(archive, report, ae_title)
    overlays = make_overlays(localizer, planning, series)
    for ds in overlays:
        store(archive, ds, ae_title)
    return StoredResults(report.SOPInstanceUID, tuple(ds.SOPInstanceUID for ds in overlays))
