"""The persistent job queue (a SQLite table): queued -> running -> done | failed.

A job is one completed localizer series at one revision. A newer revision of
the same series supersedes queued older ones. Jobs left running by a process
that died are re-queued (or failed once out of attempts) at start-up.
"""

import json
import sqlite3
import time
from dataclasses import dataclass

from isp_node.storage.database import Database


@dataclass(frozen=True)
class Job:
    id: int
    series_uid: str
    study_uid: str
    revision: int
    attempts: int


def enqueue(conn: sqlite3.Connection, series_uid: str, study_uid: str, revision: int) -> int:
    """Queue the job for a series revision (idempotent); return its id."""
    conn.execute(
        "UPDATE jobs SET state = 'superseded', finished_at = ? "
        "WHERE series_uid = ? AND state = 'queued' AND revision < ?",
        (time.time(), series_uid, revision),
    )
    conn.execute(
        "INSERT OR IGNORE INTO jobs (series_uid, study_uid, revision, state, created_at) "
        "VALUES (?, ?, ?, 'queued', ?)",
        (series_uid, study_uid, revision, time.time()),
    )
    return conn.execute(
        "SELECT id FROM jobs WHERE series_uid = ? AND revision = ?", (series_uid, revision)
    ).fetchone()[0]


def claim(db: Database, worker_pid: int) -> Job | None:
    """Take the oldest queued job for this worker, or None when there is none."""
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT * FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        conn.execute(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, started_at = ?, "
            "worker_pid = ? WHERE id = ?",
            (time.time(), worker_pid, row["id"]),
        )
    return Job(row["id"], row["series_uid"], row["study_uid"], row["revision"],
               row["attempts"] + 1)


def finish(db: Database, job_id: int, result: dict) -> None:
    """Mark a job done with its JSON-serialisable result."""
    with db.transaction() as conn:
        conn.execute(
            "UPDATE jobs SET state = 'done', result = ?, error = '', finished_at = ? "
            "WHERE id = ?",
            (json.dumps(result), time.time(), job_id),
        )


def fail(db: Database, job_id: int, error: str) -> None:
    """Mark a job failed with the reason."""
    with db.transaction() as conn:
        conn.execute(
            "UPDATE jobs SET state = 'failed', error = ?, finished_at = ? WHERE id = ?",
            (error, time.time(), job_id),
        )


def fail_running_of(db: Database, worker_pid: int, error: str) -> list[int]:
    """Fail the jobs a worker process held when it died; return their ids."""
    with db.transaction() as conn:
        ids = [r[0] for r in conn.execute(
            "SELECT id FROM jobs WHERE state = 'running' AND worker_pid = ?", (worker_pid,)
        )]
        conn.execute(
            "UPDATE jobs SET state = 'failed', error = ?, finished_at = ? "
            "WHERE state = 'running' AND worker_pid = ?",
            (error, time.time(), worker_pid),
        )
    return ids


def recover_interrupted(db: Database, max_attempts: int) -> tuple[int, int]:
    """At start-up: re-queue jobs a previous process left running, or fail them
    when out of attempts. Returns (requeued, failed)."""
    with db.transaction() as conn:
        failed = conn.execute(
            "UPDATE jobs SET state = 'failed', finished_at = ?, "
            "error = 'interrupted by a node restart; out of attempts' "
            "WHERE state = 'running' AND attempts >= ?",
            (time.time(), max_attempts),
        ).rowcount
        requeued = conn.execute(
            "UPDATE jobs SET state = 'queued', worker_pid = NULL WHERE state = 'running'"
        ).rowcount
    return requeued, failed


def get(db: Database, job_id: int) -> sqlite3.Row | None:
    return db.connection().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
