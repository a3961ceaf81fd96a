"""`isp-node demo` runs the whole job on a fresh node and leaves its results behind."""

import os
import subprocess
import sys
from dataclasses import replace

import pydicom
import pytest
from PIL import Image

from isp_node.demo import print_plan
from isp_node.outputs.planning_report import read_planning_report
from test_planning_result import example_result


def test_plan_table_has_a_line_per_plane(capsys):
    result = example_result()
    print_plan(result)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("  verdict   usable: localizer usable")
    assert lines[1].split()[:2] == ["plane", "centre"]
    for line, planned in zip(lines[2:], result.planes, strict=True):
        fields = line.split()
        assert fields[0] == planned.key and fields[-2] == planned.status.value
        assert [float(v) for v in fields[1:4]] == pytest.approx(planned.plane.centre, abs=0.06)
        assert [float(v) for v in fields[4:7]] == pytest.approx(planned.plane.normal, abs=6e-4)
        assert fields[7] in ("sag", "cor", "ax") and 0 <= float(fields[8]) <= 90


def test_plan_table_shows_how_far_each_plane_is_off_the_simulated_truth(capsys):
    result = example_result()
    truth = {p.key: p.plane for p in result.planes}
    key = result.planes[0].key
    truth[key] = replace(truth[key], centre=truth[key].centre + 2.5 * truth[key].normal)
    print_plan(result, truth)
    lines = capsys.readouterr().out.splitlines()
    assert "off the truth" in lines[1]
    for line, planned in zip(lines[2:], result.planes, strict=True):
        fields = line.split()
        assert fields[-2] == planned.status.value
        assert fields[10:14] == ["0.0", "deg", "2.5" if planned.key == key else "0.0", "mm"]


@pytest.mark.slow
@pytest.mark.network
def test_demo_retrieves_the_report_and_writes_the_overlay(mni_head, tmp_path):
    # its speed is measured, not asserted: a loaded machine would make a time limit flaky
    run = subprocess.run([sys.executable, "-m", "isp_node", "demo", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "demo finished: every step succeeded" in run.stdout
    assert "C-GET     1 planning report retrieved" in run.stdout
    assert "verdict   usable" in run.stdout
    result = read_planning_report(pydicom.dcmread(tmp_path / "planning_report.dcm"))
    assert result.usable and len(result.images) == 24
    with Image.open(tmp_path / "overlay.png") as png:
        assert png.format == "PNG" and png.mode == "RGB" and png.size[0] > 1000
