"""End to end: the node makes the result objects of a pushed localizer, serves them
by C-FIND and C-GET, and forwards them to peers, retrying a peer that is down.

The node's planner here answers with the simulator's ground truth for the pushed
case (tests/planners.py), so the planes the node encodes are known exactly.
"""

import subprocess
import time

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pynetdicom import build_role, evt
from pynetdicom.sop_class import (
    Comprehensive3DSRStorage,
    GrayscaleSoftcopyPresentationStateStorage,
    SecondaryCaptureImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)

from conftest import dcmtk, echo, free_port
from isp_node.geometry import normal_angle_deg
from isp_node.jobs import forwards
from isp_node.outputs.planning_report import read_planning_report
from isp_node.simulation.cases import simulate_case
from isp_node.storage.database import Database
from planners import TRUTH_ENV
from test_pynetdicom_peers import associate, find, store_all

TRUTH_PLANNER = {"planner": "planners:make_truth_planner"}
RESULT_CLASSES = (Comprehensive3DSRStorage, GrayscaleSoftcopyPresentationStateStorage,
                  SecondaryCaptureImageStorage)
FORWARDING = {"retry_initial_seconds": 0.5, "retry_max_seconds": 2.0}


@pytest.fixture
def cases(mni_head, tmp_path, monkeypatch):
    """Factory: cases(seed, kind) -> (case, datasets), truth.json where the planner finds it."""
    truth_dir = tmp_path / "truth"
    monkeypatch.setenv(TRUTH_ENV, str(truth_dir))

    def make(seed: int, kind: str = "usable"):
        case = simulate_case(seed, kind=kind, protocol="three_plane", head="mni")
        paths = case.write(truth_dir / f"case_{seed}")
        return case, [pydicom.dcmread(p) for p in paths]

    return make


def _series(node, study: str) -> dict[str, Dataset]:
    found = find(node, StudyRootQueryRetrieveInformationModelFind, QueryRetrieveLevel="SERIES",
                 StudyInstanceUID=study, SeriesInstanceUID="", Modality="", SeriesDescription="",
                 NumberOfSeriesRelatedInstances="")
    return {str(ds.SeriesDescription): ds for ds in found}


def _get(node, study: str, series: str) -> list[Dataset]:
    received = []

    def on_store(event):
        received.append(event.dataset)
        return 0x0000

    assoc = associate(node, contexts=[StudyRootQueryRetrieveInformationModelGet, *RESULT_CLASSES],
                      roles=[build_role(c, scp_role=True) for c in RESULT_CLASSES],
                      evt_handlers=[(evt.EVT_C_STORE, on_store)])
    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.StudyInstanceUID = study
    query.SeriesInstanceUID = series
    statuses = [s.Status for s, _ in assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet)]
    assoc.release()
    assert statuses[-1] == 0x0000, statuses
    return received


@pytest.mark.slow
def test_results_are_found_and_retrieved_with_the_true_planes(make_node, cases):
    case, datasets = cases(505)
    node = make_node(jobs=TRUTH_PLANNER)
    assert store_all(node, datasets) == [0x0000] * len(datasets)
    job = node.wait_jobs(1, timeout=60)[0]
    assert job["state"] == "done", job
    study = datasets[0].StudyInstanceUID
    series = _series(node, study)
    assert series["ISP Planning Report"].Modality == "SR"
    assert series["ISP Planning Overlay"].Modality == "PR"
    assert series["ISP Planning Captures"].Modality == "OT"
    assert series["ISP Planning Report"].NumberOfSeriesRelatedInstances == 1
    assert series["ISP Planning Captures"].NumberOfSeriesRelatedInstances >= 3

    report = _get(node, study, series["ISP Planning Report"].SeriesInstanceUID)
    assert [ds.SOPClassUID for ds in report] == [Comprehensive3DSRStorage]
    result = read_planning_report(report[0])
    assert result.usable and set(p.key for p in result.planes) == set(case.planes)
    for planned in result.planes:
        truth = case.planes[planned.key]
        assert np.abs(planned.plane.corners() - truth.corners()).max() < 0.01
        assert normal_angle_deg(planned.plane, truth, oriented=True) < 0.01
    gsps = _get(node, study, series["ISP Planning Overlay"].SeriesInstanceUID)
    assert [ds.SOPClassUID for ds in gsps] == [GrayscaleSoftcopyPresentationStateStorage]
    captures = _get(node, study, series["ISP Planning Captures"].SeriesInstanceUID)
    assert len(captures) == series["ISP Planning Captures"].NumberOfSeriesRelatedInstances
    assert all(ds.BurnedInAnnotation == "YES" for ds in captures)


@pytest.mark.slow
def test_unusable_localizer_is_reported_without_overlays(make_node, cases):
    _, datasets = cases(506, kind="miss")
    node = make_node(jobs=TRUTH_PLANNER)
    store_all(node, datasets)
    assert node.wait_jobs(1, timeout=60)[0]["state"] == "done"
    study = datasets[0].StudyInstanceUID
    series = _series(node, study)
    assert set(series) == {datasets[0].SeriesDescription, "ISP Planning Report"}
    report = _get(node, study, series["ISP Planning Report"].SeriesInstanceUID)[0]
    result = read_planning_report(report)
    assert not result.usable and result.message == "simulated miss"


