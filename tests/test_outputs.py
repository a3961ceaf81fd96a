"""Result objects built from a simulated localizer with its ground-truth planes:
checked by dcmtk, and the SR parsed back to the planes that were encoded."""

import copy
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import Comprehensive3DSRStorage, GrayscaleSoftcopyPresentationStateStorage

from conftest import dcmtk, run_tool
from isp_node.geometry import normal_angle_deg
from isp_node.outputs import make_result_objects
from isp_node.outputs.localizer import Localizer, LocalizerInputError, ResultSeries
from isp_node.outputs.planning_report import build_planning_report, read_planning_report
from isp_node.pipeline.result import (
    ImageVerdict,
    PlaneStatus,
    PlannedPlane,
    PlanningResult,
    ResultError,
)
from isp_node.simulation.cases import simulate_case

SEED = 404
STATUS_OF = {"OM": PlaneStatus.LOW_CONFIDENCE, "COW": PlaneStatus.FAILED}


def truth_result(case, usable: bool = True) -> PlanningResult:
    """The simulator's true planes as a planning result (OM low confidence, COW failed)."""
    planes = tuple(
        PlannedPlane(key, plane, round(0.99 - i / 100, 2),
                     STATUS_OF.get(key, PlaneStatus.OK) if usable else PlaneStatus.FAILED)
        for i, (key, plane) in enumerate(case.planes.items()))
    datasets = case.datasets()
    images = tuple(ImageVerdict(ds.SOPInstanceUID, label, s.orientation)
                   for ds, label, s in zip(datasets, case.labels, case.slices))
    return PlanningResult(usable, "localizer usable" if usable else
                          "brain not covered: re-acquire localizer", planes, images,
                          {"LocalizerIQ-Net": "localizer_iq_net.keras sha256:0a1b",
                           "Orientation-Net": "ground truth"})


@pytest.fixture(scope="module")
def written(mni_head, tmp_path_factory):
    """A three-plane localizer (one series) written as DICOM, and its Localizer."""
    case = simulate_case(SEED, kind="usable", protocol="three_plane", head="mni")
    files = case.write(tmp_path_factory.mktemp("localizer"))
    return case, Localizer.from_files(files)


@pytest.fixture(scope="module")
def objects(written, tmp_path_factory):
    """The result objects of the true planes, and the files they were written to."""
    case, localizer = written
    result = truth_result(case)
    made = make_result_objects(localizer, result, ResultSeries(localizer, seed="test"))
    out = tmp_path_factory.mktemp("results")
    paths = []
    for i, ds in enumerate(made.all()):
        paths.append(out / f"{i:03d}_{ds.Modality}.dcm")
        ds.save_as(paths[-1], enforce_file_format=True)
    return result, made, paths


def _dsrdump(path: Path) -> str:
    run = run_tool("dsrdump", "+Pl", path)  # +Pl: long values in full
    assert run.returncode == 0 and not run.stderr.strip(), run.stderr
    return run.stdout


@pytest.mark.skipif(not dcmtk("dsrdump"), reason="dcmtk is not installed")
def test_dcmtk_accepts_every_object(objects):
    _, made, paths = objects
    report = _dsrdump(paths[0])
    assert "Comprehensive 3D SR Document" in report and "ISP Planning Report" in report
    run = run_tool("dcmpschk", paths[1])
    assert run.returncode == 0 and "Test passed" in run.stdout + run.stderr, run.stdout + run.stderr
    run = run_tool("dcmftest", *paths)
    assert run.returncode == 0, run.stdout
    assert run.stdout.count("yes:") == len(paths) == 2 + len(made.captures)


