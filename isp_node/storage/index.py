"""The instance index: which objects the node holds, with their query attributes."""

import sqlite3
from dataclasses import asdict, dataclass, fields

from pydicom.dataset import Dataset


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class InstanceRecord:
    """One stored instance: its identity, query attributes and where its file is."""

    sop_uid: str
    sop_class_uid: str
    series_uid: str
    study_uid: str
    patient_id: str
    patient_name: str
    patient_birth_date: str
    patient_sex: str
    study_date: str
    study_time: str
    accession_number: str
    study_id: str
    study_description: str
    referring_physician_name: str
    modality: str
    series_number: str
    series_description: str
    series_date: str
    series_time: str
    frame_of_reference_uid: str
    instance_number: str
    image_type: str
    transfer_syntax: str
    path: str
    digest: str
    size: int
    calling_ae: str
    received_at: float

    @classmethod
    def from_dataset(
        cls, ds: Dataset, *, transfer_syntax: str, path: str, digest: str,
        size: int, calling_ae: str, received_at: float,
    ) -> "InstanceRecord":
        """Index entry for a received dataset whose UIDs were already validated."""
        return cls(
            sop_uid=ds.SOPInstanceUID,
            sop_class_uid=ds.SOPClassUID,
            series_uid=ds.SeriesInstanceUID,
            study_uid=ds.StudyInstanceUID,
            patient_id=_text(ds, "PatientID"),
            patient_name=_text(ds, "PatientName"),
            patient_birth_date=_text(ds, "PatientBirthDate"),
            patient_sex=_text(ds, "PatientSex"),
            study_date=_text(ds, "StudyDate"),
            study_time=_text(ds, "StudyTime"),
            accession_number=_text(ds, "AccessionNumber"),
            study_id=_text(ds, "StudyID"),
            study_description=_text(ds, "StudyDescription"),
            referring_physician_name=_text(ds, "ReferringPhysicianName"),
            modality=_text(ds, "Modality"),
            series_number=_text(ds, "SeriesNumber"),
            series_description=_text(ds, "SeriesDescription"),
            series_date=_text(ds, "SeriesDate"),
            series_time=_text(ds, "SeriesTime"),
            frame_of_reference_uid=_text(ds, "FrameOfReferenceUID"),
            instance_number=_text(ds, "InstanceNumber"),
            image_type=_text(ds, "ImageType"),
            transfer_syntax=transfer_syntax,
            path=path,
            digest=digest,
            size=size,
            calling_ae=calling_ae,
            received_at=received_at,
        )


_COLUMNS = [f.name for f in fields(InstanceRecord)]


def find_instance(conn: sqlite3.Connection, sop_uid: str) -> sqlite3.Row | None:
    """The index row of one SOP Instance UID, or None."""
    return conn.execute(
        "SELECT * FROM instances WHERE sop_uid = ?", (sop_uid,)
    ).fetchone()


def put_instance(conn: sqlite3.Connection, record: InstanceRecord) -> None:
    """Insert or replace the index row of one instance."""
    placeholders = ", ".join("?" for _ in _COLUMNS)
    conn.execute(
        f"INSERT OR REPLACE INTO instances ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
        tuple(asdict(record).values()),
    )


def series_files(conn: sqlite3.Connection, series_uid: str) -> list[str]:
    """Relative paths of a series' instances, in instance-number order."""
    rows = conn.execute(
        "SELECT path FROM instances WHERE series_uid = ? "
        "ORDER BY CAST(instance_number AS INTEGER), sop_uid",
        (series_uid,),
    ).fetchall()
    return [row["path"] for row in rows]


COMPANION_SECONDS = 60.0


def companion_files(conn: sqlite3.Connection, series_uid: str,
                    window_s: float = COMPANION_SECONDS) -> dict[str, list[str]]:
    """Relative paths, by series, of the other localizer series acquired with this one:
    scanners that write one series per orientation send the stacks of one localizer as
    separate series of the same study and frame of reference, within seconds of each
    other (received within `window_s` of this series' images). A series without a frame
    of reference has no companions."""
    rows = conn.execute(
        """
        WITH own AS (SELECT study_uid, frame_of_reference_uid AS frame,
                            MIN(received_at) AS first, MAX(received_at) AS last
                     FROM instances WHERE series_uid = ? GROUP BY study_uid, frame)
        SELECT i.series_uid, i.path FROM instances i
        JOIN own ON i.study_uid = own.study_uid AND i.frame_of_reference_uid = own.frame
        JOIN series s ON s.series_uid = i.series_uid
        WHERE own.frame != '' AND i.series_uid != ? AND s.is_localizer = 1
          AND i.received_at BETWEEN own.first - ? AND own.last + ?
        ORDER BY i.series_uid, CAST(i.instance_number AS INTEGER), i.sop_uid
        """,
        (series_uid, series_uid, window_s, window_s),
    ).fetchall()
    out: dict[str, list[str]] = {}
    for row in rows:
        out.setdefault(row["series_uid"], []).append(row["path"])
    return out
