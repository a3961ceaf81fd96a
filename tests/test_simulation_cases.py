"""Simulated localizer cases: determinism, labels, DICOM validity and the fast path."""

import json

import numpy as np
import pydicom
import pytest

from conftest import dcmtk, run_tool
from isp_node.geometry import plane_catalogue
from isp_node.pipeline.loader import load_localizer
from isp_node.simulation.cases import (
    ANATOMY_MIN_BRAIN_MM2, LABELS, anatomy_blur_mm, head_of, simulate_case)
from isp_node.simulation.tensors import GRID_SHAPE, training_sample

pytestmark = pytest.mark.network


@pytest.fixture(autouse=True)
def _anatomy(mni_head, pydeface_head):
    """Every test here needs the training heads (skips when they cannot be had)."""


def test_same_seed_same_case_other_seed_other_case():
    a, b = simulate_case(5, resolution_mm=3.0), simulate_case(5, resolution_mm=3.0)
    assert a.kind == b.kind and a.protocol.name == b.protocol.name and a.labels == b.labels
    for sa, sb in zip(a.slices, b.slices):
        np.testing.assert_array_equal(sa.pixels, sb.pixels)
    for key in a.planes:
        np.testing.assert_array_equal(a.planes[key].normal, b.planes[key].normal)
    c = simulate_case(6, resolution_mm=3.0)
    assert c.protocol != a.protocol or not np.array_equal(c.slices[0].pixels, a.slices[0].pixels)


def test_head_of_names_the_head_a_case_is_made_from():
    """`head_of` tells which head an individual comes from without simulating it (the
    tuning scripts group localizers by head), as `simulate_case` picks it."""
    heads = ("mni", "pydeface")
    picked = [head_of(seed, heads) for seed in range(10)]
    assert set(picked) == set(heads)  # both occur in ten seeds
    for seed in (picked.index("mni"), picked.index("pydeface")):
        assert simulate_case(seed, kind="usable", heads=heads, resolution_mm=3.0).head == picked[seed]


@pytest.mark.parametrize("protocol", ["three_plane", "separate_stacks", "scout_3d"])
def test_protocols_follow_the_accepted_ranges(protocol):
    for seed in range(3):
        case = simulate_case(seed, protocol=protocol, kind="usable", resolution_mm=3.0)
        stacks = case.protocol.stacks
        if protocol == "scout_3d":
            assert len(stacks) == 1 and stacks[0].thickness == stacks[0].spacing  # contiguous
            assert 1.5 <= stacks[0].thickness <= 4.0
        else:
            assert {s.orientation for s in stacks} == {"sagittal", "coronal", "axial"}
            assert all(3 <= s.n_slices <= 11 and 5 <= s.thickness <= 10 for s in stacks)
            assert len(case.protocol.series_descriptions) == (1 if protocol == "three_plane" else 3)
        # rendered no finer than 3 mm, a dense 3D scout has fewer, thicker slices
        assert len(case.slices) == len(case.labels) <= sum(s.n_slices for s in stacks)
        if protocol != "scout_3d":
            assert len(case.slices) == sum(s.n_slices for s in stacks)


def test_labels_of_unusable_kinds():
    assert set(simulate_case(1, kind="object", resolution_mm=3.0).labels) == {"irrelevant"}
    assert set(simulate_case(2, kind="noise", resolution_mm=3.0).labels) == {"irrelevant"}
    artifact = simulate_case(3, kind="artifact", resolution_mm=3.0)
    with_brain = [label for label, area in zip(artifact.labels, artifact.brain_mm2)
                  if area >= ANATOMY_MIN_BRAIN_MM2]
    assert with_brain.count("artifact") >= len(with_brain) // 2
    # an empty field of view shows no artifact that can be seen: irrelevant, not artifact
    assert all(label == "irrelevant" for label, area in zip(artifact.labels, artifact.brain_mm2)
               if area < ANATOMY_MIN_BRAIN_MM2)
    assert "irrelevant" in artifact.labels
    miss = simulate_case(4, kind="miss", resolution_mm=3.0).labels
    assert miss.count("irrelevant") >= len(miss) // 2
    usable = simulate_case(5, kind="usable", protocol="three_plane", resolution_mm=3.0)
    assert usable.labels.count("anatomy") >= len(usable.labels) // 2
    assert usable.planes and usable.usable


def test_truth_planes_follow_the_landmarks_in_scanner_space():
    case = simulate_case(8, kind="usable", resolution_mm=3.0)
    again = plane_catalogue(case.landmarks)
    for key, plane in case.planes.items():
        np.testing.assert_allclose(plane.centre, again[key].centre)
    # AC lies on the ACPC plane and (nearly) on the MSP, in scanner coordinates
    ac = case.landmarks["AFID:AC"]
    assert abs(case.planes["ACPC"].signed_distance(ac)) < 1e-6
    assert abs(case.planes["MSP"].signed_distance(ac)) < 3.0


