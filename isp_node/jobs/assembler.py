"""Series assembly: decides when a received series is complete and queues its job.

A series is complete when the association that carried it is released, or
`quiet_seconds` after its last new image otherwise. A late new image re-opens
it; its next completion queues a new job that supersedes the earlier one.
Identical re-sends do not re-open a series.
"""

import logging
import re
import sqlite3
import time

from pydicom.dataset import Dataset

from isp_node.config import SeriesSettings
from isp_node.jobs import queue
from isp_node.storage.database import Database

log = logging.getLogger("isp_node.series")


def is_localizer(ds: Dataset, settings: SeriesSettings) -> bool:
    """True when the image looks like part of a localizer (scout) series."""
    image_type = [str(v).upper() for v in (ds.get("ImageType") or [])]
    if any(t.upper() in image_type for t in settings.localizer_image_types):
        return True
    words = re.split(r"[^a-z0-9]+", str(ds.get("SeriesDescription", "")).lower())
    prefixes = tuple(d.lower() for d in settings.localizer_descriptions)
    return any(word.startswith(prefixes) for word in words if word)


class SeriesAssembler:
    """Tracks open series in the database and completes them."""

    def __init__(self, db: Database, settings: SeriesSettings) -> None:
        self.db = db
        self.settings = settings

    def note_instance(self, conn: sqlite3.Connection, ds: Dataset, association: str) -> None:
        """Record a new instance of a series (inside the store transaction)."""
        conn.execute(
            """
            INSERT INTO series (series_uid, study_uid, is_localizer, state, revision,
                                last_received, association)
            VALUES (?, ?, ?, 'open', 1, ?, ?)
            ON CONFLICT (series_uid) DO UPDATE SET
                state = 'open', revision = revision + 1,
                is_localizer = MAX(is_localizer, excluded.is_localizer),
                last_received = excluded.last_received,
                association = excluded.association
            """,
            (ds.SeriesInstanceUID, ds.StudyInstanceUID,
             int(is_localizer(ds, self.settings)), time.time(), association),
        )

    def association_ended(self, association: str) -> list[int]:
        """Complete every series the released association left open."""
        return self._complete_open("association = ?", association)

    def complete_quiet(self, now: float | None = None) -> list[int]:
        """Complete series that received nothing new for `quiet_seconds`."""
        cutoff = (time.time() if now is None else now) - self.settings.quiet_seconds
        return self._complete_open("last_received <= ?", cutoff)

    def _complete_open(self, condition: str, value: object) -> list[int]:
        """Complete the open series matching `condition`; return the queued job ids."""
        with self.db.transaction() as conn:
            rows = conn.execute(
                f"SELECT * FROM series WHERE state = 'open' AND {condition}", (value,)
            ).fetchall()
            return [job for row in rows if (job := self._complete(conn, row)) is not None]

    def _complete(self, conn: sqlite3.Connection, row: sqlite3.Row) -> int | None:
        conn.execute(
            "UPDATE series SET state = 'complete', association = '' WHERE series_uid = ?",
            (row["series_uid"],),
        )
        count = conn.execute(
            "SELECT COUNT(*) FROM instances WHERE series_uid = ?", (row["series_uid"],)
        ).fetchone()[0]
        if not row["is_localizer"]:
            log.info("series %s complete (%d images, not a localizer)", row["series_uid"], count)
            return None
        job_id = queue.enqueue(conn, row["series_uid"], row["study_uid"], row["revision"])
        log.info("series %s complete (%d images): job %s queued",
                 row["series_uid"], count, job_id)
        return job_id
