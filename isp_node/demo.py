"""`isp-node demo`: the whole job once, on a temporary node, with nothing to set up."""

import tempfile
import threading
import time
from pathlib import Path

from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    MRImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)

from isp_node.config import config_from_dict
from isp_node.service import Node
from isp_node.simulation.cases import simulate_case

SCANNER = "DEMOSCANNER"
DEMO_SEED = 2026


def _demo_node(storage: Path) -> Node:
    config = config_from_dict({
        "node": {"ae_title": "ISPNODE", "host": "127.0.0.1", "port": 0,
                 "storage_dir": str(storage), "workers": 1},
        "peers": [{"ae_title": SCANNER, "host": "127.0.0.1", "port": 11113,
                   "allow": ["store", "find", "move", "get"]}],
        "logging": {"level": "WARNING"},
    })
    return Node(config)


def _scanner() -> AE:
    ae = AE(ae_title=SCANNER)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    return ae


def _wait_for_job(node: Node, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = node.db.connection().execute(
            "SELECT * FROM jobs WHERE state IN ('done', 'failed') ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if row is not None:
            return dict(row)
        time.sleep(0.05)
    raise TimeoutError("the job did not finish within a minute")


def run_demo(out: Path | None = None) -> int:
    """Start a node, push a localizer, wait for its job, query and retrieve it back."""
    out = out or Path(tempfile.mkdtemp(prefix="isp-node-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    node = _demo_node(out / "storage")
    node.start()
    loop = threading.Thread(target=node.run, daemon=True)
    loop.start()
    try:
        return _exercise(node, out)
    finally:
        node.request_stop()
        loop.join()
        node.drain()


def _exercise(node: Node, out: Path) -> int:
    print(f"isp-node demo: node ISPNODE listening on 127.0.0.1:{node.port}")
    case = simulate_case(DEMO_SEED, kind="usable", protocol="three_plane", head="mni")
    files = case.write(out / "localizer")
    datasets = case.datasets()
    study = datasets[0].StudyInstanceUID

    ae = _scanner()
    ae.add_requested_context(MRImageStorage)
    started = time.monotonic()
    assoc = ae.associate("127.0.0.1", node.port, ae_title="ISPNODE")
    statuses = [assoc.send_c_store(ds).Status for ds in datasets]
    assoc.release()
    released = time.monotonic()
    ok = statuses.count(0x0000)
    print(f"  C-STORE   {ok}/{len(datasets)} localizer images accepted in "
          f"{released - started:.2f} s ({out / 'localizer'})")

    job = _wait_for_job(node)
    started_after = job["started_at"] - job["created_at"]
    print(f"  job {job['id']}     {job['state']} (started {started_after * 1000:.0f} ms after "
          f"queueing, ran {job['finished_at'] - job['started_at']:.2f} s)")
    if job["state"] == "done":
        import json

        result = json.loads(job["result"])
        print(f"  verdict   {'usable' if result.get('usable') else 'NOT usable'}: "
              f"{result.get('message')} (images: {result.get('image_classes')})")
        brain = result.get("brain", {})
        if brain.get("volume_ml"):
            print(f"  brain     {brain['volume_ml']:.0f} ml, centre {brain['centre_lps']} mm LPS, "
                  f"extent {brain['low_lps']} to {brain['high_lps']}")
        print(f"  planes    {len(result.get('planes', []))} planned (Orientation-Net not installed yet)")
    else:
        print(f"  error     {job['error']}")

    ae = _scanner()
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(MRImageStorage)
    retrieved: list[str] = []

    def on_store(event: evt.Event) -> int:
        retrieved.append(event.dataset.SOPInstanceUID)
        return 0x0000

    assoc = ae.associate("127.0.0.1", node.port, ae_title="ISPNODE",
                         ext_neg=[build_role(MRImageStorage, scp_role=True)],
                         evt_handlers=[(evt.EVT_C_STORE, on_store)])
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "SERIES"
    identifier.StudyInstanceUID = study
    identifier.SeriesInstanceUID = ""
    identifier.SeriesDescription = ""
    identifier.NumberOfSeriesRelatedInstances = ""
    found = [ds for status, ds in assoc.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind)
             if status and status.Status == 0xFF00]
    for ds in found:
        print(f"  C-FIND    series '{ds.SeriesDescription}': "
              f"{ds.NumberOfSeriesRelatedInstances} images")
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = study
    list(assoc.send_c_get(identifier, StudyRootQueryRetrieveInformationModelGet))
    assoc.release()
    print(f"  C-GET     {len(retrieved)} images retrieved back")
    print(f"  storage   {node.config.node.storage_dir} (index: isp-node.sqlite)")
    success = ok == len(datasets) and job["state"] == "done" and len(retrieved) == len(files)
    print("demo " + ("finished: every step succeeded" if success else "FAILED"))
    return 0 if success else 1
