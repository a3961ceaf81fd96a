"""C-FIND matching rules on a real SQLite index."""

import dataclasses

import pytest
from pydicom.dataset import Dataset
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)

from isp_node.network import query
from isp_node.storage import index
from isp_node.storage.database import Database

STUDY_ROOT = StudyRootQueryRetrieveInformationModelFind


def record(sop, series, study, **values):
    base = {f.name: "" for f in dataclasses.fields(index.InstanceRecord)}
    base.update(sop_uid=sop, series_uid=series, study_uid=study, sop_class_uid="1.2.3",
                transfer_syntax="1.2.840.10008.1.2.1", path=f"objects/{sop}", digest="d",
                size=1, received_at=float(sop.split(".")[-1]))
    base.update(values)
    return index.InstanceRecord(**base)


@pytest.fixture
def conn(tmp_path):
    db = Database(tmp_path / "q.sqlite")
    with db.transaction() as tx:
        for i in range(3):
            index.put_instance(tx, record(f"9.{i}", "1.1", "1", patient_id="P1",
                                          patient_name="Doe^Jane", study_date="20260110",
                                          study_time="101500", modality="MR",
                                          instance_number=str(i + 1)))
        index.put_instance(tx, record("9.3", "2.1", "2", patient_id="P2", patient_name="Roe^[x]",
                                      study_date="20260220", study_time="154500", modality="SR"))
        index.put_instance(tx, record("9.4", "1.2", "1", patient_id="P1",
                                      patient_name="Doe^Jane", study_date="20260110",
                                      study_time="101500", modality="PR"))
    return db.connection()


def ask(conn, model=STUDY_ROOT, **keys):
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return query.find(conn, ds, model, "ISPNODE")


def test_one_response_per_entity_with_counts(conn):
    studies = ask(conn, QueryRetrieveLevel="STUDY", StudyInstanceUID="",
                  NumberOfStudyRelatedInstances="", NumberOfStudyRelatedSeries="",
                  ModalitiesInStudy="")
    by_uid = {s.StudyInstanceUID: s for s in studies}
    assert set(by_uid) == {"1", "2"}
    assert by_uid["1"].NumberOfStudyRelatedInstances == 4
    assert by_uid["1"].NumberOfStudyRelatedSeries == 2
    assert list(by_uid["1"].ModalitiesInStudy) == ["MR", "PR"]


@pytest.mark.parametrize("keys, expected", [
    ({"StudyDate": "20260101-20260131"}, {"1"}),
    ({"StudyDate": "20260201-"}, {"2"}),
    ({"StudyDate": "-20260110"}, {"1"}),
    ({"StudyDate": "20260110"}, {"1"}),
    ({"StudyTime": "1000-1100"}, {"1"}),
    ({"StudyTime": "1545-"}, {"2"}),
    ({"StudyTime": "-1545"}, {"1", "2"}),
    ({"PatientName": "DOE*"}, {"1"}),
    ({"PatientName": "Roe^[x]"}, {"2"}),  # '[' is literal, not a GLOB class
    ({"PatientName": "*^?ane"}, {"1"}),
    ({"PatientID": "P?"}, {"1", "2"}),
    ({"PatientID": "P1"}, {"1"}),
    ({"StudyInstanceUID": ["2", "1"]}, {"1", "2"}),
    ({"StudyInstanceUID": "2"}, {"2"}),
    ({"ModalitiesInStudy": "PR"}, {"1"}),
    ({"ModalitiesInStudy": ["CT", "SR"]}, {"2"}),
    ({"PatientName": "*"}, {"1", "2"}),
])
def test_matching(conn, keys, expected):
    keys.setdefault("StudyInstanceUID", "")
    studies = ask(conn, QueryRetrieveLevel="STUDY", **keys)
    assert {s.StudyInstanceUID for s in studies} == expected


def test_lower_level_keys_are_not_matched_at_higher_levels(conn):
    studies = ask(conn, QueryRetrieveLevel="STUDY", StudyInstanceUID="", SOPInstanceUID="9.0")
    assert len(studies) == 2 and all(s.SOPInstanceUID is None for s in studies)


def test_patient_level_only_in_patient_root(conn):
    patients = ask(conn, PatientRootQueryRetrieveInformationModelFind,
                   QueryRetrieveLevel="PATIENT", PatientID="", NumberOfPatientRelatedStudies="")
    assert {(p.PatientID, p.NumberOfPatientRelatedStudies) for p in patients} == {("P1", 1), ("P2", 1)}
    with pytest.raises(query.QueryError):
        ask(conn, QueryRetrieveLevel="PATIENT", PatientID="")
    with pytest.raises(query.QueryError):
        ask(conn, QueryRetrieveLevel="FRAME")


def test_retrieve_needs_the_level_unique_key(conn):
    ds = Dataset()
    ds.QueryRetrieveLevel = "SERIES"
    ds.StudyInstanceUID = "1"
    with pytest.raises(query.QueryError):
        query.retrieve_paths(conn, ds, StudyRootQueryRetrieveInformationModelGet)
    ds.SeriesInstanceUID = "1.1"
    assert query.retrieve_paths(conn, ds, StudyRootQueryRetrieveInformationModelGet) == [
        "objects/9.0", "objects/9.1", "objects/9.2"]
