"""The persistent forward queue (a SQLite table): result objects waiting to be sent
by C-STORE to the peers with ``forward_results = true``.

A row is queued in the same transaction that indexes the object, so nothing
stored can miss its forward. A failed attempt is retried with exponential
backoff for as long as it takes (``pending``); ``sent`` rows stay as a record;
``failed`` is final and only for an object the node no longer holds.
"""

import sqlite3
import time
from dataclasses import dataclass

from isp_node.storage.database import Database


@dataclass(frozen=True)
class Forward:
    id: int
    sop_uid: str
    peer: str
    attempts: int
    path: str  # the object's file, relative to the storage root ('' when gone)
    sop_class_uid: str


def enqueue(conn: sqlite3.Connection, sop_uid: str, peers: tuple[str, ...]) -> None:
    """Queue one stored object for every peer in `peers` (inside the store transaction)."""
    now = time.time()
    conn.executemany(
        "INSERT OR IGNORE INTO forwards (sop_uid, peer, state, next_attempt_at, created_at) "
        "VALUES (?, ?, 'pending', ?, ?)",
        [(sop_uid, peer, now, now) for peer in peers],
    )


def due(db: Database, peer: str, now: float | None = None, limit: int = 500) -> list[Forward]:
    """The pending forwards to `peer` whose next attempt is due, oldest first."""
    rows = db.connection().execute(
        "SELECT f.id, f.sop_uid, f.peer, f.attempts, COALESCE(i.path, '') AS path, "
        "COALESCE(i.sop_class_uid, '') AS sop_class_uid FROM forwards f "
        "LEFT JOIN instances i ON i.sop_uid = f.sop_uid "
        "WHERE f.peer = ? AND f.state = 'pending' AND f.next_attempt_at <= ? "
        "ORDER BY f.id LIMIT ?",
        (peer, time.time() if now is None else now, limit),
    ).fetchall()
    return [Forward(**dict(row)) for row in rows]


def next_due_at(db: Database, peer: str) -> float | None:
    """When the earliest pending forward to `peer` is due, or None when none is pending."""
    row = db.connection().execute(
        "SELECT MIN(next_attempt_at) FROM forwards WHERE peer = ? AND state = 'pending'", (peer,)
    ).fetchone()
    return row[0]


def mark_sent(db: Database, forward_id: int) -> None:
    with db.transaction() as conn:
        conn.execute("UPDATE forwards SET state = 'sent', sent_at = ?, attempts = attempts + 1, "
                     "last_error = '' WHERE id = ?", (time.time(), forward_id))


def retry_later(db: Database, forward_ids: list[int], error: str,
                initial_s: float, max_s: float) -> float:
    """Record a failed attempt; the next one waits initial_s * 2^(attempts - 1), at most
    max_s. Returns the longest wait set."""
    now, longest = time.time(), 0.0
    with db.transaction() as conn:
        for forward_id in forward_ids:
            attempts = conn.execute("SELECT attempts FROM forwards WHERE id = ?",
                                    (forward_id,)).fetchone()[0] + 1
            wait = min(initial_s * 2 ** (attempts - 1), max_s)
            longest = max(longest, wait)
            conn.execute("UPDATE forwards SET attempts = ?, next_attempt_at = ?, last_error = ? "
                         "WHERE id = ?", (attempts, now + wait, error[:500], forward_id))
    return longest


def give_up(db: Database, forward_id: int, error: str) -> None:
    """Final failure: the object to send is no longer stored."""
    with db.transaction() as conn:
        conn.execute("UPDATE forwards SET state = 'failed', last_error = ? WHERE id = ?",
                     (error[:500], forward_id))


def pending_by_peer(db: Database) -> dict[str, int]:
    """How many forwards wait, per peer."""
    rows = db.connection().execute(
        "SELECT peer, COUNT(*) FROM forwards WHERE state = 'pending' GROUP BY peer").fetchall()
    return {peer: count for peer, count in rows}
