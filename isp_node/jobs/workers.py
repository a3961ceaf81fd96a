"""Worker processes: each takes jobs from the queue, runs the planner on them and
stores the result objects (queued for forwarding in the same transaction).

Workers are separate processes so that a planner that crashes, leaks or hangs
the interpreter never takes the network side down. The pool in the node's main
process restarts dead workers and fails the job they held.
"""

import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from pathlib import Path

import pydicom

from isp_node.jobs import forwards, queue
from isp_node.jobs.results import store_results
from isp_node.logs import configure_logging
from isp_node.pipeline.planner import PlanRequest, load_planner_factory
from isp_node.storage import index
from isp_node.storage.archive import Archive
from isp_node.storage.database import Database

log = logging.getLogger("isp_node.jobs")

POLL_SECONDS = 0.05
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process needs, in picklable form."""

    db_path: Path
    storage_root: Path
    planner: str
    log_level: str
    ae_title: str = "ISPNODE"  # the node's, recorded as the sender of its result objects
    forward_to: tuple[str, ...] = ()  # AE titles of the peers that receive results


def run_job(db: Database, archive: Archive, planner, job: queue.Job, ae_title: str) -> None:
    """Run the planner on one claimed job, store its result objects, record the outcome."""
    started = time.monotonic()
    paths = index.series_files(db.connection(), job.series_uid)
    companions = index.companion_files(db.connection(), job.series_uid)
    request = PlanRequest(job.id, job.study_uid, job.series_uid,
                          tuple(archive.root / p for p in paths),
                          tuple(archive.root / p for files in companions.values() for p in files))
    log.info("job %d started: series %s, %d images%s, attempt %d", job.id, job.series_uid,
             len(paths), f" and {len(request.companions)} more from {len(companions)} companion series"
             if companions else "", job.attempts)
    try:
        step = "planner"
        result = planner(request)
        result["companion_series"] = sorted(companions)
        step = "result objects"
        result["outputs"] = store_results(archive, request, result, ae_title).to_json()
    except Exception as exc:  # a bad series, bad result or planner bug fails the job only
        queue.fail(db, job.id, f"{step}: {type(exc).__name__}: {exc}")
        log.error("job %d (series %s, %d images) failed after %.2f s: %s: %s: %s", job.id,
                  job.series_uid, len(paths), time.monotonic() - started, step,
                  type(exc).__name__, exc)
        return
    queue.finish(db, job.id, result)
    log.info("job %d (series %s, %d images) done in %.2f s: %s; report %s, %d overlay objects",
             job.id, job.series_uid, len(paths), time.monotonic() - started,
             result.get("message", ""), result["outputs"]["report"],
             len(result["outputs"]["overlays"]))


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when the node's main process dies, so a
    crashed node leaves no orphan still working on a job it will re-queue."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the parent check in the job loop still applies


def worker_main(spec: WorkerSpec, stop: Event, parent: int | None = None) -> None:
    """Entry point of a worker process: take jobs until `stop` is set or the node
    (process `parent`, by default this process's parent) is gone."""
    _die_with_parent()
    parent = os.getppid() if parent is None else parent
    if os.getppid() != parent:  # the node died while this process was starting
        return
    configure_logging(spec.log_level)
    # The main process decides when workers stop (after their current job), so
    # terminal and service-manager signals are left to it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Result objects copy the scanner's attributes as received; pydicom's per-value
    # checks would refuse a scanner's odd value and cost more than the planning.
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    pydicom.config.settings.writing_validation_mode = pydicom.config.IGNORE
    db = Database(spec.db_path)
    archive = Archive(spec.storage_root, db, owner=False,
                      on_new_instance=lambda conn, ds, _: forwards.enqueue(
                          conn, ds.SOPInstanceUID, spec.forward_to))
    planner = load_planner_factory(spec.planner)()
    pid = os.getpid()
    log.info("worker %d ready (planner %s)", pid, spec.planner)
    conn = db.connection()
    while not stop.is_set() and os.getppid() == parent:
        if conn.execute("SELECT 1 FROM jobs WHERE state = 'queued' LIMIT 1").fetchone() is None:
            stop.wait(POLL_SECONDS)
            continue
        job = queue.claim(db, pid)
        if job is not None:
            run_job(db, archive, planner, job, spec.ae_title)
    log.info("worker %d stopped", pid)


class WorkerPool:
    """Starts `size` worker processes, replaces dead ones, drains on request."""

    def __init__(self, spec: WorkerSpec, size: int, db: Database) -> None:
        self.spec = spec
        self.size = size
        self.db = db
        self._ctx = multiprocessing.get_context("spawn")
        self._stop = self._ctx.Event()
        self._processes: list[multiprocessing.process.BaseProcess] = []

    def _spawn(self) -> None:
        process = self._ctx.Process(
            target=worker_main, args=(self.spec, self._stop, os.getpid()), name="isp-node-worker"
        )
        process.start()
        self._processes.append(process)

    def start(self) -> None:
        for _ in range(self.size):
            self._spawn()

    def supervise(self) -> None:
        """Fail the jobs of workers that died and start replacements."""
        for process in list(self._processes):
            if process.is_alive():
                continue
            process.join()
            self._processes.remove(process)
            failed = queue.fail_running_of(
                self.db, process.pid, f"worker process died (exit code {process.exitcode})"
            )
            if failed or process.exitcode != 0:
                log.error("worker %d died (exit code %s); failed jobs: %s",
                          process.pid, process.exitcode, failed or "none")
            if not self._stop.is_set():
                self._spawn()

    def drain(self) -> None:
        """Let running jobs finish, then stop every worker."""
        self._stop.set()
        for process in self._processes:
            process.join()
        self.supervise()
