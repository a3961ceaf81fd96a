"""Reading localizer series from DICOM and resampling them onto the network grid."""

import copy
from dataclasses import replace

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from scipy import ndimage

from isp_node.pipeline.loader import LocalizerError, load_localizer
from isp_node.geometry.rotations import head_rotation, rigid
from isp_node.pipeline.slices import ImageSlice
from isp_node.pipeline.volume import Grid, LocalizerStacks, parallel_groups, resample
from isp_node.simulation.phantom import phantom_localizer, write_series


@pytest.fixture
def phantom_files(tmp_path):
    return write_series(phantom_localizer(seed=4), tmp_path / "loc")


def test_reads_three_plane_localizer(phantom_files):
    loaded = load_localizer(phantom_files)
    assert loaded.problems == []
    assert [s.orientation for s in loaded.slices] == ["sagittal"] * 3 + ["coronal"] * 3 + ["axial"] * 3
    assert len(parallel_groups(loaded.slices)) == 3
    first = loaded.slices[0]
    ds = pydicom.dcmread(phantom_files[0])
    np.testing.assert_allclose(first.position, [float(v) for v in ds.ImagePositionPatient])
    np.testing.assert_allclose(first.pixel_to_patient(np.array([0, 0])), first.position)
    rc, d = first.patient_to_pixel(first.pixel_to_patient(np.array([[3.0, 7.0]])))
    np.testing.assert_allclose(rc, [[3.0, 7.0]], atol=1e-9)
    np.testing.assert_allclose(d, [0.0], atol=1e-9)


def test_bad_files_are_reported_and_skipped(phantom_files, tmp_path):
    ds = pydicom.dcmread(phantom_files[0])
    del ds.ImageOrientationPatient
    ds.save_as(phantom_files[0])
    ct = pydicom.dcmread(phantom_files[1])
    ct.Modality = "CT"
    ct.save_as(phantom_files[1])
    broken = pydicom.dcmread(phantom_files[2])
    broken.PixelData = broken.PixelData[:100]
    broken.save_as(phantom_files[2])
    loaded = load_localizer(phantom_files)
    assert len(loaded.slices) == 6
    text = " ".join(loaded.problems)
    assert "no patient geometry" in text and "CT, not MR" in text and len(loaded.problems) == 3


def test_unplannable_series_raise_with_reason(phantom_files, tmp_path):
    with pytest.raises(LocalizerError, match="only one localizer image"):
        load_localizer(phantom_files[:1])
    garbage = tmp_path / "garbage.dcm"
    garbage.write_bytes(b"not dicom at all")
    with pytest.raises(LocalizerError, match="no usable localizer image"):
        load_localizer([garbage])


def test_enhanced_mr_frames_become_slices(phantom_files, tmp_path):
    singles = [pydicom.dcmread(p) for p in phantom_files[:3]]
    ds = copy.deepcopy(singles[0])
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"
    ds.NumberOfFrames = 3
    ds.PixelData = b"".join(s.PixelData for s in singles)
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = singles[0].PixelSpacing
    measures.SliceThickness = 8.0
    shared.PixelMeasuresSequence = Sequence([measures])
    orientation = Dataset()
    orientation.ImageOrientationPatient = singles[0].ImageOrientationPatient
    shared.PlaneOrientationSequence = Sequence([orientation])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for s in singles:
        frame, position = Dataset(), Dataset()
        position.ImagePositionPatient = s.ImagePositionPatient
        frame.PlanePositionSequence = Sequence([position])
        frames.append(frame)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
        delattr(ds, keyword)
    path = tmp_path / "enhanced.dcm"
    ds.save_as(path)
    loaded = load_localizer([path])
    assert len(loaded.slices) == 3
    for frame, single in zip(loaded.slices, singles):
        np.testing.assert_allclose(frame.position, [float(v) for v in single.ImagePositionPatient])
        np.testing.assert_array_equal(frame.pixels, single.pixel_array)


def _slab(offset: float, thickness: float, value: float) -> ImageSlice:
    """A 40x40 axial slice of 2 mm pixels centred on the z axis at height `offset`."""
    pixels = np.full((40, 40), value, np.float32)
    return ImageSlice(pixels, np.array([-39.0, -39.0, offset]), np.array([1.0, 0, 0]),
                      np.array([0, 1.0, 0]), (2.0, 2.0), thickness)