def test_report_parses_back_to_the_planes_encoded(objects):
    result, _, paths = objects
    back = read_planning_report(pydicom.dcmread(paths[0]))
    assert (back.usable, back.message, back.models) == (result.usable, result.message, result.models)
    assert back.class_of() == result.class_of()
    assert [p.key for p in back.planes] == [p.key for p in result.planes]
    for encoded, parsed in zip(result.planes, back.planes):
        e, p = encoded.plane, parsed.plane
        assert np.abs(p.corners() - e.corners()).max() < 0.01, encoded.key
        assert np.linalg.norm(p.centre - e.centre) < 0.01
        assert normal_angle_deg(p, e, oriented=True) < 0.01, encoded.key
        for mine, theirs in ((p.row, e.row), (p.col, e.col)):
            assert np.degrees(np.arccos(np.clip(mine @ theirs, -1, 1))) < 0.01
        assert np.allclose(p.fov_mm, e.fov_mm, atol=0.01)
        assert (p.n_slices, parsed.status) == (e.n_slices, encoded.status)
        assert p.slab_mm == pytest.approx(e.slab_mm, abs=1e-6)
        assert p.spacing_mm == pytest.approx(e.spacing_mm, abs=1e-6)
        assert parsed.confidence == pytest.approx(encoded.confidence, abs=1e-9)


def test_report_follows_the_design_contract(written, objects):
    case, localizer = written
    _, made, paths = objects
    sr = pydicom.dcmread(paths[0])
    loc = localizer.first
    assert sr.SOPClassUID == Comprehensive3DSRStorage
    assert sr.SeriesDescription == "ISP Planning Report"
    assert sr.StudyInstanceUID == loc.StudyInstanceUID and sr.PatientID == loc.PatientID
    assert sr.SeriesInstanceUID != loc.SeriesInstanceUID
    evidence = {ref.ReferencedSOPInstanceUID
                for study in sr.CurrentRequestedProcedureEvidenceSequence
                for series in study.ReferencedSeriesSequence
                for ref in series.ReferencedSOPSequence}
    assert evidence == {ds.SOPInstanceUID for ds in localizer.datasets}
    report = _dsrdump(paths[0])
    assert 'CODE:(,,"Localizer usable")=(373066001,SCT,"Yes")' in report
    assert report.count('"Localizer image class"') == len(localizer.datasets)
    assert 'TEXT:(,,"Operator message")="localizer usable"' in report
    assert "LocalizerIQ-Net: localizer_iq_net.keras sha256:0a1b" in report

    measurements = next(i for i in sr.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == "126010")
    groups = {}
    for group in measurements.ContentSequence:
        by_name = {i.ConceptNameCodeSequence[0].CodeMeaning: i for i in group.ContentSequence}
        groups[by_name["Tracking Identifier"].TextValue] = by_name
    assert set(groups) == {"LOCALIZER", *case.planes}
    for key, plane in case.planes.items():
        items = groups[key]
        finding = items["Finding"].ConceptCodeSequence[0]
        assert (finding.CodingSchemeDesignator, finding.CodeValue) == ("99ISP", key)
        region = items["Image Region"]
        assert (region.ValueType, region.GraphicType) == ("SCOORD3D", "POLYGON")
        assert region.ReferencedFrameOfReferenceUID == loc.FrameOfReferenceUID
        points = np.reshape(region.GraphicData, (-1, 3))
        assert len(points) == 5 and np.array_equal(points[0], points[-1])
        assert np.allclose(points[:4], plane.corners(), atol=1e-3)
        for name in ("Slab thickness", "Number of slices", "Slice spacing", "Confidence"):
            assert items[name].ValueType == "NUM"
        status = items["Planning status"].ConceptCodeSequence[0].CodeValue
        assert status == STATUS_OF.get(key, PlaneStatus.OK).value


