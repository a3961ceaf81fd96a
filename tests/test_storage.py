"""UID validation, object paths, durable writes and the archive's duplicate policies."""

import errno
from pathlib import Path

import pydicom
import pytest

from isp_node.storage import files
from isp_node.storage.archive import Archive, Outcome, encoded_without_meta
from isp_node.storage.database import Database
from isp_node.storage.uids import is_valid_uid, uid_problem
from isp_node.simulation.phantom import phantom_localizer


@pytest.mark.parametrize("uid", ["1.2.840.10008.5.1.4.1.1.4", "0.1", "2.25.0", "1" * 64])
def test_valid_uids(uid):
    assert is_valid_uid(uid)


@pytest.mark.parametrize("uid, problem", [
    ("", "missing"), (None, "missing"), ("1." + "2" * 63, "longer than 64"),
    ("1.02", "leading zeros"), ("../1.2", "digits and dots"), ("1.2.", "digits and dots"),
    ("1..2", "digits and dots"), ("1.2 ", "digits and dots"), ("1.2\x00", "digits and dots"),
])
def test_invalid_uids(uid, problem):
    assert problem in uid_problem(uid)


def test_object_path_is_a_hash_inside_objects():
    path = files.object_relpath("1.2", "1.2.3", "1.2.3.4")
    assert path.parts[0] == "objects" and len(path.parts) == 4
    assert path.name.endswith(".dcm") and len(path.stem) == 64
    assert path != files.object_relpath("1.2", "1.2.3", "1.2.3.5")


def test_write_durably_and_cleanup(tmp_path):
    files.prepare_root(tmp_path)
    files.write_durably(tmp_path, Path("objects/ab/cd/x.dcm"), b"data")
    assert (tmp_path / "objects/ab/cd/x.dcm").read_bytes() == b"data"
    assert list((tmp_path / "tmp").iterdir()) == []
    (tmp_path / "tmp" / "left.part").write_bytes(b"partial")
    files.prepare_root(tmp_path)
    assert list((tmp_path / "tmp").iterdir()) == []


def test_write_failure_leaves_no_partial_file(tmp_path, monkeypatch):
    files.prepare_root(tmp_path)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(OSError):
        files.write_durably(tmp_path, Path("objects/x.dcm"), b"data")
    assert not (tmp_path / "objects/x.dcm").exists()
    assert list((tmp_path / "tmp").iterdir()) == []


def _encoded(ds) -> bytes:
    from io import BytesIO

    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_encoded_without_meta_strips_preamble_and_meta():
    ds = phantom_localizer(seed=1, per_orientation=1)[0]
    data = _encoded(ds)
    body = encoded_without_meta(data)
    assert len(body) < len(data) and data.endswith(body)
    assert body[:4] == b"\x08\x00\x05\x00"  # first element: SpecificCharacterSet


@pytest.mark.parametrize("policy, outcome, status", [
    ("keep_first", Outcome.CONFLICT_KEPT_FIRST, 0x0000),
    ("replace", Outcome.CONFLICT_REPLACED, 0x0000),
    ("reject", Outcome.CONFLICT_REJECTED, 0xC001),
])
def test_archive_duplicate_policies(tmp_path, policy, outcome, status):
    archive = Archive(tmp_path, Database(tmp_path / "db.sqlite"), policy)
    ds = phantom_localizer(seed=1, per_orientation=1)[0]
    kw = dict(transfer_syntax=str(ds.file_meta.TransferSyntaxUID))
    assert archive.store(ds, _encoded(ds), **kw).outcome is Outcome.STORED
    assert archive.store(ds, _encoded(ds), **kw).outcome is Outcome.IDENTICAL_DUPLICATE
    ds.SeriesDescription = "other"
    result = archive.store(ds, _encoded(ds), **kw)
    assert (result.outcome, result.status) == (outcome, status)
    stored = list((tmp_path / "objects").rglob("*.dcm"))
    assert len(stored) == 1
    expected = "other" if policy == "replace" else "3-plane loc"
    assert pydicom.dcmread(stored[0]).SeriesDescription == expected


def test_archive_refuses_command_and_dataset_uid_mismatch(tmp_path):
    archive = Archive(tmp_path, Database(tmp_path / "db.sqlite"))
    ds = phantom_localizer(seed=1, per_orientation=1)[0]
    result = archive.store(ds, _encoded(ds), transfer_syntax="1.2.840.10008.1.2.1",
                           command_sop_uid="1.2.3")
    assert result.status == 0xA900 and not list((tmp_path / "objects").rglob("*.dcm"))


def test_companion_series_are_localizers_of_one_study_and_frame_received_together(tmp_path):
    """The stacks of one localizer sent as one series per orientation find each other;
    another study, another frame of reference, a later localizer and the node's own
    results do not."""
    from dataclasses import fields

    from isp_node.storage.database import Database
    from isp_node.storage.index import InstanceRecord, companion_files, put_instance

    db = Database(tmp_path / "index.sqlite")

    def add(sop, series, study="study", frame="frame", at=1000.0, localizer=True):
        record = InstanceRecord(**{f.name: "" for f in fields(InstanceRecord)} | dict(
            sop_uid=sop, series_uid=series, study_uid=study, frame_of_reference_uid=frame,
            instance_number=sop[-1], path=f"{sop}.dcm", size=0, received_at=at))
        with db.transaction() as conn:
            put_instance(conn, record)
            conn.execute("INSERT OR IGNORE INTO series (series_uid, study_uid, is_localizer, state, "
                         "revision, last_received) VALUES (?, ?, ?, 'complete', 1, ?)",
                         (series, study, int(localizer), at))

    add("a2", "A", at=1005.0)
    add("a1", "A")
    add("b1", "B", at=1050.0)  # the next stack, seconds later
    add("c1", "C", at=1100.0)  # a localizer repeated over a minute later
    add("d1", "D", study="other")
    add("e1", "E", frame="other")
    add("r1", "R", localizer=False)  # e.g. the node's report
    add("n1", "N", frame="")
    add("m1", "M", frame="")
    conn = db.connection()
    assert companion_files(conn, "A") == {"B": ["b1.dcm"]}
    assert companion_files(conn, "B") == {"A": ["a1.dcm", "a2.dcm"], "C": ["c1.dcm"]}
    assert companion_files(conn, "N") == {}  # no frame of reference: nothing ties it to another
    assert companion_files(conn, "A", window_s=10.0) == {}
