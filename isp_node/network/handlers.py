"""DIMSE and association event handlers, bound to pynetdicom events.

Each handler is a small function of (event, node) where `node` is the
NodeContext of the running node; pynetdicom passes it as an extra argument.
"""

import logging
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.association import Association

from isp_node.config import Config
from isp_node.jobs.assembler import SeriesAssembler
from isp_node.network import access, contexts, query
from isp_node.storage.archive import Archive, Outcome
from isp_node.storage.database import Database

log = logging.getLogger("isp_node.network")

REFUSED_NOT_AUTHORIZED = 0x0124
CANNOT_UNDERSTAND = 0xC000
IDENTIFIER_MISMATCH = 0xA900
UNABLE_TO_PROCESS = 0xC000
PENDING = 0xFF00
CANCELLED = 0xFE00


@dataclass
class AssociationRecord:
    """What one association asked for and got, for its log line."""

    key: str
    calling_ae: str
    address: str
    port: int
    allowed: frozenset[str]
    started: float = field(default_factory=time.monotonic)
    outcome: str = "open"
    counts: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        done = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) or "nothing"
        return (f"association {self.calling_ae}@{self.address}:{self.port} {self.outcome} "
                f"after {time.monotonic() - self.started:.2f} s: {done}")


@dataclass
class NodeContext:
    """Everything the handlers share: configuration, storage, series assembly."""

    config: Config
    db: Database
    archive: Archive
    assembler: SeriesAssembler
    records: dict[Association, AssociationRecord] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, assoc: Association) -> AssociationRecord | None:
        with self.lock:
            return self.records.get(assoc)


def _comment(text: str) -> str:
    return text[:64]


def _status(code: int, comment: str = "") -> Dataset:
    ds = Dataset()
    ds.Status = code
    if comment:
        ds.ErrorComment = _comment(comment)
    return ds


def _count(node: NodeContext, event: evt.Event, what: str) -> AssociationRecord | None:
    record = node.record(event.assoc)
    if record is not None:
        record.counts[what] += 1
    return record


def handle_requested(event: evt.Event, node: NodeContext) -> None:
    """Admit or reject an A-ASSOCIATE request (peers, AE titles, limits) and
    offer the caller only the presentation contexts of its allowed services."""
    assoc = event.assoc
    address, port = assoc.requestor.address, assoc.requestor.port
    request = assoc.requestor.primitive
    calling, called = request.calling_ae_title.strip(), request.called_ae_title.strip()
    with node.lock:
        open_records = list(node.records.values())
        from_host = sum(1 for r in open_records if r.address == address)
        admission = access.admit(node.config, calling, called, address,
                                 from_host, len(open_records))
        if admission.rejection is None:
            node.records[assoc] = AssociationRecord(
                uuid.uuid4().hex, calling, address, port, admission.allowed
            )
    if admission.rejection is not None:
        log.warning("association %s@%s:%s rejected: %s", calling, address, port, admission.reason)
        assoc.acse.send_reject(*admission.rejection)
        assoc.kill()  # waits until the DUL has sent the A-ASSOCIATE-RJ
        return
    assoc.acceptor.supported_contexts = contexts.allowed_contexts(
        assoc.acceptor.supported_contexts, admission.allowed
    )


def handle_released(event: evt.Event, node: NodeContext) -> None:
    record = node.record(event.assoc)
    if record is None:
        return
    record.outcome = "released"
    node.assembler.association_ended(record.key)


def handle_aborted(event: evt.Event, node: NodeContext) -> None:
    record = node.record(event.assoc)
    if record is not None and record.outcome == "open":
        record.outcome = "aborted"


def handle_closed(event: evt.Event, node: NodeContext) -> None:
    """Write the association's single log line when its connection closes."""
    with node.lock:
        record = node.records.pop(event.assoc, None)
    if record is not None:
        if record.outcome == "open":
            record.outcome = "closed"
        log.info(record.summary())


def handle_echo(event: evt.Event, node: NodeContext) -> int:
    _count(node, event, "C-ECHO")
    return 0x0000


