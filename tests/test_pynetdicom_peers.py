"""The node against pynetdicom as the scanner, viewer and PACS."""

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    MRImageStorage,
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from conftest import NODE_AE


def associate(node, calling="SCANNER", contexts=(), roles=(), evt_handlers=None):
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    for context in contexts:
        if isinstance(context, tuple):
            ae.add_requested_context(*context)
        else:
            ae.add_requested_context(context)
    return ae.associate("127.0.0.1", node.port, ae_title=NODE_AE,
                        ext_neg=list(roles), evt_handlers=evt_handlers)


def store_all(node, datasets, syntax=ExplicitVRLittleEndian, calling="SCANNER"):
    assoc = associate(node, calling, [(MRImageStorage, [syntax])])
    assert assoc.is_established
    statuses = [assoc.send_c_store(ds).Status for ds in datasets]
    assoc.release()
    return statuses


@pytest.fixture
def datasets(localizer):
    return [pydicom.dcmread(p) for p in localizer]



@pytest.mark.parametrize("syntax", [ImplicitVRLittleEndian, ExplicitVRLittleEndian,
                                    DeflatedExplicitVRLittleEndian])
def test_store_each_syntax_and_job(node, datasets, syntax):
    assert store_all(node, datasets, syntax) == [0x0000] * len(datasets)
    jobs = node.wait_jobs(1)
    assert [j["state"] for j in jobs] == ["done"]
    with node.db() as conn:
        modalities = [r[0] for r in conn.execute("SELECT modality FROM instances")]
    assert sorted(modalities) == ["MR"] * len(datasets) + ["SR"]  # the localizer and its report


def find(node, model, **keys):
    assoc = associate(node, contexts=[model])
    assert assoc.is_established
    query = Dataset()
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    results = [(status.Status, ident) for status, ident in assoc.send_c_find(query, model)]
    assoc.release()
    assert results[-1][0] == 0x0000, results
    return [ident for status, ident in results if status == 0xFF00]


def test_find_levels_and_matching(node, datasets, make_node):
    store_all(node, datasets)
    second = phantom_second_study()
    store_all(node, second)
    study = datasets[0].StudyInstanceUID

    node.wait_jobs(2)  # each localizer's report joins its study: count once both are stored
    with node.db() as conn:
        stored = dict(conn.execute("SELECT study_uid, COUNT(*) FROM instances GROUP BY study_uid"))
        images = sorted(n for (n,) in conn.execute(
            "SELECT COUNT(*) FROM instances WHERE modality = 'MR' GROUP BY study_uid"))
    assert images == [3, 9]
    studies = find(node, StudyRootQueryRetrieveInformationModelFind, QueryRetrieveLevel="STUDY",
                   StudyInstanceUID="", PatientName="", NumberOfStudyRelatedInstances="")
    assert len(studies) == 2  # one response per study, not per instance
    assert {s.StudyInstanceUID: int(s.NumberOfStudyRelatedInstances) for s in studies} == stored

    # UID list matching
    both = find(node, StudyRootQueryRetrieveInformationModelFind, QueryRetrieveLevel="STUDY",
                StudyInstanceUID=[study, second[0].StudyInstanceUID])
    assert len(both) == 2
    def count_studies(**keys):
        return len(find(node, StudyRootQueryRetrieveInformationModelFind,
                        QueryRetrieveLevel="STUDY", StudyInstanceUID="", **keys))

    # wildcard and single value on person name, case-insensitive as PN matching allows
    assert count_studies(PatientName="phantom^7") == 1
    assert count_studies(PatientName="PHANTOM^?") == 2
    assert count_studies(PatientName="*^9*") == 1
    # date ranges, open at either end
    assert count_studies(StudyDate="20251231-") == 2
    assert count_studies(StudyDate="-20251231") == 0
    # single value
    assert count_studies(AccessionNumber="A00000009") == 1

    series = find(node, StudyRootQueryRetrieveInformationModelFind, QueryRetrieveLevel="SERIES",
                  StudyInstanceUID=study, SeriesInstanceUID="", Modality="MR",
                  NumberOfSeriesRelatedInstances="")
    assert len(series) == 1 and int(series[0].NumberOfSeriesRelatedInstances) == 9

    images = find(node, StudyRootQueryRetrieveInformationModelFind, QueryRetrieveLevel="IMAGE",
                  StudyInstanceUID=study, SeriesInstanceUID=datasets[0].SeriesInstanceUID,
                  SOPInstanceUID="", InstanceNumber="")
    assert sorted(int(i.InstanceNumber) for i in images) == list(range(1, 10))

    patients = find(node, PatientRootQueryRetrieveInformationModelFind,
                    QueryRetrieveLevel="PATIENT", PatientID="", PatientName="",
                    NumberOfPatientRelatedStudies="")
    assert {p.PatientID for p in patients} == {"PHANTOM", "OTHER"}
    assert len(patients) == 2

    patient_studies = find(node, PatientRootQueryRetrieveInformationModelFind,
                           QueryRetrieveLevel="STUDY", PatientID="OTHER", StudyInstanceUID="")
    assert [s.StudyInstanceUID for s in patient_studies] == [second[0].StudyInstanceUID]


