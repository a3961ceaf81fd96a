"""Crash-safe object files: content-addressed paths and atomic, fsynced writes.

An object is acknowledged only after `write_durably` returns: the bytes are in a
temporary file that was fsynced, renamed into place, and the directory fsynced,
so a crash leaves either the whole object or nothing under its final name.
"""

import hashlib
import os
import uuid
from pathlib import Path


def object_relpath(study_uid: str, series_uid: str, sop_uid: str) -> Path:
    """Storage path (relative to the storage root) of one instance.

    Derived from a hash of the validated UIDs, never from wire strings, so no
    value a peer sends can steer where a file lands.
    """
    digest = hashlib.sha256(f"{study_uid}\\{series_uid}\\{sop_uid}".encode()).hexdigest()
    return Path("objects") / digest[:2] / digest[2:4] / f"{digest}.dcm"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dirs_durably(root: Path, relative_dir: Path) -> None:
    """Create missing directories below `root`, fsyncing each parent."""
    current = root
    for part in relative_dir.parts:
        child = current / part
        if not child.is_dir():
            child.mkdir(exist_ok=True)
            _fsync_dir(current)
        current = child


def write_durably(root: Path, relative: Path, data: bytes) -> None:
    """Write `data` to root/relative atomically; on any error leave no partial file."""
    tmp_dir = root / "tmp"
    tmp = tmp_dir / f"{uuid.uuid4().hex}.part"
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        _make_dirs_durably(root, relative.parent)
        os.replace(tmp, root / relative)
        _fsync_dir((root / relative).parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def prepare_root(root: Path) -> None:
    """Create the storage layout and drop temporary files a crash left behind."""
    (root / "objects").mkdir(parents=True, exist_ok=True)
    tmp_dir = root / "tmp"
    tmp_dir.mkdir(exist_ok=True)
    for leftover in tmp_dir.glob("*.part"):
        leftover.unlink(missing_ok=True)


def content_digest(data: bytes) -> str:
    """sha256 of an object's bytes, used to tell identical re-sends from conflicts."""
    return hashlib.sha256(data).hexdigest()