def handle_store(event: evt.Event, node: NodeContext) -> int | Dataset:
    """Store one object durably; answer Success only once it is on disk and indexed."""
    record = node.record(event.assoc)
    calling_ae = record.calling_ae if record else ""
    if record is None or "store" not in record.allowed:
        _count(node, event, "C-STORE refused")
        log.warning("C-STORE from %s refused: this peer may not store", calling_ae)
        return _status(REFUSED_NOT_AUTHORIZED, "this peer may not store")
    try:
        ds = event.dataset
        ds.file_meta = event.file_meta
        result = node.archive.store(
            ds, event.encoded_dataset(),
            transfer_syntax=str(event.context.transfer_syntax),
            calling_ae=calling_ae, association=record.key if record else "",
            command_sop_uid=str(event.request.AffectedSOPInstanceUID),
        )
    except Exception as exc:  # undecodable or hostile data: refuse, keep serving
        _count(node, event, "C-STORE refused")
        log.warning("C-STORE from %s refused: cannot decode: %s", calling_ae, exc)
        return _status(CANNOT_UNDERSTAND, f"cannot decode dataset: {exc}")
    _count(node, event, f"C-STORE {result.outcome.value}")
    if result.outcome in (Outcome.CONFLICT_KEPT_FIRST, Outcome.CONFLICT_REPLACED,
                          Outcome.CONFLICT_REJECTED):
        log.warning("C-STORE from %s: SOP Instance %s is a %s",
                    calling_ae, ds.SOPInstanceUID, result.outcome.value)
    if result.status != 0x0000:
        log.warning("C-STORE from %s refused (0x%04X): %s", calling_ae, result.status, result.reason)
        return _status(result.status, result.reason)
    return 0x0000


def handle_find(event: evt.Event, node: NodeContext):
    """Answer C-FIND with one pending response per matching entity."""
    _count(node, event, "C-FIND")
    try:
        matches = query.find(node.db.connection(), event.identifier,
                             str(event.request.AffectedSOPClassUID), node.config.node.ae_title)
    except query.QueryError as exc:
        yield _status(IDENTIFIER_MISMATCH, str(exc)), None
        return
    except Exception as exc:
        log.exception("C-FIND failed")
        yield _status(UNABLE_TO_PROCESS, str(exc)), None
        return
    for match in matches:
        if event.is_cancelled:
            yield CANCELLED, None
            return
        yield PENDING, match


def _selected(node: NodeContext, event: evt.Event) -> list[Path]:
    paths = query.retrieve_paths(node.db.connection(), event.identifier,
                                 str(event.request.AffectedSOPClassUID))
    return [node.archive.path_of(p) for p in paths]


def _datasets(event: evt.Event, paths: list[Path]):
    for path in paths:
        if event.is_cancelled:
            yield CANCELLED, None
            return
        yield PENDING, pydicom.dcmread(path)


def handle_get(event: evt.Event, node: NodeContext):
    """C-GET: send the selected instances back over the same association."""
    _count(node, event, "C-GET")
    try:
        paths = _selected(node, event)
    except query.QueryError as exc:
        yield _status(IDENTIFIER_MISMATCH, str(exc))
        return
    yield len(paths)
    yield from _datasets(event, paths)


def handle_move(event: evt.Event, node: NodeContext):
    """C-MOVE: send the selected instances to a configured peer, and only there."""
    record = _count(node, event, "C-MOVE")
    destination = node.config.peer(str(event.move_destination).strip())
    if destination is None:
        log.warning("C-MOVE from %s to unknown destination %r refused",
                    record.calling_ae if record else "", str(event.move_destination).strip())
        yield None, None  # answered 0xA801 Refused: Move destination unknown
        return
    try:
        paths = _selected(node, event)
    except query.QueryError as exc:
        log.warning("C-MOVE: %s", exc)
        paths = []
    yield destination.host, destination.port, {"contexts": contexts.move_contexts(paths)}
    yield len(paths)
    yield from _datasets(event, paths)


def handlers(node: NodeContext) -> list:
    """The (event, handler, args) bindings of a running node."""
    bound = [
        (evt.EVT_REQUESTED, handle_requested),
        (evt.EVT_RELEASED, handle_released),
        (evt.EVT_ABORTED, handle_aborted),
        (evt.EVT_CONN_CLOSE, handle_closed),
        (evt.EVT_C_ECHO, handle_echo),
        (evt.EVT_C_STORE, handle_store),
        (evt.EVT_C_FIND, handle_find),
        (evt.EVT_C_GET, handle_get),
        (evt.EVT_C_MOVE, handle_move),
    ]
    return [(event, handler, [node]) for event, handler in bound]