def phantom_second_study():
    from isp_node.simulation.phantom import phantom_localizer

    return phantom_localizer(seed=9, per_orientation=1, patient_id="OTHER")


def test_study_root_refuses_patient_level(node):
    assoc = associate(node, contexts=[StudyRootQueryRetrieveInformationModelFind])
    query = Dataset()
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientID = ""
    statuses = [s.Status for s, _ in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind)]
    assoc.release()
    assert statuses == [0xA900]


def test_get_returns_instances_on_same_association(node, datasets):
    store_all(node, datasets)
    received = []

    def on_store(event):
        received.append(event.dataset.SOPInstanceUID)
        return 0x0000

    assoc = associate(
        node, contexts=[PatientRootQueryRetrieveInformationModelGet, MRImageStorage],
        roles=[build_role(MRImageStorage, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.PatientID = "PHANTOM"
    query.StudyInstanceUID = datasets[0].StudyInstanceUID
    query.SeriesInstanceUID = datasets[0].SeriesInstanceUID
    query.SOPInstanceUID = [d.SOPInstanceUID for d in datasets[:4]]
    statuses = [s.Status for s, _ in assoc.send_c_get(query, PatientRootQueryRetrieveInformationModelGet)]
    assoc.release()
    assert statuses[-1] == 0x0000
    assert sorted(received) == sorted(d.SOPInstanceUID for d in datasets[:4])


def test_move_to_pynetdicom_peer(node, datasets, receiver_port):
    store_all(node, datasets)
    received = []

    def on_store(event):
        received.append(event.dataset.SOPInstanceUID)
        return 0x0000

    scp = AE(ae_title="RECEIVER")
    scp.add_supported_context(MRImageStorage, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    server = scp.start_server(("127.0.0.1", receiver_port), block=False,
                              evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        assoc = associate(node, contexts=[StudyRootQueryRetrieveInformationModelMove])
        query = Dataset()
        query.QueryRetrieveLevel = "SERIES"
        query.StudyInstanceUID = datasets[0].StudyInstanceUID
        query.SeriesInstanceUID = datasets[0].SeriesInstanceUID
        responses = list(assoc.send_c_move(query, "RECEIVER", StudyRootQueryRetrieveInformationModelMove))
        assoc.release()
    finally:
        server.shutdown()
    final = responses[-1][0]
    assert final.Status == 0x0000 and final.NumberOfCompletedSuboperations == 9
    assert len(received) == 9


def test_echo_verification(node):
    assoc = associate(node, contexts=[Verification])
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()


@pytest.mark.parametrize("sop_class", [
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR Image
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.34",  # Comprehensive 3D SR
    "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR
    "1.2.840.10008.5.1.4.1.1.11.1",  # Grayscale Softcopy Presentation State
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image
])
def test_store_result_object_classes(node, sop_class):
    from pydicom.uid import generate_uid

    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "P"
    ds.Modality = "SR" if ".88." in sop_class else ("PR" if ".11.1" in sop_class else "OT")
    ds.SeriesDescription = "ISP result"
    assoc = associate(node, contexts=[(sop_class, [ExplicitVRLittleEndian])])
    assert assoc.is_established
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    assert assoc.send_c_store(ds).Status == 0x0000
    assoc.release()
    found = find(node, StudyRootQueryRetrieveInformationModelFind, QueryRetrieveLevel="IMAGE",
                 StudyInstanceUID=ds.StudyInstanceUID, SeriesInstanceUID=ds.SeriesInstanceUID,
                 SOPInstanceUID="", SOPClassUID="")
    assert [(f.SOPInstanceUID, f.SOPClassUID) for f in found] == [(ds.SOPInstanceUID, sop_class)]
