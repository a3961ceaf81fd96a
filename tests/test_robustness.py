"""Hostile input, duplicates, idle sockets, crashes, a full disk and shutdown."""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pydicom
import pynetdicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import MRImageStorage

from conftest import NODE_AE, echo
from isp_node.simulation.phantom import phantom_localizer


def open_assoc(node, calling="SCANNER"):
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    ae.add_requested_context(MRImageStorage, [ExplicitVRLittleEndian])
    assoc = ae.associate("127.0.0.1", node.port, ae_title=NODE_AE)
    assert assoc.is_established
    return assoc


def send(node, datasets) -> list[int]:
    assoc = open_assoc(node)
    statuses = [assoc.send_c_store(ds).Status for ds in datasets]
    assoc.release()
    return statuses


def stored_files(node) -> list[Path]:
    return sorted(p for p in (node.storage / "objects").rglob("*") if p.is_file())


def instance_count(node) -> int:
    """Instances received from peers (the node's own result objects not counted)."""
    with node.db() as conn:
        return conn.execute("SELECT COUNT(*) FROM instances WHERE calling_ae != ?",
                            (NODE_AE,)).fetchone()[0]


@pytest.mark.parametrize("field, value", [
    ("SOPInstanceUID", "../../../../tmp/isp-node-escape"),
    ("SOPInstanceUID", "1." + "2" * 70),
    ("StudyInstanceUID", "1.2.abc"),
    ("SeriesInstanceUID", "1.2.3/../../x"),
    ("SOPInstanceUID", "1.02.3"),
])
def test_hostile_uids_are_refused_and_nothing_is_written(node, field, value, monkeypatch):
    # pynetdicom, as a sender, refuses to put bad UIDs on the wire; a hostile peer would not.
    monkeypatch.setitem(pynetdicom._config.VALIDATORS, "UI", lambda value: (True, ""))
    ds = phantom_localizer(seed=3, per_orientation=1)[0]
    setattr(ds, field, value)
    if field == "SOPInstanceUID":
        ds.file_meta.MediaStorageSOPInstanceUID = value
    before = set(Path("/tmp").iterdir())
    assoc = open_assoc(node)
    response = assoc.send_c_store(ds)
    assoc.release()
    # refused with a failure status, or (for a bad UID in the command itself)
    # the association is aborted as the DIMSE message is invalid
    assert response.get("Status", None) in (0xC000, None)
    if "Status" not in response:
        assert assoc.is_aborted
    assert stored_files(node) == [] and instance_count(node) == 0
    assert list((node.storage / "tmp").iterdir()) == []
    assert not Path("/tmp/isp-node-escape").exists()
    assert set(Path("/tmp").iterdir()) - before <= {p for p in Path("/tmp").iterdir()
                                                    if p.name.startswith("pytest")}
    assert echo(node.port, "SCANNER")  # still serving


def test_undecodable_dataset_is_refused_and_node_keeps_serving(node, localizer, tmp_path,
                                                               monkeypatch):
    # send the file's bytes as they are, without pynetdicom decoding them first
    monkeypatch.setattr(pynetdicom._config, "STORE_SEND_CHUNKED_DATASET", True)
    good = pydicom.dcmread(localizer[0])
    broken = tmp_path / "broken.dcm"
    data = localizer[0].read_bytes()
    meta_end = 144 + int.from_bytes(data[140:144], "little")
    # a valid file meta header followed by an element whose length runs off the end
    broken.write_bytes(data[:meta_end] + b"\x08\x00\x16\x00UI\xff\x7f" + b"1.2" * 3)
    assoc = open_assoc(node)
    status = assoc.send_c_store(broken)
    assoc.release()
    assert status.Status in (0xC000, 0xA900)
    assert instance_count(node) == 0
    assert send(node, [good]) == [0x0000]


