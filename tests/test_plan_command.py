"""`isp-node plan` runs the cascade offline on a localizer's DICOM files, as the node does."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from isp_node.geometry import PLANE_KEYS
from isp_node.geometry.planes import normal_angle_deg
from isp_node.pipeline.result import PlanningResult

def plan(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "isp_node", "plan", *args], capture_output=True,
                          text=True, timeout=300, env=dict(os.environ))


@pytest.mark.network
def test_plan_writes_the_planners_result_with_every_plane(mni_head, tmp_path):
    from isp_node.simulation.cases import simulate_case

    case = simulate_case(11, kind="usable", protocol="three_plane", head="mni")
    case.write(tmp_path / "case")  # DICOM files and truth.json, which is no DICOM file
    out = tmp_path / "plan.json"

    run = plan(str(tmp_path / "case"), "--json", str(out))  # the installed models
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(out.read_text())
    assert result["usable"] and result["planner"] == "cascade"
    assert [Path(s.split(":")[0]).name for s in result["skipped_files"]] == ["truth.json"]
    assert len(result["images"]) == len(case.slices)
    assert sorted(p["key"] for p in result["planes"]) == sorted(PLANE_KEYS)
    assert "Orientation-Net" in result["models"] and "Orientation-Net fine stage" in result["models"]
    found = {p.key: p.plane for p in PlanningResult.from_json(result).planes}
    # the network is degrees off, not tens of degrees: these are its planes
    assert normal_angle_deg(found["MSP"], case.planes["MSP"]) < 10.0
    assert normal_angle_deg(found["ACPC"], case.planes["ACPC"]) < 15.0
    assert "verdict   usable" in run.stdout and "skipped   truth.json" in run.stdout
    for key in PLANE_KEYS:
        assert any(line.split()[:1] == [key] for line in run.stdout.splitlines()), key


def test_plan_says_why_when_nothing_can_be_planned(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    run = plan(str(tmp_path), "--json", str(tmp_path / "plan.json"))
    assert run.returncode == 1 and "no usable localizer image" in run.stderr
    assert json.loads((tmp_path / "plan.json").read_text())["usable"] is False

    missing = plan(str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "no such file or directory" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = plan(str(tmp_path / "empty"))
    assert empty.returncode == 2 and "no files to plan" in empty.stderr
    no_models = plan(str(tmp_path), "--models", str(tmp_path / "empty"))
    assert no_models.returncode == 2
    assert "no localizer_iq_net.keras or coverage_net.keras" in no_models.stderr
