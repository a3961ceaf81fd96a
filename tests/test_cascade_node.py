"""The node runs stages 1-2 of the cascade on a received localizer, with the trained
networks shipped in models/."""

import json

import pydicom
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import MRImageStorage

from conftest import NODE_AE
from isp_node.cascade.planner import COVERAGE_MODEL, models_dir
from isp_node.simulation.cases import simulate_case

pytestmark = pytest.mark.network


def _send(node, paths):
    ae = AE(ae_title="SCANNER")
    ae.add_requested_context(MRImageStorage)
    assoc = ae.associate("127.0.0.1", node.port, ae_title=NODE_AE)
    statuses = [assoc.send_c_store(pydicom.dcmread(p)).Status for p in paths]
    assoc.release()
    assert statuses == [0] * len(paths)


@pytest.mark.parametrize("kind", ["usable", "artifact"])
def test_worker_judges_the_localizer(make_node, tmp_path, kind, mni_head, pydeface_head):
    assert (models_dir() / COVERAGE_MODEL).exists()
    case = simulate_case(4242, kind=kind, protocol="three_plane", head="mni")
    paths = case.write(tmp_path / "case")
    node = make_node(jobs={"planner": "isp_node.cascade.planner:make_planner"})
    _send(node, paths)
    job = node.wait_jobs(1, timeout=120)[0]
    assert job["state"] == "done", job
    result = json.loads(job["result"])
    assert result["planner"] == "cascade"
    assert len(result["images"]) == len(paths)
    if kind == "usable":
        assert result["usable"], result["message"]
        assert 800 < result["brain"]["volume_ml"] < 2200
    else:
        assert not result["usable"] and "artifacts" in result["message"]
