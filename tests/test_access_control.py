"""Who may associate and what they may do, checked over real associations."""

import time

import pydicom
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import (
    MRImageStorage,
    PatientRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from conftest import NODE_AE, dcmtk, echo, run_tool


def request(node, calling="SCANNER", called=NODE_AE, contexts=(Verification,)):
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.network_timeout = 10
    for context in contexts:
        ae.add_requested_context(context)
    return ae.associate("127.0.0.1", node.port, ae_title=called)


def rejection(assoc) -> tuple[int, int, int]:
    assert assoc.is_rejected
    rj = assoc.acceptor.primitive
    return rj.result, rj.result_source, rj.diagnostic


def test_unknown_calling_ae_is_rejected(node):
    assert rejection(request(node, calling="INTRUDER")) == (0x01, 0x01, 0x03)
    assert "INTRUDER" in node.log() and "not a configured peer" in node.log()


def test_known_ae_from_the_wrong_host_is_rejected(node):
    # ELSEWHERE is configured for 192.0.2.10; this call comes from 127.0.0.1
    assert rejection(request(node, calling="ELSEWHERE")) == (0x01, 0x01, 0x03)


def test_wrong_called_ae_is_rejected(node):
    assert rejection(request(node, called="NOTTHENODE")) == (0x01, 0x01, 0x07)


@pytest.mark.skipif(dcmtk("echoscu") is None, reason="dcmtk is not installed")
def test_dcmtk_sees_the_rejections(node):
    result = run_tool("echoscu", "-aet", "INTRUDER", "-aec", NODE_AE, "127.0.0.1", node.port)
    assert result.returncode != 0 and "Calling AE Title Not Recognized" in result.stderr
    result = run_tool("echoscu", "-aet", "SCANNER", "-aec", "OTHER", "127.0.0.1", node.port)
    assert result.returncode != 0 and "Called AE Title Not Recognized" in result.stderr


def test_accept_unknown_lets_anyone_in(make_node):
    node = make_node(security={"accept_unknown": True})
    assert echo(node.port, "ANYBODY")


def test_peer_is_offered_only_its_allowed_services(node, localizer):
    # VIEWER (host "localhost") may only query: storage and retrieval are not negotiated
    assoc = request(node, calling="VIEWER", contexts=(
        Verification, MRImageStorage, StudyRootQueryRetrieveInformationModelFind,
        StudyRootQueryRetrieveInformationModelMove))
    assert assoc.is_established
    accepted = {cx.abstract_syntax for cx in assoc.accepted_contexts}
    rejected = {cx.abstract_syntax for cx in assoc.rejected_contexts}
    assert accepted == {Verification, StudyRootQueryRetrieveInformationModelFind}
    assert rejected == {MRImageStorage, StudyRootQueryRetrieveInformationModelMove}
    with pytest.raises(ValueError):
        assoc.send_c_store(pydicom.dcmread(localizer[0]))
    assoc.release()


def test_get_only_peer_is_refused_storage_with_not_authorized(node, localizer):
    # GETTER negotiates storage contexts (it needs them to receive C-GET results)
    assoc = request(node, calling="GETTER",
                    contexts=(MRImageStorage, PatientRootQueryRetrieveInformationModelGet))
    assert assoc.is_established
    status = assoc.send_c_store(pydicom.dcmread(localizer[0]))
    assoc.release()
    assert status.Status == 0x0124
    with node.db() as conn:
        assert conn.execute("SELECT COUNT(*) FROM instances").fetchone()[0] == 0


def test_move_to_unknown_destination_is_refused(node, localizer):
    assoc = request(node, contexts=(MRImageStorage, StudyRootQueryRetrieveInformationModelMove))
    assoc.send_c_store(pydicom.dcmread(localizer[0]))
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = pydicom.dcmread(localizer[0]).StudyInstanceUID
    statuses = [s.Status for s, _ in assoc.send_c_move(
        query, "NOWHERE", StudyRootQueryRetrieveInformationModelMove)]
    assoc.release()
    assert statuses == [0xA801]


@pytest.mark.skipif(dcmtk("movescu") is None, reason="dcmtk is not installed")
def test_movescu_to_unknown_destination_is_refused(node):
    result = run_tool("movescu", "-S", "-aet", "SCANNER", "-aec", NODE_AE, "-aem", "NOWHERE",
                      "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID=1.2.3",
                      "127.0.0.1", node.port)
    assert "Refused: MoveDestinationUnknown" in result.stderr, result.stderr


def test_associations_per_host_are_capped(make_node):
    node = make_node(network={"max_associations_per_host": 2})
    first, second = request(node), request(node)
    assert first.is_established and second.is_established
    assert rejection(request(node)) == (0x02, 0x03, 0x02)  # transient, local limit exceeded
    first.release()
    time.sleep(0.3)
    third = request(node)
    assert third.is_established
    third.release()
    second.release()
