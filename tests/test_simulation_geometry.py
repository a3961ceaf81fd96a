"""Simulated images put anatomy where their DICOM geometry says it is."""

import numpy as np

from isp_node.pipeline.loader import load_localizer
from isp_node.simulation.acquisition import Subject, on_lattice, render, slice_geometry
from isp_node.geometry.rotations import head_rotation
from isp_node.simulation.dicom_series import StudyInfo, mr_image, write_datasets
from isp_node.simulation.protocols import ORIENTATIONS, StackSpec


def _sphere_volume(centre_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 1 mm template volume, zero but for a bright 3 mm-radius ball at `centre_mm`."""
    affine = np.eye(4)
    affine[:3, 3] = -64.0
    i, j, k = np.meshgrid(*[np.arange(128)] * 3, indexing="ij")
    points = np.stack([i, j, k], axis=-1) - 64.0
    ball = np.linalg.norm(points - centre_mm, axis=-1) <= 3.0
    return (ball * 1000.0).astype(np.float32), affine


def test_round_trip_simulate_dicom_loader(tmp_path):
    landmark = np.array([12.0, -20.0, 7.0])  # template LPS mm
    volume, affine = _sphere_volume(landmark)
    pose = np.eye(4)
    pose[:3, :3] = head_rotation(14.0, -6.0, 9.0)
    pose[:3, 3] = [5.0, -30.0, 22.0]
    subject = Subject(volume=volume, affine=affine, pose=pose)
    target = pose[:3, :3] @ landmark + pose[:3, 3]  # where the ball is in the scanner

    study = StudyInfo(seed=1, patient_name="Ball", patient_id="BALL")
    datasets = []
    for series, (name, (row, col)) in enumerate(ORIENTATIONS.items()):
        stack = StackSpec(name, row, col, target, 1, 2.0, 2.0, (96, 96), (1.25, 1.25), series, 0)
        geometry = slice_geometry(stack, 0)
        pixels = render(subject, [geometry], np.array([0.0]), np.array([1.0]))[0]
        geometry = geometry.__class__(pixels, geometry.position, geometry.row, geometry.col,
                                      geometry.spacing, geometry.thickness)
        datasets.append(mr_image(geometry, study, series, "ball loc", 1))
    files = write_datasets(datasets, tmp_path)

    for s in load_localizer(files).slices:
        weights = s.pixels / s.pixels.sum()
        rr, cc = np.meshgrid(*map(np.arange, s.shape), indexing="ij")
        centroid = np.array([(weights * rr).sum(), (weights * cc).sum()])
        found = s.pixel_to_patient(centroid)
        # the ball's centre, seen in each plane through it, is where the truth puts it
        assert np.linalg.norm(found - target) < 0.5, (s.orientation, found, target)


def test_maps_on_a_lattice_of_every_other_node_match_the_map():
    """An affine map is reproduced exactly from every other node of a lattice, and a stack
    of slice lattices (a batch) gives what each slice gives on its own."""
    def affine_map(points):
        return np.column_stack([points @ np.array([0.3, -1.2, 2.0]) + 7.0, points[:, 2] * 0.5])

    stack = StackSpec("sag", np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, -1.0]),
                      np.array([3.0, -8.0, 11.0]), 4, 5.0, 6.0, (21, 18), (4.0, 4.0), 0, 0)
    rr, cc = np.meshgrid(np.arange(21), np.arange(18), indexing="ij")
    points = np.stack([slice_geometry(stack, i).pixel_to_patient(np.stack([rr, cc], axis=-1))
                       for i in range(stack.n_slices)])
    together = on_lattice(affine_map, points, 2, batch_axes=1)
    np.testing.assert_allclose(together, affine_map(points.reshape(-1, 3)), atol=1e-9)
    alone = np.concatenate([on_lattice(np.sin, p, 2) for p in points])
    np.testing.assert_array_equal(on_lattice(np.sin, points, 2, batch_axes=1), alone)
