"""A real PACS receives the forwarded results: Debian's Orthanc, configured with the
node as a DICOM modality, finds the report, presentation state and captures by C-FIND.

Orthanc listens on every interface, so the test runs it and the node inside a
private network namespace (``unshare -n``) that has nothing but loopback: this
file is run there as a script, and the test checks what it reports.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

from conftest import RunningNode, free_port, port_open, write_config
from planners import TRUTH_ENV

ORTHANC = shutil.which("Orthanc")
FINDER = "FINDER"  # the AE title this test queries Orthanc with
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="a private network namespace needs root"),
    pytest.mark.skipif(ORTHANC is None, reason="Orthanc is not installed (apt-get install orthanc)"),
]


def _orthanc_config(work: Path, dicom_port: int, node_port: int) -> Path:
    config = {
        "Name": "isp-node test PACS",
        "StorageDirectory": str(work / "orthanc-db"), "IndexDirectory": str(work / "orthanc-db"),
        "DicomAet": "ORTHANC", "DicomPort": dicom_port,
        "HttpServerEnabled": False, "RemoteAccessAllowed": False, "Plugins": [],
        # only the listed modalities may store and query
        "DicomAlwaysAllowStore": False, "DicomAlwaysAllowFind": False,
        "DicomModalities": {"isp": ["ISPNODE", "127.0.0.1", node_port],
                            "finder": [FINDER, "127.0.0.1", 104]},
    }
    path = work / "orthanc.json"
    path.write_text(json.dumps(config, indent=1))
    return path


def _orthanc_series(port: int, study: str) -> list[dict]:
    ae = AE(ae_title=FINDER)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    assoc = ae.associate("127.0.0.1", port, ae_title="ORTHANC")
    if not assoc.is_established:
        return []
    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.StudyInstanceUID = study
    query.SeriesInstanceUID = query.Modality = query.SeriesDescription = ""
    query.NumberOfSeriesRelatedInstances = ""
    found = [{"modality": str(ds.Modality), "description": str(ds.SeriesDescription),
              "instances": int(ds.NumberOfSeriesRelatedInstances)}
             for status, ds in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind)
             if status and status.Status == 0xFF00]
    assoc.release()
    return found


def scenario(work: Path, case_dir: Path) -> dict:
    """Inside the namespace: start Orthanc and the node, push the case, wait until
    Orthanc holds every result object the node made; report what Orthanc's C-FIND says."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    orthanc_port, node_port = free_port(), free_port()
    orthanc = subprocess.Popen([ORTHANC, str(_orthanc_config(work, orthanc_port, node_port))],
                               stdout=open(work / "orthanc.log", "wb"), stderr=subprocess.STDOUT)
    config = work / "node.toml"
    write_config(config, work / "storage", node_port, [
        {"ae_title": "SCANNER", "host": "127.0.0.1", "port": free_port(), "allow": ["store"]},
        {"ae_title": "ORTHANC", "host": "127.0.0.1", "port": orthanc_port,
         "allow": ["find", "move", "get"], "forward_results": True},
    ], jobs={"planner": "planners:make_truth_planner"},
        forwarding={"retry_initial_seconds": 0.5, "retry_max_seconds": 2.0})
    node = RunningNode(config, work / "storage", node_port, work / "node.log", env=dict(os.environ))
    try:
        node.start()
        deadline = time.monotonic() + 30
        while not port_open(orthanc_port) and time.monotonic() < deadline:
            time.sleep(0.2)
        datasets = [pydicom.dcmread(p) for p in sorted(case_dir.glob("*.dcm"))]
        ae = AE(ae_title="SCANNER")
        ae.add_requested_context(datasets[0].SOPClassUID)
        assoc = ae.associate("127.0.0.1", node_port, ae_title="ISPNODE")
        statuses = [assoc.send_c_store(ds).Status for ds in datasets]
        assoc.release()
        node.wait_jobs(1, timeout=60)
        with node.db() as conn:
            made = conn.execute("SELECT COUNT(*) FROM instances WHERE calling_ae = 'ISPNODE'"
                                ).fetchone()[0]
        study = datasets[0].StudyInstanceUID
        found: list[dict] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = _orthanc_series(orthanc_port, study)
            if sum(s["instances"] for s in found) >= made:
                break
            time.sleep(0.5)
        return {"statuses": statuses, "jobs": [j["state"] for j in node.jobs()],
                "made": made, "orthanc": found, "node_log": node.log()[-3000:],
                "orthanc_log": (work / "orthanc.log").read_text(errors="replace")[-3000:]}
    finally:
        node.stop(timeout=30)
        orthanc.terminate()
        orthanc.wait(30)


def test_orthanc_finds_the_forwarded_results(mni_head, tmp_path):
    from isp_node.simulation.cases import simulate_case

    case_dir = tmp_path / "truth" / "case"
    simulate_case(509, kind="usable", protocol="three_plane", head="mni").write(case_dir)
    env = dict(os.environ, **{TRUTH_ENV: str(tmp_path / "truth")})
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
    run = subprocess.run(["unshare", "-n", sys.executable, __file__, str(tmp_path), str(case_dir)],
                         env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["statuses"] == [0] * len(report["statuses"]) and report["jobs"] == ["done"]
    series = {s["modality"]: s for s in report["orthanc"]}
    assert set(series) == {"SR", "PR", "OT"}, report  # results only: the localizer stays
    assert series["SR"]["description"] == "ISP Planning Report"
    assert series["PR"]["description"] == "ISP Planning Overlay"
    assert series["OT"]["description"] == "ISP Planning Captures"
    assert series["SR"]["instances"] == series["PR"]["instances"] == 1
    assert sum(s["instances"] for s in series.values()) == report["made"]


if __name__ == "__main__":
    print(json.dumps(scenario(Path(sys.argv[1]), Path(sys.argv[2]))))
