"""The node runs the cascade on a received localizer, with the trained networks shipped in
models/."""

import json
import re

import pydicom
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import MRImageStorage

from conftest import NODE_AE
from isp_node.cascade.planner import COVERAGE_MODEL, models_dir
from isp_node.geometry import PLANE_KEYS
from isp_node.geometry.planes import normal_angle_deg
from isp_node.pipeline.result import PlanningResult
from isp_node.pipeline.volume import Grid
from isp_node.simulation.cases import simulate_case
from isp_node.simulation.tensors import brain_target

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
    # each image's brain as Coverage-Net finds it: some wherever the simulated image shows
    # more than 50 cm2; an image where it finds none is irrelevant whatever LocalizerIQ-Net
    # made of it; on the usable localizer, none in the three images that show no brain
    by_uid = {image["uid"]: image for image in result["images"]}
    shown = {image["sop_instance_uid"]: image["brain_mm2"] for image in case.truth()["images"]}
    for uid, true_mm2 in shown.items():
        assert by_uid[uid]["brain_mm2"] > 0 or true_mm2 < 5000, (by_uid[uid], true_mm2)
        assert by_uid[uid]["brain_mm2"] > 0 or by_uid[uid]["class"] == "irrelevant"
    if kind == "usable":
        assert [by_uid[uid]["brain_mm2"] for uid, true_mm2 in shown.items() if true_mm2 == 0] == [0] * 3
        assert result["usable"] and result["message"] == "localizer usable", result["message"]
        truth = brain_target(case.subject, Grid.centred(case.landmarks["AFID:AC"], (64, 64, 64), 4.0))
        true_ml = float(truth.sum()) * 4.0**3 / 1000  # about 1.9 l: the template's brain includes its CSF
        # Coverage-Net's volumes are within -18% / +31% of the truth on 90% of held-out localizers
        assert 0.7 * true_ml < result["brain"]["volume_ml"] < 1.4 * true_ml, true_ml
        # stage 3 as installed plans every key, each with a status
        assert "Orientation-Net fine stage" in result["models"]
        planes = {p.key: p for p in PlanningResult.from_json(result).planes}
        assert set(planes) == set(PLANE_KEYS)
        assert normal_angle_deg(planes["MSP"].plane, case.planes["MSP"]) < 10.0
    else:
        assert not result["usable"] and "artifacts" in result["message"]
        assert result["planes"] == []


def test_a_brain_running_off_the_localizer_is_planned_with_a_warning(make_node, tmp_path,
                                                                      mni_head):
    """A three-plane localizer whose images stop short of the brain's front (the simulated
    brain runs over 4 mm past them there, and on no other side) is usable, and the operator
    message, in the report too, says where the brain runs off."""
    from isp_node.cascade.brain import brain_summary, run_off_sides
    from isp_node.outputs.planning_report import read_planning_report
    from isp_node.pipeline.volume import localizer_centre

    case = simulate_case(9, kind="usable", head="mni")
    grid = Grid.centred(localizer_centre(case.slices), (64, 64, 64), 4.0)
    frames = [s.frame for s in case.slices]
    assert run_off_sides(brain_summary(brain_target(case.subject, grid), grid), frames) == \
        ["anterior"]
    node = make_node(jobs={"planner": "isp_node.cascade.planner:make_planner"})
    _send(node, case.write(tmp_path / "case"))
    job = node.wait_jobs(1, timeout=120)[0]
    assert job["state"] == "done", job
    result = json.loads(job["result"])
    assert result["usable"]
    assert result["message"].startswith("localizer usable, but the brain runs beyond its "
                                        "images on the anterior side:"), result["message"]
    reports = [read_planning_report(pydicom.dcmread(p)) for p in node.storage.rglob("*.dcm")
               if pydicom.dcmread(p, stop_before_pixels=True).Modality == "SR"]
    assert [(r.usable, r.message) for r in reports] == [(True, result["message"])]


def test_stacks_sent_as_one_series_per_orientation_are_planned_together(
        make_node, tmp_path, monkeypatch, mni_head):
    """A localizer whose stacks arrive as one series per orientation (as some scanners send
    it): each series gets its own job and report, planned from all three stacks. Alone,
    one stack shows too little of the head (this one's MSP came out 13-16 degrees off)."""
    import shutil

    from isp_node.cascade.planner import IQ_MODEL, ORIENTATION_MODEL

    models = tmp_path / "models"
    models.mkdir()
    for name in (IQ_MODEL, COVERAGE_MODEL, ORIENTATION_MODEL):  # the first stage of stage 3 alone
        shutil.copy(models_dir() / name, models / name)
    monkeypatch.setenv("ISP_NODE_MODELS", str(models))
    case = simulate_case(21, kind="usable", protocol="separate_stacks", head="mni")
    paths = case.write(tmp_path / "case")
    series = {pydicom.dcmread(p, stop_before_pixels=True).SeriesInstanceUID for p in paths}
    assert len(series) == 3
    node = make_node(jobs={"planner": "isp_node.cascade.planner:make_planner"})
    _send(node, paths)
    jobs = node.wait_jobs(3, timeout=240)
    assert [job["state"] for job in jobs] == ["done"] * 3, jobs
    assert {job["series_uid"] for job in jobs} == series
    for job in jobs:
        result = json.loads(job["result"])
        assert result["companion_series"] == sorted(series - {job["series_uid"]})
        assert len(result["images"]) == len(paths) and result["usable"], result["message"]
        planes = {p.key: p.plane for p in PlanningResult.from_json(result).planes}
        assert normal_angle_deg(planes["MSP"], case.planes["MSP"]) < 5.0
    assert len(re.findall(r"images and \d+ more from 2 companion series", node.log())) == 3
