"""C-FIND matching and C-MOVE / C-GET selection over the instance index.

Implements the matching of PS3.4 C.2.2.2 on the keys the index holds: single
value, wildcard (``*`` and ``?``), range (dates and times), list of UIDs and
universal (empty) matching. One response per matching entity at the query level.
"""

import sqlite3
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
)

LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
PATIENT_ROOT_MODELS = {
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
}


class QueryError(ValueError):
    """The identifier is not a valid query for the information model."""


@dataclass(frozen=True)
class Key:
    column: str
    level: str
    vr: str


KEYS: dict[str, Key] = {
    "PatientID": Key("patient_id", "PATIENT", "LO"),
    "PatientName": Key("patient_name", "PATIENT", "PN"),
    "PatientBirthDate": Key("patient_birth_date", "PATIENT", "DA"),
    "PatientSex": Key("patient_sex", "PATIENT", "CS"),
    "StudyInstanceUID": Key("study_uid", "STUDY", "UI"),
    "StudyDate": Key("study_date", "STUDY", "DA"),
    "StudyTime": Key("study_time", "STUDY", "TM"),
    "AccessionNumber": Key("accession_number", "STUDY", "SH"),
    "StudyID": Key("study_id", "STUDY", "SH"),
    "StudyDescription": Key("study_description", "STUDY", "LO"),
    "ReferringPhysicianName": Key("referring_physician_name", "STUDY", "PN"),
    "SeriesInstanceUID": Key("series_uid", "SERIES", "UI"),
    "Modality": Key("modality", "SERIES", "CS"),
    "SeriesNumber": Key("series_number", "SERIES", "IS"),
    "SeriesDescription": Key("series_description", "SERIES", "LO"),
    "SeriesDate": Key("series_date", "SERIES", "DA"),
    "SeriesTime": Key("series_time", "SERIES", "TM"),
    "FrameOfReferenceUID": Key("frame_of_reference_uid", "SERIES", "UI"),
    "SOPInstanceUID": Key("sop_uid", "IMAGE", "UI"),
    "SOPClassUID": Key("sop_class_uid", "IMAGE", "UI"),
    "InstanceNumber": Key("instance_number", "IMAGE", "IS"),
}
UNIQUE_KEY = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID",
              "SERIES": "SeriesInstanceUID", "IMAGE": "SOPInstanceUID"}
# Attributes computed over the entity (PS3.4 C.3.4).
COUNTS = {
    "NumberOfPatientRelatedStudies": ("PATIENT", "n_studies"),
    "NumberOfPatientRelatedSeries": ("PATIENT", "n_series"),
    "NumberOfPatientRelatedInstances": ("PATIENT", "n_instances"),
    "NumberOfStudyRelatedSeries": ("STUDY", "n_series"),
    "NumberOfStudyRelatedInstances": ("STUDY", "n_instances"),
    "NumberOfSeriesRelatedInstances": ("SERIES", "n_instances"),
}


def query_level(identifier: Dataset, sop_class_uid: str) -> str:
    """The QueryRetrieveLevel of a request, checked against its information model."""
    level = str(identifier.get("QueryRetrieveLevel", "")).strip().upper()
    if level not in LEVELS:
        raise QueryError(f"QueryRetrieveLevel {level!r} is not one of {', '.join(LEVELS)}")
    if level == "PATIENT" and sop_class_uid not in PATIENT_ROOT_MODELS:
        raise QueryError("PATIENT level exists only in the Patient Root model")
    return level


def _visible(level: str) -> set[str]:
    """Levels whose attributes can be matched and returned at `level`."""
    depth = LEVELS.index(level)
    return set(LEVELS[: depth + 1])


def _glob_escape(text: str) -> str:
    return text.replace("[", "[[]")


def _condition(key: Key, value: str) -> tuple[str, list[str]]:
    """SQL condition and parameters for one non-empty matching key."""
    col = key.column
    if key.vr == "UI":
        uids = [v.strip() for v in value.split("\\") if v.strip()]
        return f"{col} IN ({', '.join('?' for _ in uids)})", uids
    if key.vr in ("DA", "TM") and "-" in value:
        low, _, high = value.partition("-")
        parts, params = [], []
        if low:
            parts.append(f"{col} >= ?")
            params.append(low.strip())
        if high:
            high = high.strip()
            parts.append(f"substr({col}, 1, {len(high)}) <= ?")
            params.append(high)
        parts.append(f"{col} != ''")
        return " AND ".join(parts), params
    if key.vr in ("DA", "TM"):
        return f"{col} = ?", [value.strip()]
    fold = "lower" if key.vr == "PN" else ""
    if "*" in value or "?" in value:
        pattern = _glob_escape(value.lower() if fold else value)
        return f"{fold}({col}) GLOB ?", [pattern]
    return f"{fold}({col}) = ?", [value.lower() if fold else value]