def _storescp(ae_title: str, port: int, out) -> subprocess.Popen:
    out.mkdir(exist_ok=True)
    return subprocess.Popen([dcmtk("storescp"), "-aet", ae_title, "-od", str(out), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_files(directory, count: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(list(directory.iterdir())) < count:
        time.sleep(0.1)
    return len(list(directory.iterdir()))


@pytest.fixture
def forward_ports():
    return {"ARCHIVE": free_port(), "LATEPACS": free_port()}


@pytest.fixture
def peers(peers, forward_ports):
    """The usual peers plus two that receive results: ARCHIVE (up) and LATEPACS (down at first)."""
    return peers + [{"ae_title": title, "host": "127.0.0.1", "port": port, "allow": [],
                     "forward_results": True} for title, port in forward_ports.items()]


@pytest.mark.slow
@pytest.mark.skipif(not dcmtk("storescp"), reason="dcmtk is not installed")
def test_forwarding_retries_a_peer_that_is_down_across_a_restart(
        make_node, cases, forward_ports, tmp_path):
    storage = tmp_path / "node-storage"
    archive = _storescp("ARCHIVE", forward_ports["ARCHIVE"], tmp_path / "archive")
    late = None
    try:
        node = make_node(storage_dir=storage, jobs=TRUTH_PLANNER, forwarding=FORWARDING)
        _, first = cases(507)
        store_all(node, first)
        assert node.wait_jobs(1, timeout=60)[0]["state"] == "done"
        with node.db() as conn:
            results = conn.execute("SELECT COUNT(*) FROM instances WHERE modality != 'MR'"
                                   ).fetchone()[0]
        assert results >= 3
        assert _wait_files(tmp_path / "archive", results) == results
        # the down peer blocks neither the next job nor the peer that is up
        _, second = cases(508)
        store_all(node, second)
        jobs = node.wait_jobs(2, timeout=60)
        assert [j["state"] for j in jobs] == ["done", "done"]
        with node.db() as conn:
            results = conn.execute("SELECT COUNT(*) FROM instances WHERE modality != 'MR'"
                                   ).fetchone()[0]
        assert _wait_files(tmp_path / "archive", results) == results
        time.sleep(1.5)
        with node.db() as conn:
            late_rows = conn.execute("SELECT state, attempts, last_error FROM forwards "
                                     "WHERE peer = 'LATEPACS'").fetchall()
        assert len(late_rows) == results
        assert all(r["state"] == "pending" and r["attempts"] >= 1 for r in late_rows), late_rows
        assert "LATEPACS" in node.log() and "next attempt in" in node.log()
        assert node.stop() == 0

        # the queue survives a restart; the peer comes up and gets everything
        late = _storescp("LATEPACS", forward_ports["LATEPACS"], tmp_path / "late")
        restarted = make_node(storage_dir=storage, jobs=TRUTH_PLANNER, forwarding=FORWARDING)
        assert _wait_files(tmp_path / "late", results) == results
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with restarted.db() as conn:
                states = [r[0] for r in conn.execute("SELECT state FROM forwards")]
            if set(states) == {"sent"}:
                break
            time.sleep(0.1)
        assert states == ["sent"] * (2 * results)
        received = {pydicom.dcmread(p).SOPClassUID for p in (tmp_path / "late").iterdir()}
        assert received == set(RESULT_CLASSES)
    finally:
        for scp in (archive, late):
            if scp is not None:
                scp.terminate()
                scp.wait(10)


def test_malformed_planner_result_fails_the_job_not_the_node(make_node, localizer):
    node = make_node(jobs={"planner": "planners:make_malformed_planner"})
    store_all(node, [pydicom.dcmread(p) for p in localizer])
    job = node.wait_jobs(1)[0]
    assert job["state"] == "failed"
    assert "result objects: ResultError: plane ACPC" in job["error"], job["error"]
    assert "orthonormal" in job["error"]
    assert echo(node.port, "SCANNER")


def test_forward_backoff_doubles_up_to_the_maximum(tmp_path):
    db = Database(tmp_path / "db.sqlite")
    with db.transaction() as conn:
        forwards.enqueue(conn, "1.2.3", ("PACS", "VIEWER"))
        forwards.enqueue(conn, "1.2.3", ("PACS",))  # queued once per peer
    (pacs,) = forwards.due(db, "PACS")
    waits = []
    for _ in range(5):
        waits.append(forwards.retry_later(db, [pacs.id], "peer not reachable", 0.5, 3.0))
    assert waits == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert forwards.due(db, "PACS") == [] and len(forwards.due(db, "PACS", now=time.time() + 4)) == 1
    forwards.mark_sent(db, pacs.id)
    assert forwards.pending_by_peer(db) == {"VIEWER": 1}