def test_resample_weights_by_slab_overlap_and_leaves_gaps_empty():
    grid = Grid.centred(np.zeros(3), (5, 5, 11), 2.0)  # z from -10 to +10 mm
    volume = resample([_slab(-6.0, 4.0, 100.0), _slab(6.0, 4.0, 300.0)], grid)
    z = grid.origin[2] + 2.0 * np.arange(11)
    coverage = volume.coverage[2, 2]
    # voxels [z-1, z+1] inside the slabs [-8, -4] and [4, 8] are fully covered
    np.testing.assert_allclose(coverage[np.isin(z, [-6, 6])], 1.0)
    np.testing.assert_allclose(coverage[np.isin(z, [-8, -4, 4, 8])], 0.5)
    np.testing.assert_allclose(coverage[np.abs(z) <= 2], 0.0)  # the gap stays empty
    values = volume.image[2, 2] * 300.0  # normalised by the 99th percentile, 300
    np.testing.assert_allclose(values[z == -6], 100.0, rtol=1e-5)
    np.testing.assert_allclose(values[z == 6], 300.0, rtol=1e-5)
    assert volume.tensor().shape == (5, 5, 11, 2)


def test_grid_projection_is_the_dot_product_at_every_voxel():
    grid = Grid.centred(np.array([3.0, -7.0, 11.0]), (6, 5, 4), 4.0)
    origin, direction = np.array([1.0, 2.0, -3.0]), np.array([0.6, -0.48, 0.64])
    expected = ((grid.points() - origin) @ direction).ravel()
    np.testing.assert_allclose(grid.projection(origin, direction), expected, atol=1e-9)


def test_grid_squared_distance_is_that_of_every_voxel():
    grid = Grid.centred(np.array([3.0, -7.0, 11.0]), (6, 5, 4), 4.0)
    point = np.array([1.0, 2.0, -3.0])
    expected = ((grid.points() - point) ** 2).sum(axis=-1)
    np.testing.assert_allclose(grid.squared_distance(point), expected, atol=1e-9)


def test_resample_of_an_oblique_stack_matches_the_voxelwise_definition():
    """Every voxel takes the slices whose slab overlaps it, weighted by the overlap, each
    slice sampled where it lies (here the slices are also shifted in-plane)."""
    angle = np.radians(20)
    row, col = np.array([np.cos(angle), 0, np.sin(angle)]), np.array([0, 1.0, 0])
    normal = np.cross(row, col)
    rng = np.random.default_rng(5)
    slices = [ImageSlice(rng.uniform(50, 150, (30, 30)).astype(np.float32),
                         -30 * row - 30 * col + offset * normal + shift, row, col, (2.0, 2.0), 3.0)
              for offset, shift in ((-6.0, 0 * row), (-1.0, 5.0 * row - 3.0 * col), (4.0, 7.0 * col))]
    assert len(parallel_groups(slices)) == 1
    grid = Grid.centred(np.zeros(3), (9, 9, 9), 4.0)
    volume = resample(slices, grid)
    total, weight = np.zeros(grid.shape), np.zeros(grid.shape)
    for index in np.ndindex(grid.shape):
        p = grid.origin + 4.0 * np.array(index)
        for s in slices:
            rc, d = s.patient_to_pixel(p)
            if not (-0.5 < rc[0] < 29.5 and -0.5 < rc[1] < 29.5):
                continue
            w = max(0.0, min(1.5, d + 2) - max(-1.5, d - 2)) / 4.0
            if w > 0:
                total[index] += w * ndimage.map_coordinates(
                    s.antialiased(4.0), rc.reshape(2, 1), order=1, mode="nearest")[0]
                weight[index] += w
    np.testing.assert_allclose(volume.coverage, np.clip(weight, 0, 1), atol=1e-6)
    image = np.where(weight > 0, total / np.maximum(weight, 1e-9), 0.0)
    ratio = volume.image[weight > 0] / image[weight > 0]  # one intensity scale for the localizer
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-5)
    assert np.all(volume.image[weight == 0] == 0)