def test_overlays_draw_ok_planes_only(written, objects):
    case, localizer = written
    result, made, paths = objects
    gsps = pydicom.dcmread(paths[1])
    assert gsps.SOPClassUID == GrayscaleSoftcopyPresentationStateStorage
    assert gsps.StudyInstanceUID == localizer.first.StudyInstanceUID
    assert [layer.GraphicLayer for layer in gsps.GraphicLayerSequence] == ["PLAN"]
    drawn = set()
    by_uid = {ds.SOPInstanceUID: ds for ds in localizer.datasets}
    for annotation in gsps.GraphicAnnotationSequence:
        assert annotation.GraphicLayer == "PLAN"
        image = localizer.slices[annotation.ReferencedImageSequence[0].ReferencedSOPInstanceUID]
        labels = [t.UnformattedTextValue for t in annotation.TextObjectSequence]
        for graphic, label in zip(annotation.GraphicObjectSequence, labels):
            assert graphic.GraphicType == "POLYLINE" and graphic.NumberOfGraphicPoints == 2
            assert graphic.TrackingID == label
            drawn.add(label)
            # the drawn ends lie on the plane (PIXEL units: pixel centres at +0.5)
            ends = np.reshape(graphic.GraphicData, (2, 2))[:, ::-1] - 0.5
            plane = case.planes[label]
            for end in image.pixel_to_patient(ends):
                assert abs(plane.signed_distance(end)) < 1e-3
    assert drawn == {p.key for p in result.ok_planes}
    assert {"OM", "COW"}.isdisjoint(drawn)
    assert made.captures and len(made.captures) <= len(by_uid)
    for sc in (pydicom.dcmread(p) for p in paths[2:]):
        assert sc.SeriesDescription == "ISP Planning Captures"
        assert sc.PhotometricInterpretation == "RGB" and sc.SamplesPerPixel == 3
        assert sc.BurnedInAnnotation == "YES" and sc.ImageType[0] == "DERIVED"
        assert sc.FrameOfReferenceUID == localizer.first.FrameOfReferenceUID
        source = by_uid[sc.SourceImageSequence[0].ReferencedSOPInstanceUID]
        assert (sc.Rows, sc.Columns) == (source.Rows, source.Columns)
        pixels = sc.pixel_array.astype(int)
        coloured = np.abs(pixels[..., 0] - pixels[..., 1]) + np.abs(pixels[..., 1] - pixels[..., 2])
        assert (coloured > 60).sum() > 50, "no line burned in"
    series = {made.report.SeriesInstanceUID, made.presentation_state.SeriesInstanceUID,
              made.captures[0].SeriesInstanceUID}
    assert len(series) == 3 and localizer.first.SeriesInstanceUID not in series


def test_unusable_localizer_gets_a_report_and_no_overlay(written, tmp_path):
    case, localizer = written
    result = truth_result(case, usable=False)
    made = make_result_objects(localizer, result)
    assert made.presentation_state is None and made.captures == ()
    path = tmp_path / "sr.dcm"
    made.report.save_as(path, enforce_file_format=True)
    report = _dsrdump(path)
    assert 'CODE:(,,"Localizer usable")=(373067005,SCT,"No")' in report
    assert 'TEXT:(,,"Operator message")="brain not covered: re-acquire localizer"' in report
    back = read_planning_report(pydicom.dcmread(path))
    assert not back.usable and {p.status for p in back.planes} == {PlaneStatus.FAILED}
    empty = make_result_objects(localizer, PlanningResult(False, "knee, not a head"))
    assert read_planning_report(empty.report).planes == ()


def test_same_seed_same_uids_and_bad_input_refused(written):
    case, localizer = written
    result = truth_result(case)
    first = build_planning_report(localizer, result, ResultSeries(localizer, seed="job 7"))
    again = build_planning_report(localizer, result, ResultSeries(localizer, seed="job 7"))
    assert first.SOPInstanceUID == again.SOPInstanceUID
    other = simulate_case(SEED + 1, kind="usable", protocol="three_plane", head="mni")
    with pytest.raises(LocalizerInputError, match="more than one series"):
        Localizer.from_datasets([*localizer.datasets, *other.datasets()])
    no_frame = [copy.deepcopy(ds) for ds in localizer.datasets]
    for ds in no_frame:
        del ds.FrameOfReferenceUID
    with pytest.raises(ResultError, match="Frame of Reference"):
        build_planning_report(Localizer.from_datasets(no_frame), result, ResultSeries(localizer))
    with pytest.raises(ResultError, match="Comprehensive 3D SR"):
        read_planning_report(localizer.first)


def test_localizer_without_patient_and_study_details_still_gets_results(written):
    case, localizer = written
    bare = [copy.deepcopy(ds) for ds in localizer.datasets]
    for ds in bare:
        for keyword in ("PatientID", "PatientName", "PatientSex", "StudyID", "AccessionNumber",
                        "StudyDate", "StudyTime", "ReferringPhysicianName"):
            delattr(ds, keyword)
    made = make_result_objects(Localizer.from_datasets(bare), truth_result(case))
    assert made.report.PatientID == "" and made.captures
    assert read_planning_report(made.report).usable
