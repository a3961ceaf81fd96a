"""`isp-node evaluate`: the pass through DICOM (with the networks shipped in models/) and
Coverage-Net's metrics on known maps."""

import numpy as np
import pytest

from isp_node.cascade.evaluation import (
    brain_plane_coverage, coverage_metrics, evaluate_through_dicom)
from isp_node.cascade.planner import Cascade


def test_through_dicom_counts_every_image_once_by_kind():
    """The per-kind tallies add up to the whole: every image read back from the DICOM files
    is scored once, under its localizer's protocol and contrast or its unusable kind."""
    result = evaluate_through_dicom(Cascade(), range(3_000_000, 3_000_004), "mni",
                                    unusable_fraction=0.5, progress=False)
    by_kind = result["accuracy_by_kind"]
    assert sum(k["images"] for k in by_kind.values()) == result["images"] > 0
    right = sum(k["images"] * k["accuracy"] for k in by_kind.values())
    assert abs(right / result["images"] - result["accuracy"]) < 1e-3
    usable = [kind for kind in by_kind if not kind.startswith("unusable: ")]
    assert usable and all(len(kind.split()) == 2 for kind in usable)  # "protocol contrast"
    assert sum(map(sum, result["confusion_rows_truth_cols_predicted"])) == result["images"]


def _box(shape: tuple[int, int, int], low: tuple[int, int, int], high: tuple[int, int, int]):
    volume = np.zeros(shape, np.float32)
    volume[tuple(slice(a, b) for a, b in zip(low, high))] = 1.0
    return volume


def test_coverage_metrics_extent_errors_against_known_boxes():
    """A map one voxel (4 mm) too low at the bottom is 4 mm off in z, low end -4 mm LPS;
    an exact one is 0; a map without brain counts as infinitely off and not in the ends.
    The map's extent is read at `MAP_EXTENT_THRESHOLD`, the truth's at 0.5: a map of 0s and
    1s so reaches `reach` further at each end than the same box of truth."""
    from isp_node.cascade.brain import MAP_EXTENT_THRESHOLD

    reach = 4.0 * (0.5 - MAP_EXTENT_THRESHOLD)
    truth = _box((16, 16, 16), (4, 4, 4), (12, 12, 12))
    lower = _box((16, 16, 16), (4, 4, 3), (12, 12, 12))
    result = coverage_metrics(np.stack([truth, lower, np.zeros_like(truth)]),
                              np.stack([truth, truth, truth]), np.array([True, True, False]))
    assert result["cases"] == 3 and result["usable_cases"] == 2
    assert result["dice_min"] == 0.0 and abs(result["dice_median"] - 2 * 512 / (512 + 576)) < 1e-6
    assert np.allclose(result["extent_error_mm_median_usable"], [reach, reach, 2.0 + reach])
    assert np.allclose(result["extent_error_mm_median"], [reach, reach, 4.0 + reach])
    assert np.allclose(result["end_error_mm_median_usable"]["low"],
                       [-reach, -reach, -2.0 - reach])
    assert np.allclose(result["end_error_mm_median_usable"]["high"], [reach, reach, reach])
    assert result["extent_within_3mm"] == 1 / 3
    assert result["size_slope_usable"] == [None, None, None]  # one true size: no slope


def test_coverage_metrics_size_slope():
    """Maps that draw every brain 8 voxels tall in z whatever its true height have slope 0
    there; exact ones in x and y slope 1."""
    shape = (16, 16, 24)
    truth = np.stack([_box(shape, (4, 4, 4), (8 + h, 8 + h, 8 + 2 * h)) for h in range(4)])
    drawn = np.stack([_box(shape, (4, 4, 4), (8 + h, 8 + h, 12)) for h in range(4)])
    slopes = coverage_metrics(drawn, truth, np.ones(4, bool))["size_slope_usable"]
    assert np.allclose(slopes, [1.0, 1.0, 0.0], atol=1e-9)


def test_drawn_without_brain_measures_the_maps_of_empty_localizers():
    """Three maps of localizers showing no brain: one empty, one drawing a 10-voxel cube
    (1000 voxels of 64 mm3 = 64 ml), one a 20-voxel cube (512 ml) with a voxel just under
    the threshold apart."""
    from isp_node.cascade.evaluation import drawn_without_brain

    maps = np.zeros((3, 32, 32, 32), np.float32)
    maps[1, :10, :10, :10] = 0.9
    maps[2, 5:25, 5:25, 5:25] = 0.6
    maps[2, 0, 0, 0] = 0.49
    result = drawn_without_brain(maps)
    assert result["no_brain_cases"] == 3
    assert result["no_brain_drawn_ml_median"] == pytest.approx(64.0)
    assert result["no_brain_drawn_ml_max"] == pytest.approx(512.0)
    assert result["no_brain_drawn_over_min_ml"] == pytest.approx(1 / 3)
    assert drawn_without_brain(maps[:0])["no_brain_drawn_ml_median"] is None


def test_brain_plane_coverage_counts_the_true_brain_outside_the_sized_planes():
    """A map 8 mm short at the top and bottom of a 96 mm cube of brain: an AC-PC slab sized to
    it with no allowance cuts two 4 mm layers of brain at each end, the sagittal one (sized
    across, where the map is right) cuts none; a 10 mm allowance cuts neither, for a slice
    more than the true brain needs."""
    from isp_node.geometry import PLANE_KEYS
    from isp_node.simulation.tensors import GRID_SHAPE

    truth = _box(GRID_SHAPE, (20, 20, 20), (44, 44, 44))
    drawn = _box(GRID_SHAPE, (20, 20, 22), (44, 44, 42))
    planes = np.full((1, len(PLANE_KEYS), 2, 3), np.nan)
    centre = np.full(3, 31.5 * 4)
    planes[0, PLANE_KEYS.index("MSP")] = [centre, [1, 0, 0]]
    planes[0, PLANE_KEYS.index("ACPC")] = [centre, [0, 0, 1]]
    tight = brain_plane_coverage(drawn[None], truth[None], np.zeros((1, 3)), planes, 0.0)
    assert tight["ACPC"]["cut_share"] == 1.0 and tight["MSP"]["cut_share"] == 0.0
    assert tight["ACPC"]["outside_ml_max"] == pytest.approx(4 * 24 * 24 * 0.064)
    assert tight["ACPC"]["extra_slices_median"] == -3  # 16 slices of 5 mm where 19 are needed
    generous = brain_plane_coverage(drawn[None], truth[None], np.zeros((1, 3)), planes, 10.0)
    assert generous["ACPC"]["cut_share"] == generous["MSP"]["cut_share"] == 0.0
    assert generous["ACPC"]["extra_slices_median"] == 1