def _where(identifier: Dataset, levels: set[str]) -> tuple[str, list[str]]:
    conditions, params = [], []
    for keyword, key in KEYS.items():
        if key.level not in levels or keyword not in identifier:
            continue
        value = identifier[keyword].value
        text = "\\".join(str(v) for v in value) if isinstance(value, (list, tuple)) or \
            type(value).__name__ == "MultiValue" else ("" if value is None else str(value))
        if text.strip() == "" or text == "*":
            continue  # universal matching
        condition, values = _condition(key, text)
        conditions.append(condition)
        params.extend(values)
    return (" AND ".join(conditions) or "1"), params


def find(conn: sqlite3.Connection, identifier: Dataset, sop_class_uid: str,
         retrieve_ae_title: str) -> list[Dataset]:
    """One response identifier per entity matching a C-FIND request."""
    level = query_level(identifier, sop_class_uid)
    levels = _visible(level)
    where, params = _where(identifier, levels)
    group_col = KEYS[UNIQUE_KEY[level]].column
    columns = [k.column for k in KEYS.values() if k.level in levels]
    select = ", ".join(f"MIN({c}) AS {c}" for c in columns)
    rows = conn.execute(
        f"SELECT {select}, COUNT(*) AS n_instances, COUNT(DISTINCT series_uid) AS n_series, "
        f"COUNT(DISTINCT study_uid) AS n_studies, GROUP_CONCAT(DISTINCT modality) AS modalities "
        f"FROM instances WHERE {where} GROUP BY {group_col} ORDER BY MIN(received_at)",
        params,
    ).fetchall()

    wanted_modalities: set[str] = set()
    if "ModalitiesInStudy" in identifier and level == "STUDY":
        value = identifier.ModalitiesInStudy
        values = value if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" \
            else [value]
        wanted_modalities = {str(v) for v in values if v and str(v) != "*"}

    responses = []
    for row in rows:
        modalities = sorted(m for m in (row["modalities"] or "").split(",") if m)
        if wanted_modalities and not wanted_modalities & set(modalities):
            continue
        responses.append(_response(identifier, level, levels, row, modalities, retrieve_ae_title))
    return responses


def _response(identifier: Dataset, level: str, levels: set[str], row: sqlite3.Row,
              modalities: list[str], retrieve_ae_title: str) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    for element in identifier:
        keyword = element.keyword
        if keyword in ("SpecificCharacterSet", "QueryRetrieveLevel", "RetrieveAETitle"):
            continue
        if keyword in KEYS and KEYS[keyword].level in levels:
            value = row[KEYS[keyword].column]
            setattr(ds, keyword, value if value != "" else None)
        elif keyword in COUNTS and COUNTS[keyword][0] == level:
            setattr(ds, keyword, row[COUNTS[keyword][1]])
        elif keyword == "ModalitiesInStudy" and level == "STUDY":
            ds.ModalitiesInStudy = modalities
        elif keyword:
            setattr(ds, keyword, None)
    ds.QueryRetrieveLevel = level
    ds.RetrieveAETitle = retrieve_ae_title
    return ds


def retrieve_paths(conn: sqlite3.Connection, identifier: Dataset, sop_class_uid: str) -> list[str]:
    """Relative file paths of the instances a C-MOVE or C-GET request names."""
    level = query_level(identifier, sop_class_uid)
    unique = UNIQUE_KEY[level]
    if not str(identifier.get(unique, "") or "").strip():
        raise QueryError(f"a {level} level retrieve needs {unique}")
    levels = _visible(level)
    keys = Dataset()
    for lvl in levels:
        keyword = UNIQUE_KEY[lvl]
        if keyword in identifier:
            keys[keyword] = identifier[keyword]
    where, params = _where(keys, levels)
    rows = conn.execute(
        f"SELECT path FROM instances WHERE {where} "
        "ORDER BY study_uid, series_uid, CAST(instance_number AS INTEGER)",
        params,
    ).fetchall()
    return [row["path"] for row in rows]