def test_duplicates_identical_and_conflicting(node, localizer):
    datasets = [pydicom.dcmread(p) for p in localizer]
    assert send(node, datasets) == [0x0000] * 9
    node.wait_jobs(1)  # its report is stored too
    first = {p.name: p.read_bytes() for p in stored_files(node)}
    assert send(node, datasets) == [0x0000] * 9  # identical re-send
    changed = pydicom.dcmread(localizer[0])
    changed.SeriesDescription = "changed"
    assert send(node, [changed]) == [0x0000]  # keep_first: accepted, not stored
    assert instance_count(node) == 9
    assert {p.name: p.read_bytes() for p in stored_files(node)} == first
    assert "conflicting duplicate, first copy kept" in node.log()
    assert len(node.wait_jobs(1)) == 1  # re-sends do not re-open the series


def test_reject_policy_refuses_conflicting_duplicate(make_node, localizer):
    node = make_node(storage={"duplicate_policy": "reject"})
    ds = pydicom.dcmread(localizer[0])
    assert send(node, [ds]) == [0x0000]
    ds.SeriesDescription = "changed"
    assert send(node, [ds]) == [0xC001]


def test_idle_connections_do_not_starve_real_callers(node):
    idle = []
    try:
        for _ in range(20):
            idle.append(socket.create_connection(("127.0.0.1", node.port), timeout=5))
        started = time.monotonic()
        assert echo(node.port, "SCANNER")
        assert time.monotonic() - started < 3.0
    finally:
        for sock in idle:
            sock.close()


def test_idle_connections_are_dropped_after_the_acse_timeout(make_node):
    node = make_node(network={"acse_timeout": 1.0})
    sock = socket.create_connection(("127.0.0.1", node.port), timeout=10)
    started = time.monotonic()
    assert sock.recv(1) == b""  # the node closes it
    assert time.monotonic() - started < 5.0
    sock.close()


def test_kill_between_images_loses_nothing_acknowledged(make_node, localizer):
    node = make_node()
    datasets = [pydicom.dcmread(p) for p in localizer]
    assoc = open_assoc(node)
    acknowledged = [ds.SOPInstanceUID for ds in datasets[:4]
                    if assoc.send_c_store(ds).Status == 0x0000]
    assert len(acknowledged) == 4
    node.kill()  # power cut in the middle of the series
    assoc.abort()
    node.start()
    with node.db() as conn:
        present = {r[0] for r in conn.execute("SELECT sop_uid FROM instances")}
        paths = [r[0] for r in conn.execute("SELECT path FROM instances")]
    assert set(acknowledged) <= present
    for path in paths:
        assert pydicom.dcmread(node.storage / path).SOPInstanceUID in present
    assert send(node, datasets) == [0x0000] * 9  # the scanner re-sends the series
    node.wait_jobs(1)
    time.sleep(1.0)
    assert len(node.jobs()) == 1 and node.jobs()[0]["state"] == "done"
    assert instance_count(node) == 9


def test_quiet_timer_completes_series_of_aborted_association(make_node, localizer):
    node = make_node(series={"quiet_seconds": 1.0})
    assoc = open_assoc(node)
    for path in localizer:
        assert assoc.send_c_store(pydicom.dcmread(path)).Status == 0x0000
    assoc.abort()
    jobs = node.wait_jobs(1, timeout=10)
    assert len(jobs) == 1 and jobs[0]["state"] == "done"


def test_late_image_reopens_series_and_supersedes(make_node, localizer):
    node = make_node(series={"quiet_seconds": 1.0})
    datasets = [pydicom.dcmread(p) for p in localizer]
    send(node, datasets[:8])
    node.wait_jobs(1)
    send(node, datasets[8:])
    jobs = node.wait_jobs(2)
    assert [j["revision"] for j in jobs] == [8, 9]
    assert [j["state"] for j in jobs] == ["done", "done"]


def test_series_that_is_not_a_localizer_gets_no_job(node):
    datasets = phantom_localizer(seed=5, per_orientation=1)
    for ds in datasets:
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
        ds.SeriesDescription = "t1_mprage_sag"
    assert send(node, datasets) == [0x0000] * 3
    time.sleep(1.0)
    assert node.jobs() == []
    assert "not a localizer" in node.log()


