"""The fast path: network-ready inputs and targets straight from a simulated head.

No DICOM is written: the simulated slices go through the same resampling as
the node's loader (`pipeline.volume`, `pipeline.image_input`), so a network
trained on these tensors sees what it will see in service. Slices are rendered
no finer than 3/4 of the grid spacing, detail the resampling would blur away.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from isp_node.cascade.brain import brain_summary
from isp_node.cascade.orientation import (
    COMMISSURE_SPACING_MM, FINE_LANDMARKS, FINE_SPACING_MM, commissure_grid, fine_grid,
    head_frame_transform, orientation_grid)
from isp_node.geometry import Plane
from isp_node.geometry.planes import transform_plane
from isp_node.geometry.rotations import head_rotation
from isp_node.pipeline.image_input import iq_inputs
from isp_node.pipeline.volume import Grid, LocalizerStacks, LocalizerVolume, localizer_centre, resample
from isp_node.simulation.acquisition import Subject
from isp_node.simulation.cases import LABELS, simulate_case

GRID_SHAPE = (64, 64, 64)
GRID_SPACING_MM = 4.0
RENDER_FRACTION = 1.0  # render slices at the grid spacing: finer detail is blurred away
ORIENTATION_MIN_BRAIN_ML = 300.0  # less brain in view: nothing to plan on
ORIENTATION_STREAM = 4  # random stream of the orientation grid's jitter
CENTRE_JITTER_MM = 4.0
SIZE_JITTER = 0.05
FINE_STREAM = 5  # random stream of the fine grid's jitter
FINE_JITTER_MM = 4.0  # the fine grid's centre is off the true AC-PC midpoint by about this (per axis)
# the head frame the fine grid is turned into is off the true one by about this (pitch, roll,
# yaw; degrees, SD): the first stage's AC-PC pitch and its MSP's error
FRAME_JITTER_DEG = (4.0, 2.0, 2.0)
# the commissure look's grid is centred on the AC-PC midpoint of the fine stage's points and
# turned by its head frame, off by about this (mm per axis; pitch, roll, yaw in degrees, SD)
COMMISSURE_STREAM = 11
COMMISSURE_JITTER_MM = 2.0
COMMISSURE_FRAME_JITTER_DEG = (3.0, 2.0, 2.0)


@dataclass(frozen=True)
class TrainingSample:
    """Inputs and targets of one simulated localizer."""

    seed: int
    volume: LocalizerVolume  # Coverage-Net input, tensor() is (X, Y, Z, 2)
    orientation: LocalizerVolume | None  # Orientation-Net input on the brain-centred grid
    brain: np.ndarray  # (X, Y, Z) float32 brain membership: Coverage-Net target
    images: np.ndarray  # (n_images, 64, 64) float32: LocalizerIQ-Net inputs
    labels: np.ndarray  # (n_images,) int: index into LABELS
    usable: bool
    kind: str
    orientations: list[str]  # of each image
    brain_mm2: np.ndarray  # (n_images,) brain area each image shows
    image_frames: np.ndarray  # (n_images, 11) each image's frame in the patient (`ImageSlice.frame`)
    planes: dict[str, Plane]  # scanner LPS
    landmarks: dict[str, np.ndarray]  # scanner LPS
    pose: np.ndarray  # 4x4 head -> scanner


def training_sample(seed: int, grid_shape: tuple[int, int, int] = GRID_SHAPE,
                    spacing_mm: float = GRID_SPACING_MM, full_resolution: bool = False,
                    **case_options) -> TrainingSample:
    """Simulate one case and turn it into network inputs and targets; rendered no finer than
    the grid needs, or (`full_resolution`) at the protocol's own pixel size, as a scanner
    sends it (about five times slower: the images' noise grain is then the node's own)."""
    case = simulate_case(seed, resolution_mm=None if full_resolution else RENDER_FRACTION * spacing_mm,
                         **case_options)
    grid = Grid.centred(localizer_centre(case.slices), grid_shape, spacing_mm)
    volume = resample(case.slices, grid)
    # the brain the images show: none in a noise-only localizer, whatever head lay in the coil
    brain = brain_target(case.subject, grid) if max(case.brain_mm2, default=0.0) > 0 else \
        np.zeros(grid.shape, np.float32)
    orientation = None
    summary = brain_summary(brain, grid)
    if summary["volume_ml"] >= ORIENTATION_MIN_BRAIN_ML:
        # centred and scaled by the true brain, off by what Coverage-Net may get wrong
        rng = np.random.default_rng([seed, ORIENTATION_STREAM])
        size = float(np.max(np.subtract(summary["high_lps"], summary["low_lps"])))
        orientation = resample(case.slices, orientation_grid(
            np.asarray(summary["centre_lps"]) + rng.normal(0, CENTRE_JITTER_MM, 3),
            size * float(np.exp(rng.normal(0, SIZE_JITTER)))))
    return TrainingSample(
        seed=seed, volume=volume, orientation=orientation, brain=brain.astype(np.float32),
        images=iq_inputs(case.slices),
        labels=np.array([LABELS.index(label) for label in case.labels]),
        usable=case.usable, kind=case.kind, orientations=[s.orientation for s in case.slices],
        brain_mm2=np.array(case.brain_mm2, np.float32),
        image_frames=np.array([s.frame for s in case.slices], np.float32), planes=case.planes,
        landmarks=case.landmarks, pose=case.pose,
    )


def fine_sample(seed: int, head_frame: bool = False, commissures: bool = False,
                **case_options) -> tuple[LocalizerVolume, dict[str, Plane], np.ndarray]:
    """The fine stage's input, the true planes and the true `FINE_LANDMARKS` (K, 3) of one
    simulated localizer: slices rendered at the fine grid's spacing, resampled onto the fine
    grid centred on the true AC-PC midpoint, off by about what the first stage may get wrong.
    With `head_frame` the grid is turned into the head frame
    (`orientation.head_frame_transform`) of the true MSP and ACPC turned by about the first
    stage's error, and planes and landmarks are given in that frame. With `commissures`, the
    commissure look's input instead (`orientation.commissure_grid`, always in the head frame,
    off by about the fine stage's error)."""
    spacing, stream, jitter_mm, jitter_deg, grid = (
        (COMMISSURE_SPACING_MM, COMMISSURE_STREAM, COMMISSURE_JITTER_MM, COMMISSURE_FRAME_JITTER_DEG,
         commissure_grid) if commissures else
        (FINE_SPACING_MM, FINE_STREAM, FINE_JITTER_MM, FRAME_JITTER_DEG, fine_grid))
    head_frame = head_frame or commissures
    case = simulate_case(seed, resolution_mm=RENDER_FRACTION * spacing, **case_options)
    rng = np.random.default_rng([seed, stream])
    centre = case.planes["ACPC"].centre + rng.normal(0, jitter_mm, 3)
    planes, to_head = case.planes, None
    landmarks = np.stack([case.landmarks[name] for name in FINE_LANDMARKS])
    if head_frame:
        upright = head_frame_transform(case.planes["MSP"].normal, case.planes["ACPC"].normal,
                                       centre)[:3, :3]
        error = upright.T @ head_rotation(*rng.normal(0, jitter_deg))  # about the head's axes
        to_head = head_frame_transform(error[:, 0], error[:, 2], centre)
        planes = {key: transform_plane(plane, to_head) for key, plane in planes.items()}
        landmarks = landmarks @ to_head[:3, :3].T + to_head[:3, 3]
    return LocalizerStacks(case.slices).resample(grid(centre), to_head), planes, landmarks