def test_written_case_is_valid_dicom_with_truth(tmp_path):
    case = simulate_case(21, protocol="separate_stacks", kind="usable")
    paths = case.write(tmp_path)
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert len(truth["images"]) == len(paths) == len(case.slices)
    assert set(truth["planes"]) == set(case.planes)
    datasets = [pydicom.dcmread(p) for p in paths]
    assert len({ds.SeriesInstanceUID for ds in datasets}) == 3
    assert len({ds.StudyInstanceUID for ds in datasets}) == 1
    assert len({ds.FrameOfReferenceUID for ds in datasets}) == 1
    assert all("LOCALIZER" in ds.ImageType and ds.BitsAllocated == 16 for ds in datasets)
    assert [d.SOPInstanceUID for d in datasets] == [i["sop_instance_uid"] for i in truth["images"]]
    loaded = load_localizer(paths)
    assert len(loaded.slices) == len(paths) and loaded.problems == []
    if dcmtk("dcmftest"):
        result = run_tool("dcmftest", *paths)
        assert result.returncode == 0 and result.stdout.count("yes:") == len(paths), result.stdout


def test_fast_path_sample():
    sample = training_sample(31, kind="usable", protocol="three_plane")
    assert sample.volume.tensor().shape == (*GRID_SHAPE, 2)
    assert sample.brain.shape == GRID_SHAPE and 0 <= sample.brain.min() <= sample.brain.max() <= 1
    assert sample.brain.sum() * 4.0**3 / 1000 > 500  # more than 500 ml of brain in view
    assert sample.images.shape[1:] == (64, 64) and len(sample.images) == len(sample.labels)
    assert set(sample.labels.tolist()) <= set(range(len(LABELS)))
    assert sample.usable and "MSP" in sample.planes
    # coverage is where the slices are: well below the whole grid for a three-plane scout
    assert 0.05 < sample.volume.coverage.mean() < 0.6


def test_fast_path_agrees_with_the_dicom_path(tmp_path):
    """The network input made without DICOM matches what the node's loader makes from
    the same case written as DICOM (rendering resolution and noise differ only)."""
    from isp_node.pipeline.volume import Grid, localizer_centre, resample
    from isp_node.simulation.tensors import GRID_SPACING_MM, RENDER_FRACTION

    full = simulate_case(3, kind="usable", protocol="three_plane")
    loaded = load_localizer(full.write(tmp_path)).slices
    grid = Grid.centred(localizer_centre(loaded), GRID_SHAPE, GRID_SPACING_MM)
    reference = resample(loaded, grid)
    fast = simulate_case(3, kind="usable", protocol="three_plane",
                         resolution_mm=RENDER_FRACTION * GRID_SPACING_MM)
    volume = resample(fast.slices, grid)
    np.testing.assert_allclose(volume.coverage, reference.coverage, atol=1e-3)  # DICOM rounding
    tissue = (reference.coverage > 0.5) & (reference.image > 0.1)
    difference = np.abs(volume.image[tissue] - reference.image[tissue]).mean()
    assert difference < 0.10 * reference.image[tissue].mean()


def test_brain_target_searched_in_a_box_equals_the_whole_grid():
    from isp_node.pipeline.volume import Grid, localizer_centre
    from isp_node.simulation.tensors import GRID_SPACING_MM, brain_target

    for seed, kind in ((5, "usable"), (8, "usable"), (3, "miss")):
        case = simulate_case(seed, kind=kind, resolution_mm=GRID_SPACING_MM)
        grid = Grid.centred(localizer_centre(case.slices), GRID_SHAPE, GRID_SPACING_MM)
        whole = case.subject.brain(grid.points(), stride=2).reshape(GRID_SHAPE)
        np.testing.assert_allclose(brain_target(case.subject, grid), whole, atol=1e-6)


def test_blurred_individuals_keep_their_anatomy_and_labels():
    """The blur augmentation (`max_blur_mm`) smooths the images of half of the individuals,
    by a sigma drawn per individual in 0.5 mm steps up to the maximum; the anatomy, the
    labels and the brain each image shows stay those of the sharp individual."""
    blurs = np.array([anatomy_blur_mm(seed, 3.0) for seed in range(400)])
    assert 0.4 < np.mean(blurs == 0) < 0.6 and blurs.max() == 3.0
    np.testing.assert_array_equal(blurs * 2, np.round(blurs * 2))
    assert anatomy_blur_mm(7, 0.0) == 0.0 and anatomy_blur_mm(7, 3.0) == anatomy_blur_mm(7, 3.0)
    seed = next(s for s in range(400) if blurs[s] == 3.0)
    sharp, blurred = (simulate_case(seed, resolution_mm=3.0, kind="usable", max_blur_mm=m)
                      for m in (0.0, 3.0))
    assert blurred.labels == sharp.labels and blurred.brain_mm2 == sharp.brain_mm2
    np.testing.assert_array_equal(blurred.pose, sharp.pose)

    def sharpness(case):
        return np.mean([np.abs(np.diff(s.pixels, axis=1)).mean() for s in case.slices])

    assert sharpness(blurred) < 0.9 * sharpness(sharp)
