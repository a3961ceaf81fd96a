"""Latency from the end of the scanner's association to the planning report being
found by C-FIND, with the cascade planner, warm.

    python bench/result_latency.py [--n 30]

Starts `isp-node serve` (one worker, the default cascade planner) on a free
loopback port with a temporary storage directory, simulates `--n` + 1 usable
localizers, and pushes them one at a time with C-STORE over one association
each. After A-RELEASE returns it polls the node with C-FIND (series level,
Modality SR, every 10 ms) until the report's series is found. The first
localizer only warms the worker up; the next one is pushed when the previous
job is done, so each latency is that of an idle node. Prints median and p95.
"""

import argparse
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import free_port, port_open, write_config  # noqa: E402

import numpy as np  # noqa: E402
from pydicom.dataset import Dataset  # noqa: E402
from pynetdicom import AE  # noqa: E402
from pynetdicom.sop_class import MRImageStorage, StudyRootQueryRetrieveInformationModelFind  # noqa: E402

from isp_node.simulation.cases import simulate_case  # noqa: E402

POLL_SECONDS = 0.01
REPORT = "ISP Planning Report"


def push(port: int, datasets: list) -> float:
    """C-STORE the localizer over one association; the time A-RELEASE completed."""
    ae = AE(ae_title="SCANNER")
    ae.add_requested_context(MRImageStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title="ISPNODE")
    assert all(assoc.send_c_store(ds).Status == 0 for ds in datasets)
    assoc.release()
    return time.perf_counter()


def report_found(assoc, study: str) -> bool:
    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.StudyInstanceUID = study
    query.Modality = "SR"
    query.SeriesDescription = REPORT
    query.SeriesInstanceUID = ""
    return any(status.Status == 0xFF00 for status, _ in
               assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind) if status)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30, help="localizers measured (after one warm-up)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="isp-node-bench-"))
    print(f"simulating {args.n + 1} localizers ...", flush=True)
    localizers = [simulate_case(700_000 + i, kind="usable", head="mni").datasets()
                  for i in range(args.n + 1)]

    port = free_port()
    config = work / "node.toml"
    write_config(config, work / "storage", port, [
        {"ae_title": "SCANNER", "host": "127.0.0.1", "port": 11113,
         "allow": ["store", "find", "move", "get"]}],
        jobs={"planner": "isp_node.cascade.planner:make_planner"}, logging={"level": "WARNING"})
    node = subprocess.Popen([sys.executable, "-m", "isp_node", "serve", "--config", str(config)],
                            stderr=subprocess.DEVNULL)
    latencies = []
    try:
        while not port_open(port):
            time.sleep(0.1)
        db = sqlite3.connect(work / "storage" / "isp-node.sqlite")
        finder = AE(ae_title="SCANNER")
        finder.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        for i, datasets in enumerate(localizers):
            study = datasets[0].StudyInstanceUID
            assoc = finder.associate("127.0.0.1", port, ae_title="ISPNODE")
            released = push(port, datasets)
            while not report_found(assoc, study):
                time.sleep(POLL_SECONDS)
            found = time.perf_counter()
            assoc.release()
            if i > 0:
                latencies.append(found - released)
            while db.execute("SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')"
                             ).fetchone()[0]:
                time.sleep(0.05)
        jobs = db.execute("SELECT started_at - created_at, finished_at - started_at FROM jobs "
                          "WHERE state = 'done' ORDER BY id").fetchall()[1:]
    finally:
        node.terminate()
        node.wait(60)
    lat = np.array(latencies)
    images = [len(d) for d in localizers[1:]]
    print(f"{len(lat)} localizers ({min(images)}-{max(images)} images each), release -> report "
          f"found by C-FIND: median {np.median(lat):.3f} s, p95 {np.percentile(lat, 95):.3f} s, "
          f"max {lat.max():.3f} s")
    print(f"  job waited in queue: median {statistics.median(j[0] for j in jobs) * 1000:.0f} ms; "
          f"job ran (cascade, report, overlays): median {statistics.median(j[1] for j in jobs):.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