def test_failing_planner_fails_the_job_not_the_node(make_node, localizer):
    node = make_node(jobs={"planner": "planners:make_failing_planner"})
    send(node, [pydicom.dcmread(p) for p in localizer])
    job = node.wait_jobs(1)[0]
    assert job["state"] == "failed" and "cannot plan 9 images" in job["error"]
    assert echo(node.port, "SCANNER")


def test_crashed_worker_fails_its_job_and_is_replaced(make_node, localizer):
    node = make_node(jobs={"planner": "planners:make_crashing_planner"})
    send(node, [pydicom.dcmread(p) for p in localizer])
    job = node.wait_jobs(1)[0]
    assert job["state"] == "failed" and "worker process died" in job["error"]
    send(node, phantom_localizer(seed=11))  # a new worker takes the next job
    jobs = node.wait_jobs(2, timeout=30)
    assert jobs[1]["state"] == "done"


def test_sigterm_while_a_job_runs_finishes_it_and_exits_zero(make_node, localizer):
    node = make_node(jobs={"planner": "planners:make_slow_planner"})
    send(node, [pydicom.dcmread(p) for p in localizer])
    node.wait_jobs(1, states=("running",))
    node.process.send_signal(signal.SIGTERM)
    assert node.process.wait(30) == 0
    jobs = node.jobs()
    assert len(jobs) == 1 and jobs[0]["state"] == "done", jobs
    assert "stopped" in node.log()


def _can_mount_tmpfs(target: Path) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    target.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(target)],
                            capture_output=True)
    return result.returncode == 0


def test_full_disk_answers_out_of_resources_and_recovers(make_node, tmp_path):
    mount_point = tmp_path / "small-disk"
    if not _can_mount_tmpfs(mount_point):
        pytest.skip("needs root and a mountable tmpfs to simulate a full disk")
    try:
        node = make_node(storage_dir=mount_point / "storage")
        datasets = phantom_localizer(seed=21, per_orientation=4, matrix=128)  # ~33 KB each
        filler = mount_point / "filler"
        free = shutil.disk_usage(mount_point).free
        filler.write_bytes(b"\0" * max(free - 150_000, 0))
        statuses = send(node, datasets)
        assert 0xA700 in statuses, statuses
        stored = statuses.count(0x0000)
        assert instance_count(node) == stored
        assert len(stored_files(node)) == stored  # no partial object left behind
        assert list((node.storage / "tmp").iterdir()) == []
        for path in stored_files(node):
            pydicom.dcmread(path)
        filler.unlink()
        assert send(node, datasets) == [0x0000] * len(datasets)  # recovered
        assert instance_count(node) == len(datasets)
        assert echo(node.port, "SCANNER")
        node.stop()
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_job_interrupted_by_a_crash_runs_again_after_restart(make_node, localizer):
    node = make_node(jobs={"planner": "planners:make_slow_planner"})
    send(node, [pydicom.dcmread(p) for p in localizer])
    node.wait_jobs(1, states=("running",))
    node.kill()  # the worker dies with the node, mid-job
    node.start()
    jobs = node.wait_jobs(1, timeout=30)
    assert len(jobs) == 1 and jobs[0]["state"] == "done", jobs
    assert jobs[0]["attempts"] == 2
    assert "1 re-queued" in node.log()


def test_worker_whose_node_died_while_it_started_exits_at_once(tmp_path):
    """A worker that finds it no longer has the node as its parent (SIGKILL during its
    start-up, before it could ask to die with the node) leaves instead of taking jobs."""
    import multiprocessing

    from isp_node.jobs.workers import WorkerSpec, worker_main

    spec = WorkerSpec(tmp_path / "index.sqlite", tmp_path / "storage",
                      "planners:make_truth_planner", "WARNING")
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()  # never set: only the missing node can end this worker
    orphan = ctx.Process(target=worker_main, args=(spec, stop, -1))  # -1: no process's pid
    orphan.start()
    orphan.join(timeout=120)
    if orphan.is_alive():
        orphan.kill()
    assert orphan.exitcode == 0
    assert not spec.db_path.exists()  # it opened nothing
