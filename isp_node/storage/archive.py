"""Storing received objects: validation, duplicate policy, durable write, indexing.

`Archive.store` is what the C-STORE handler calls. It answers only after the
object is on disk and in the index, and maps every failure to a DICOM status.
"""

import errno
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from pydicom.dataset import Dataset

from isp_node.storage import files, index
from isp_node.storage.database import Database
from isp_node.storage.uids import uid_problem

log = logging.getLogger("isp_node.storage")

# C-STORE statuses (PS3.4 B.2.3 and PS3.7 C)
SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
DATASET_DOES_NOT_MATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000
DUPLICATE_REJECTED = 0xC001

UID_KEYWORDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")


class Outcome(Enum):
    STORED = "stored"
    IDENTICAL_DUPLICATE = "identical duplicate"
    CONFLICT_KEPT_FIRST = "conflicting duplicate, first copy kept"
    CONFLICT_REPLACED = "conflicting duplicate, replaced"
    CONFLICT_REJECTED = "conflicting duplicate, rejected"
    INVALID = "invalid"
    NO_SPACE = "no space"


@dataclass(frozen=True)
class StoreResult:
    outcome: Outcome
    status: int
    reason: str = ""

    @property
    def is_new_content(self) -> bool:
        return self.outcome in (Outcome.STORED, Outcome.CONFLICT_REPLACED)


# Called inside the indexing transaction for every new or replaced instance.
NewInstanceHook = Callable[[sqlite3.Connection, Dataset, str], None]


def _is_no_space(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(exc, sqlite3.OperationalError) and "full" in str(exc).lower()


class Archive:
    """The node's store of DICOM objects: files under `root`, rows in `db`."""

    def __init__(
        self, root: Path, db: Database, duplicate_policy: str = "keep_first",
        on_new_instance: NewInstanceHook | None = None, owner: bool = True,
    ) -> None:
        """`owner`: this process prepares the storage root and drops a crash's leftover
        temporary files; other processes storing into it (workers) must not."""
        self.root = Path(root)
        self.db = db
        self.duplicate_policy = duplicate_policy
        self.on_new_instance = on_new_instance
        if owner:
            files.prepare_root(self.root)

    def path_of(self, relative: str) -> Path:
        return self.root / relative

    def store(
        self, ds: Dataset, encoded: bytes, *, transfer_syntax: str,
        calling_ae: str = "", association: str = "", command_sop_uid: str | None = None,
    ) -> StoreResult:
        """Store one received object; `encoded` is its DICOM file (meta included)."""
        for keyword in UID_KEYWORDS:
            problem = uid_problem(ds.get(keyword))
            if problem:
                return StoreResult(Outcome.INVALID, CANNOT_UNDERSTAND, f"{keyword} {problem}")
        if command_sop_uid is not None and command_sop_uid != ds.SOPInstanceUID:
            return StoreResult(
                Outcome.INVALID, DATASET_DOES_NOT_MATCH,
                "SOPInstanceUID differs from the C-STORE request's Affected SOP Instance UID",
            )

        relative = files.object_relpath(
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
        )
        digest = files.content_digest(encoded_without_meta(encoded))
        conn = self.db.connection()
        existing = index.find_instance(conn, ds.SOPInstanceUID)
        outcome = Outcome.STORED
        if existing is not None:
            if existing["digest"] == digest:
                return StoreResult(Outcome.IDENTICAL_DUPLICATE, SUCCESS)
            if self.duplicate_policy == "keep_first":
                return StoreResult(Outcome.CONFLICT_KEPT_FIRST, SUCCESS)
            if self.duplicate_policy == "reject":
                return StoreResult(
                    Outcome.CONFLICT_REJECTED, DUPLICATE_REJECTED,
                    "an instance with this SOP Instance UID and other content is stored",
                )
            outcome = Outcome.CONFLICT_REPLACED
            relative = Path(existing["path"])

        record = index.InstanceRecord.from_dataset(
            ds, transfer_syntax=transfer_syntax, path=str(relative), digest=digest,
            size=len(encoded), calling_ae=calling_ae, received_at=time.time(),
        )
        written = False
        try:
            files.write_durably(self.root, relative, encoded)
            written = True
            with self.db.transaction() as tx:
                index.put_instance(tx, record)
                if self.on_new_instance is not None:
                    self.on_new_instance(tx, ds, association)
        except (OSError, sqlite3.Error) as exc:
            if written and outcome is Outcome.STORED:
                (self.root / relative).unlink(missing_ok=True)
            if _is_no_space(exc):
                return StoreResult(Outcome.NO_SPACE, OUT_OF_RESOURCES, "storage is full")
            log.exception("storing %s failed", ds.SOPInstanceUID)
            return StoreResult(Outcome.NO_SPACE, OUT_OF_RESOURCES, f"storage error: {exc}")
        return StoreResult(outcome, SUCCESS)


def encoded_without_meta(encoded: bytes) -> bytes:
    """The dataset part of an encoded DICOM file (after preamble and file meta)."""
    if encoded[128:132] != b"DICM":
        return encoded
    # File meta group length (0002,0000) UL is the first element after 'DICM'.
    group_length = int.from_bytes(encoded[140:144], "little")
    return encoded[144 + group_length:]
