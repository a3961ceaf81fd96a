"""Which series are localizers, and the job queue's life cycle."""

import pytest
from pydicom.dataset import Dataset

from isp_node.config import SeriesSettings
from isp_node.jobs import queue
from isp_node.jobs.assembler import is_localizer
from isp_node.storage.database import Database


def image(image_type=("ORIGINAL", "PRIMARY"), description=""):
    ds = Dataset()
    ds.ImageType = list(image_type)
    ds.SeriesDescription = description
    return ds


@pytest.mark.parametrize("ds, expected", [
    (image(("ORIGINAL", "PRIMARY", "LOCALIZER")), True),
    (image(description="3-plane loc"), True),
    (image(description="AAHead_Scout_64ch"), True),
    (image(description="SURVEY_SENSE"), True),
    (image(description="TriPilot"), True),
    (image(description="Localizer"), True),
    (image(description="t1_mprage_sag"), False),
    (image(description="block design fMRI"), False),
    (image(description=""), False),
])
def test_localizer_rules(ds, expected):
    assert is_localizer(ds, SeriesSettings()) is expected


def test_configured_localizer_rules():
    settings = SeriesSettings(localizer_image_types=("SCOUTX",), localizer_descriptions=("plan",))
    assert is_localizer(image(("ORIGINAL", "SCOUTX")), settings)
    assert is_localizer(image(description="PlanScan"), settings)
    assert not is_localizer(image(("LOCALIZER",), "loc"), settings)


def test_queue_life_cycle(tmp_path):
    db = Database(tmp_path / "q.sqlite")
    with db.transaction() as conn:
        first = queue.enqueue(conn, "1.2", "1", 1)
        assert queue.enqueue(conn, "1.2", "1", 1) == first  # idempotent
        second = queue.enqueue(conn, "1.2", "1", 2)  # supersedes the queued first
    assert queue.get(db, first)["state"] == "superseded"
    job = queue.claim(db, worker_pid=123)
    assert job.id == second and job.attempts == 1
    assert queue.claim(db, worker_pid=123) is None
    assert queue.recover_interrupted(db, max_attempts=2) == (1, 0)
    job = queue.claim(db, worker_pid=124)
    assert job.attempts == 2
    assert queue.recover_interrupted(db, max_attempts=2) == (0, 1)
    assert queue.get(db, second)["state"] == "failed"
