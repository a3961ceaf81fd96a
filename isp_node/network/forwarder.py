"""Sends the node's result objects by C-STORE to every peer with
``forward_results = true``, from the persistent forward queue.

One thread per peer in the node's main process, so a peer that is down or slow
holds up neither the jobs nor the other peers. A failed attempt is logged and
retried with exponential backoff; the queue survives restarts.
"""

import logging
import threading
import time
from pathlib import Path

import pydicom
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE

from isp_node.config import Config, Peer
from isp_node.jobs import forwards
from isp_node.storage.database import Database

log = logging.getLogger("isp_node.forward")

POLL_SECONDS = 0.2
# C-STORE statuses that mean the peer holds the object (success and warnings).
STORED = {0x0000, 0xB000, 0xB006, 0xB007}


class Forwarder:
    """The forwarding threads of a running node."""

    def __init__(self, config: Config, db: Database, storage_root: Path) -> None:
        self.config = config
        self.db = db
        self.root = Path(storage_root)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for peer, count in forwards.pending_by_peer(self.db).items():
            if peer not in {p.ae_title for p in self.config.result_peers}:
                log.warning("%d result objects wait for %s, which is not a peer with "
                            "forward_results = true: they are kept, not sent", count, peer)
        for peer in self.config.result_peers:
            thread = threading.Thread(target=self._run, args=(peer,), daemon=True,
                                      name=f"forward-{peer.ae_title}")
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop after the object being sent; what is pending is sent after a restart."""
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _run(self, peer: Peer) -> None:
        while not self._stop.is_set():
            try:
                self.send_due(peer)
            except Exception:  # a database or peer surprise must not end forwarding
                log.exception("forwarding to %s failed; trying again", peer.ae_title)
                self._stop.wait(self.config.forwarding.retry_initial_seconds)
                continue
            next_due = forwards.next_due_at(self.db, peer.ae_title)
            wait = POLL_SECONDS if next_due is None else min(max(next_due - time.time(), 0.0),
                                                              POLL_SECONDS)
            self._stop.wait(wait)

    def _retry(self, peer: Peer, ids: list[int], error: str) -> None:
        settings = self.config.forwarding
        wait = forwards.retry_later(self.db, ids, error, settings.retry_initial_seconds,
                                    settings.retry_max_seconds)
        log.warning("forwarding %d result objects to %s@%s:%d failed (%s); next attempt in "
                    "%.1f s", len(ids), peer.ae_title, peer.host, peer.port, error, wait)

    def send_due(self, peer: Peer) -> int:
        """Send what is due to `peer` over one association; return how many it took."""
        batch = forwards.due(self.db, peer.ae_title)
        present = []
        for forward in batch:
            if forward.path and (self.root / forward.path).is_file():
                present.append(forward)
            else:
                forwards.give_up(self.db, forward.id, "object no longer stored")
                log.error("result object %s for %s is no longer stored: not forwarded",
                          forward.sop_uid, peer.ae_title)
        if not present:
            return 0
        ae = AE(ae_title=self.config.node.ae_title)
        network = self.config.network
        ae.acse_timeout = ae.connection_timeout = network.acse_timeout
        ae.dimse_timeout, ae.network_timeout = network.dimse_timeout, network.network_timeout
        for sop_class in sorted({f.sop_class_uid for f in present}):
            ae.add_requested_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title,
                             max_pdu=network.max_pdu_size)
        if not assoc.is_established:
            reason = "association rejected" if assoc.is_rejected else \
                "association aborted" if assoc.is_aborted else "peer not reachable"
            self._retry(peer, [f.id for f in present], reason)
            return 0
        sent = 0
        try:
            for index, forward in enumerate(present):
                if self._stop.is_set() or not assoc.is_established:
                    self._retry(peer, [f.id for f in present[index:]], "association ended")
                    break
                status = assoc.send_c_store(pydicom.dcmread(self.root / forward.path))
                code = status.Status if status else None
                if code in STORED:
                    forwards.mark_sent(self.db, forward.id)
                    sent += 1
                else:
                    self._retry(peer, [forward.id], "no response" if code is None else
                                f"C-STORE status 0x{code:04X}")
        finally:
            if assoc.is_established:
                assoc.release()
        if sent:
            log.info("forwarded %d result objects to %s@%s:%d", sent, peer.ae_title,
                     peer.host, peer.port)
        return sent