def brain_target(subject: Subject, grid: Grid, coarse: int = 4) -> np.ndarray:
    """Brain membership (X, Y, Z) on `grid`. Found first on every `coarse`-th voxel, then
    evaluated in full only in the box around those hits widened by one coarse step: the
    brain is one connected organ, so nothing of it lies beyond that box."""
    points = grid.points()
    out = np.zeros(grid.shape, np.float32)
    hits = np.argwhere(subject.brain(points[::coarse, ::coarse, ::coarse]).reshape(
        tuple(-(-n // coarse) for n in grid.shape)) > 0)
    if len(hits) == 0:
        return out
    low = np.maximum((hits.min(axis=0) - 1) * coarse, 0)
    high = np.minimum((hits.max(axis=0) + 1) * coarse + 1, grid.shape)
    box = tuple(slice(lo, hi) for lo, hi in zip(low, high))
    out[box] = subject.brain(points[box], stride=2).reshape(out[box].shape)
    return out


def training_samples(first_seed: int, count: int, views: int = 1,
                     **options) -> Iterator[TrainingSample]:
    """`count` samples with consecutive seeds (deterministic, resumable by seed); each
    individual is imaged `views` times (other pose, protocol, contrast, artifacts)."""
    for seed in range(first_seed, first_seed + count):
        yield training_sample(seed, anatomy_seed=seed - seed % views, **options)
