"""The node against dcmtk's command line tools, over real sockets."""

import re
import subprocess
import time

import pydicom
import pytest

from conftest import NODE_AE, dcmtk, run_tool

pytestmark = pytest.mark.skipif(dcmtk("storescu") is None, reason="dcmtk is not installed")


def store(node, files, *extra):
    return run_tool("storescu", *extra, "-aet", "SCANNER", "-aec", NODE_AE,
                    "127.0.0.1", node.port, *files)


def test_echoscu(node):
    result = run_tool("echoscu", "-aet", "SCANNER", "-aec", NODE_AE, "127.0.0.1", node.port)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("syntax", ["-xi", "-xe", "-xd"])  # implicit, explicit, deflated
def test_storescu_every_uncompressed_syntax_then_job(node, localizer, syntax):
    result = store(node, localizer, syntax)
    assert result.returncode == 0, result.stderr
    with node.db() as conn:
        rows = conn.execute("SELECT transfer_syntax, path FROM instances "
                            "WHERE modality = 'MR'").fetchall()
    assert len(rows) == len(localizer)
    expected = {"-xi": "1.2.840.10008.1.2", "-xe": "1.2.840.10008.1.2.1",
                "-xd": "1.2.840.10008.1.2.1.99"}[syntax]
    assert {r["transfer_syntax"] for r in rows} == {expected}
    for row in rows:  # the stored file is the object as sent, readable as DICOM
        ds = pydicom.dcmread(node.storage / row["path"])
        assert ds.Modality == "MR" and ds.pixel_array.shape == (64, 64)
    jobs = node.wait_jobs(1)
    assert len(jobs) == 1 and jobs[0]["state"] == "done", jobs


def test_storescu_jpeg_lossless(node, localizer, tmp_path):
    compressed = []
    for path in localizer[:2]:
        out = tmp_path / f"{path.stem}.jls.dcm"
        result = run_tool("dcmcjpls", path, out)
        assert result.returncode == 0, result.stderr
        compressed.append(out)
    result = store(node, compressed, "-xt")  # propose JPEG-LS lossless
    assert result.returncode == 0, result.stderr
    with node.db() as conn:
        syntaxes = {r[0] for r in conn.execute("SELECT transfer_syntax FROM instances")}
    assert syntaxes == {"1.2.840.10008.1.2.4.80"}


def _find(node, *keys, model="-S", aet="SCANNER"):
    args = ["findscu", "-v", model, "-aet", aet, "-aec", NODE_AE]
    for key in keys:
        args += ["-k", key]
    return run_tool(*args, "127.0.0.1", node.port)


def _responses(output: str) -> int:
    return len(re.findall(r"Find Response: \d+ \(Pending\)", output))


def test_findscu_study_and_patient_root(node, localizer):
    assert store(node, localizer).returncode == 0
    node.wait_jobs(1)  # the study then holds the localizer and the planning report
    ds = pydicom.dcmread(localizer[0])
    result = _find(node, "QueryRetrieveLevel=STUDY", "StudyInstanceUID", "PatientName=Phantom*",
                   "ModalitiesInStudy", "NumberOfStudyRelatedInstances")
    assert result.returncode == 0, result.stderr
    assert _responses(result.stderr) == 1, result.stderr
    assert ds.StudyInstanceUID in result.stderr
    assert re.search(r"\[(MR\\SR|SR\\MR) ?\]", result.stderr), result.stderr
    assert "[10]" in result.stderr, result.stderr

    result = _find(node, "QueryRetrieveLevel=IMAGE", f"StudyInstanceUID={ds.StudyInstanceUID}",
                   f"SeriesInstanceUID={ds.SeriesInstanceUID}", "SOPInstanceUID")
    assert _responses(result.stderr) == 9, result.stderr

    result = _find(node, "QueryRetrieveLevel=PATIENT", "PatientID=PHANTOM", "PatientName",
                   "NumberOfPatientRelatedStudies", model="-P")
    assert _responses(result.stderr) == 1, result.stderr
    assert "Phantom^7" in result.stderr

    result = _find(node, "QueryRetrieveLevel=STUDY", "StudyDate=20250101-20251231",
                   "StudyInstanceUID")
    assert _responses(result.stderr) == 0, result.stderr


def test_movescu_into_storescp_peer(node, localizer, receiver_port, tmp_path):
    assert store(node, localizer).returncode == 0
    node.wait_jobs(1)  # the study then holds the localizer and the planning report
    study = pydicom.dcmread(localizer[0]).StudyInstanceUID
    received = tmp_path / "received"
    received.mkdir()
    scp = subprocess.Popen([dcmtk("storescp"), "-aet", "RECEIVER", "-od", str(received),
                            str(receiver_port)], stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        result = run_tool("movescu", "-v", "-S", "-aet", "SCANNER", "-aec", NODE_AE,
                          "-aem", "RECEIVER", "-k", "QueryRetrieveLevel=STUDY",
                          "-k", f"StudyInstanceUID={study}", "127.0.0.1", node.port)
        assert result.returncode == 0, result.stderr
        assert "Final Move Response (Success)" in result.stderr, result.stderr
    finally:
        scp.terminate()
        scp.wait(10)
    assert sorted(pydicom.dcmread(p).Modality for p in received.iterdir()) == ["MR"] * 9 + ["SR"]


def test_getscu(node, localizer, tmp_path):
    assert store(node, localizer).returncode == 0
    series = pydicom.dcmread(localizer[0]).SeriesInstanceUID
    out = tmp_path / "got"
    out.mkdir()
    result = run_tool("getscu", "-v", "-S", "-aet", "SCANNER", "-aec", NODE_AE, "-od", out,
                      "-k", "QueryRetrieveLevel=SERIES",
                      "-k", f"StudyInstanceUID={pydicom.dcmread(localizer[0]).StudyInstanceUID}",
                      "-k", f"SeriesInstanceUID={series}", "127.0.0.1", node.port)
    assert result.returncode == 0, result.stderr
    got = sorted(pydicom.dcmread(p).SOPInstanceUID for p in out.iterdir())
    assert got == sorted(pydicom.dcmread(p).SOPInstanceUID for p in localizer)
