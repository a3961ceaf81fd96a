"""`isp-node serve`: wires storage, network, series assembly, workers and result
forwarding together, runs until SIGTERM or SIGINT, then drains and exits cleanly."""

import logging
import signal
import threading
import time

import pydicom

from isp_node import __version__
from isp_node.config import Config
from isp_node.jobs import queue
from isp_node.jobs.assembler import SeriesAssembler
from isp_node.jobs.workers import WorkerPool, WorkerSpec
from isp_node.network import server
from isp_node.network.forwarder import Forwarder
from isp_node.network.handlers import NodeContext
from isp_node.storage.archive import Archive
from isp_node.storage.database import Database

log = logging.getLogger("isp_node.service")

TICK_SECONDS = 0.25
DRAIN_ASSOCIATIONS_SECONDS = 30.0


class Node:
    """A running isp-node: association server, series timer, worker pool, forwarder."""

    def __init__(self, config: Config) -> None:
        self.config = config
        root = config.node.storage_dir
        root.mkdir(parents=True, exist_ok=True)
        self.db = Database(root / "isp-node.sqlite")
        self.assembler = SeriesAssembler(self.db, config.series)
        self.archive = Archive(root, self.db, config.storage.duplicate_policy,
                               on_new_instance=self.assembler.note_instance)
        self.context = NodeContext(config, self.db, self.archive, self.assembler)
        self.pool = WorkerPool(
            WorkerSpec(self.db.path, root, config.jobs.planner, config.logging.level,
                       config.node.ae_title, tuple(p.ae_title for p in config.result_peers)),
            config.node.workers, self.db,
        )
        self.forwarder = Forwarder(config, self.db, root)
        self._stop = threading.Event()
        self._server = None

    def start(self) -> None:
        requeued, failed = queue.recover_interrupted(self.db, self.config.jobs.max_attempts)
        if requeued or failed:
            log.info("recovered jobs from the last run: %d re-queued, %d failed", requeued, failed)
        self.pool.start()
        self.forwarder.start()
        self._server = server.start_server(self.config, self.context)
        host, port = self._server.server_address[:2]
        log.info("isp-node %s listening as %s on %s:%d (%d workers, storage %s)",
                 __version__, self.config.node.ae_title, host, port,
                 self.config.node.workers, self.config.node.storage_dir)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def request_stop(self, *_: object) -> None:
        self._stop.set()

    def run(self) -> None:
        """Complete quiet series and supervise workers until asked to stop."""
        while not self._stop.wait(TICK_SECONDS):
            self.tick()

    def tick(self) -> None:
        self.assembler.complete_quiet()
        self.pool.supervise()

    def drain(self) -> None:
        """Stop accepting, let open associations and running jobs finish."""
        log.info("stopping: no new associations; draining")
        self._server.shutdown()
        deadline = time.monotonic() + DRAIN_ASSOCIATIONS_SECONDS
        while time.monotonic() < deadline and any(
            a.is_established for a in self._server.active_associations
        ):
            time.sleep(0.1)
        for assoc in self._server.active_associations:
            assoc.abort()
        self.pool.drain()
        self.forwarder.stop()
        log.info("stopped")


def serve(config: Config) -> int:
    """Run the node in the foreground; return the process exit status."""
    # Received values are validated where they matter (UIDs, geometry); pydicom's
    # per-element warnings about peers' encodings would only flood the log.
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    node = Node(config)
    signal.signal(signal.SIGTERM, node.request_stop)
    signal.signal(signal.SIGINT, node.request_stop)
    node.start()
    node.run()
    node.drain()
    return 0