def test_grid_window_cuts_the_voxels_within_reach_of_a_point():
    grid = Grid.centred(np.zeros(3), (10, 10, 10), 2.0)  # voxel centres -9 .. 9 mm
    near, box = grid.window(np.array([0.0, -9.0, 20.0]), 3.0)
    assert box[:2] == (slice(3, 7), slice(0, 2))  # x -3 .. 3, y -9 .. -7
    assert near.shape == (4, 2, 0) and near.spacing == 2.0  # z: beyond the grid
    near, box = grid.window(np.array([0.5, -9.0, 8.0]), 3.0)
    assert near.shape == (3, 2, 3)  # x -1 .. 3, y -9 .. -7, z 5 .. 9
    np.testing.assert_allclose(near.points(), grid.points()[box])
    whole, box = grid.window(np.array([1.0, 1.0, 1.0]), 100.0)
    assert whole.shape == grid.shape and box == (slice(0, 10),) * 3


def test_a_fine_matrix_resamples_as_its_coarser_twin():
    """A 512 matrix is averaged in 2 x 2 blocks before the anti-aliasing (`PixelStack`): on
    a ramp in patient space, its volume and that of the same slices at 256 agree inside."""
    row, col = np.array([1.0, 0.0, 0.0]), np.array([0.0, np.cos(0.3), np.sin(0.3)])
    normal = np.cross(row, col)

    def stack(n: int, spacing: float) -> list[ImageSlice]:
        out = []
        for offset in (-8.0, 0.0, 8.0):
            corner = -(n - 1) / 2 * spacing * (row + col) + offset * normal
            s = ImageSlice(np.zeros((n, n), np.float32), corner, row, col, (spacing, spacing), 8.0)
            points = s.pixel_grid()
            out.append(ImageSlice((300 + points[..., 0] + 0.5 * points[..., 1] - 0.3 * points[..., 2])
                                  .astype(np.float32), corner, row, col, (spacing, spacing), 8.0))
        return out

    grid = Grid.centred(np.zeros(3), (24, 24, 8), 4.0)
    fine, coarse = resample(stack(512, 0.45), grid), resample(stack(256, 0.9), grid)
    inside = (fine.coverage > 0.99) & (np.abs(grid.points()[..., :2]) < 90).all(axis=-1)
    assert inside.sum() > 1000
    np.testing.assert_allclose(fine.coverage, coarse.coverage, atol=1e-6)
    np.testing.assert_allclose(fine.image[inside], coarse.image[inside], rtol=2e-5)


def test_a_turned_localizer_resamples_as_its_turned_slices_do():
    """`LocalizerStacks.resample(grid, moved)` turns the stacks' geometry, not their pixels:
    it gives what resampling slices moved one by one gives, and prepares each stack's pixels
    once per grid spacing however often it is turned."""
    rng = np.random.default_rng(8)
    axial = [ImageSlice(rng.uniform(50, 150, (30, 30)).astype(np.float32),
                        np.array([-29.0, -29.0, z]), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]),
                        (2.0, 2.0), 4.0) for z in (-8.0, 0.0, 8.0)]
    sagittal = [ImageSlice(rng.uniform(50, 150, (20, 20)).astype(np.float32),
                           np.array([x, -38.0, 38.0]), np.array([0, 1.0, 0]), np.array([0, 0, -1.0]),
                           (4.0, 4.0), 5.0) for x in (-5.0, 5.0)]
    moved = rigid(head_rotation(12.0, -20.0, 7.0), np.array([3.0, -4.0, 6.0]))
    turned = [replace(s, position=moved[:3, :3] @ s.position + moved[:3, 3], row=moved[:3, :3] @ s.row,
                      col=moved[:3, :3] @ s.col) for s in axial + sagittal]
    stacks = LocalizerStacks(axial + sagittal)
    for spacing in (4.0, 3.0, 4.0):
        grid = Grid.centred(np.array([1.0, 2.0, 3.0]), (12, 12, 12), spacing)
        expected = resample(turned, grid)
        volume = stacks.resample(grid, moved)
        assert expected.coverage.sum() > 100
        np.testing.assert_allclose(volume.coverage, expected.coverage, atol=1e-5)
        np.testing.assert_allclose(volume.image, expected.image, atol=1e-5)
    assert stacks.prepared(4.0) is stacks.prepared(4.0) and len(stacks.prepared(3.0)) == 2
    np.testing.assert_array_equal(stacks.resample(grid).image, resample(axial + sagittal, grid).image)
