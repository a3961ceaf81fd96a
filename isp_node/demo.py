"""`isp-node demo`: the whole job once, on a temporary node, with nothing to set up."""

import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    Comprehensive3DSRStorage,
    MRImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)

from isp_node.config import config_from_dict
from isp_node.geometry.planes import Plane, centre_distance_mm, normal_angle_deg
from isp_node.outputs.localizer import Localizer
from isp_node.outputs.overlay import plan_lines, render_rgb
from isp_node.outputs.planning_report import SERIES_DESCRIPTION as REPORT_DESCRIPTION
from isp_node.outputs.planning_report import read_planning_report
from isp_node.pipeline.result import IMAGE_CLASSES, PlanningResult
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
    """Start a node, push a localizer, wait for its job, find and retrieve the planning
    report, print the plan and write an overlay PNG."""
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


def _push(node: Node, datasets: list[Dataset], where: Path) -> bool:
    ae = _scanner()
    ae.add_requested_context(MRImageStorage)
    started = time.monotonic()
    assoc = ae.associate("127.0.0.1", node.port, ae_title="ISPNODE")
    statuses = [assoc.send_c_store(ds).Status for ds in datasets]
    assoc.release()
    ok = statuses.count(0x0000)
    print(f"  C-STORE   {ok}/{len(datasets)} localizer images accepted in "
          f"{time.monotonic() - started:.2f} s ({where})")
    return ok == len(datasets)


def _report_job(job: dict) -> None:
    started_after = job["started_at"] - job["created_at"]
    print(f"  job {job['id']}     {job['state']} (started {started_after * 1000:.0f} ms after "
          f"queueing, ran {job['finished_at'] - job['started_at']:.2f} s)")
    if job["state"] != "done":
        print(f"  error     {job['error']}")
        return
    brain = json.loads(job["result"]).get("brain", {})
    if brain.get("volume_ml"):
        print(f"  brain     {brain['volume_ml']:.0f} ml, centre {brain['centre_lps']} mm LPS, "
              f"extent {brain['low_lps']} to {brain['high_lps']}")


def _find_series(node: Node, study: str) -> list[Dataset]:
    ae = _scanner()
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", node.port, ae_title="ISPNODE")
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "SERIES"
    identifier.StudyInstanceUID = study
    identifier.SeriesInstanceUID = identifier.Modality = identifier.SeriesDescription = ""
    identifier.NumberOfSeriesRelatedInstances = ""
    found = [ds for status, ds in assoc.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind)
             if status and status.Status == 0xFF00]
    assoc.release()
    for ds in found:
        print(f"  C-FIND    series {ds.Modality} '{ds.SeriesDescription}': "
              f"{ds.NumberOfSeriesRelatedInstances} objects")
    return found


def _get_series(node: Node, study: str, series: str) -> list[Dataset]:
    ae = _scanner()
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(Comprehensive3DSRStorage)
    retrieved: list[Dataset] = []

    def on_store(event: evt.Event) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        retrieved.append(ds)
        return 0x0000

    assoc = ae.associate("127.0.0.1", node.port, ae_title="ISPNODE",
                         ext_neg=[build_role(Comprehensive3DSRStorage, scp_role=True)],
                         evt_handlers=[(evt.EVT_C_STORE, on_store)])
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "SERIES"
    identifier.StudyInstanceUID = study
    identifier.SeriesInstanceUID = series
    list(assoc.send_c_get(identifier, StudyRootQueryRetrieveInformationModelGet))
    assoc.release()
    return retrieved


def scanner_axis_angle(normal: np.ndarray) -> str:
    """The scanner orientation the plane is closest to and how far it is tilted from it."""
    axis = int(np.argmax(np.abs(normal)))
    angle = np.degrees(np.arccos(min(abs(float(normal[axis])), 1.0)))
    return f"{('sag', 'cor', 'ax')[axis]} {angle:4.1f} deg"


def print_plan(result: PlanningResult, truth: dict[str, Plane] | None = None) -> None:
    """The verdict and one line per plane: key, centre, normal, tilt, how far off the
    `truth` it is (a simulated localizer's: angle and distance, as evaluated), status."""
    counts = {c: sum(1 for i in result.images if i.image_class == c) for c in IMAGE_CLASSES}
    print(f"  verdict   {'usable' if result.usable else 'NOT usable'}: {result.message} "
          f"(images: {', '.join(f'{n} {c}' for c, n in counts.items())})")
    if not result.planes:
        print("  planes    none planned" + ("" if result.usable else " (localizer not usable)"))
        return
    off_header = f"{'off the truth':<18} " if truth else ""
    print(f"  {'plane':<12} {'centre (mm LPS)':<26} {'normal':<24} {'to scanner axes':<16} "
          f"{off_header}status")
    for planned in result.planes:
        p = planned.plane
        centre = " ".join(f"{v:7.1f}" for v in p.centre)
        normal = " ".join(f"{v:6.3f}" for v in p.normal)
        off = "" if not truth else (f"{normal_angle_deg(p, truth[planned.key]):4.1f} deg "
                                    f"{centre_distance_mm(p, truth[planned.key]):4.1f} mm    ")
        print(f"  {planned.key:<12} {centre:<26} {normal:<24} {scanner_axis_angle(p.normal):<16} "
              f"{off}{planned.status.value} ({planned.confidence:.2f})")


def write_overlay_png(localizer: Localizer, result: PlanningResult, path: Path,
                      columns: int = 6) -> None:
    """A montage of the localizer images with the planned lines, as a PNG."""
    tiles = [render_rgb(image, plan_lines(result, image)) for image in localizer.slices.values()]
    size = max(max(t.shape[:2]) for t in tiles)
    rows = -(-len(tiles) // columns)
    montage = Image.new("RGB", (columns * size, rows * size))
    for i, tile in enumerate(tiles):
        montage.paste(Image.fromarray(tile), ((i % columns) * size, (i // columns) * size))
    montage.save(path)


def _exercise(node: Node, out: Path) -> int:
    print(f"isp-node demo: node ISPNODE listening on 127.0.0.1:{node.port}")
    case = simulate_case(DEMO_SEED, kind="usable", protocol="three_plane", head="mni")
    files = case.write(out / "localizer")
    datasets = case.datasets()
    study = datasets[0].StudyInstanceUID
    pushed = _push(node, datasets, out / "localizer")
    job = _wait_for_job(node)
    _report_job(job)

    found = _find_series(node, study)
    report_series = [ds for ds in found if ds.SeriesDescription == REPORT_DESCRIPTION]
    reports = _get_series(node, study, report_series[0].SeriesInstanceUID) if report_series else []
    print(f"  C-GET     {len(reports)} planning report retrieved")
    success = pushed and job["state"] == "done" and len(reports) == 1
    if reports:
        report_path = out / "planning_report.dcm"
        reports[0].save_as(report_path, enforce_file_format=True)
        result = read_planning_report(reports[0])
        print_plan(result, case.planes)
        overlay = out / "overlay.png"
        write_overlay_png(Localizer.from_files(files), result, overlay)
        print(f"  files     report {report_path}, overlay {overlay}")
    print(f"  storage   {node.config.node.storage_dir} (index: isp-node.sqlite)")
    print("demo " + ("finished: every step succeeded" if success else "FAILED"))
    return 0 if success else 1
