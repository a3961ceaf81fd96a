"""Training and evaluation data for the cascade: shards of simulated samples on disk.

Simulation costs ~0.2 s a case, a training step ~0.3 s, so samples are made
once, in parallel processes, and stored as compressed shards that training
reads many times. A shard holds `SHARD_SIZE` consecutive seeds; a shard that
exists is never made again, so an interrupted generation resumes.
"""

import multiprocessing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from isp_node.cascade.orientation import ORIENTATION_SHAPE, plane_array

SHARD_SIZE = 25
# shards of another format are made again (9: images without brain are irrelevant; 10: each
# image's frame in the patient, for the brain Coverage-Net finds in it; 11: ROBEX's brain for
# every head; 12: no brain to draw where no image shows one, as in a noise-only localizer; 13:
# a heavy artifact is never wrap-around alone, which shows no artifact over the brain; 14: the
# fine stage's samples hold its landmarks, `orientation.FINE_LANDMARKS`; 15: Colin27's and S1's
# midline landmarks matched again at a finer scale, `docs/landmark_check.py`)
FORMAT = 15


@dataclass(frozen=True)
class DatasetSpec:
    """Which simulated cases a data set holds."""

    first_seed: int
    count: int
    heads: tuple[str, ...] = ("mni",)
    unusable_fraction: float = 0.35
    views: int = 1
    full_resolution: bool = False  # images rendered as the scanner sends them, not the fast path's
    fine: bool = False  # the fine stage's inputs only (`tensors.fine_sample`)
    head_frame: bool = False  # fine: the grid turned into the (nearly true) head frame
    commissures: bool = False  # fine: the commissure look's inputs (`tensors.fine_sample`)
    max_blur_mm: float = 0.0  # some individuals' images blurred up to this (`cases.anatomy_blur_mm`)
    brain_swell: float = 0.0  # each individual's brain scaled against its skull (`cases.individual`)

    def shard_seeds(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.count, SHARD_SIZE))


def _make_shard(args: tuple[Path, int, int, DatasetSpec]) -> Path:
    from isp_node.simulation.tensors import training_sample

    path, first, count, spec = args
    if spec.fine:
        return _make_fine_shard(path, first, count, spec)
    volumes, brains, images, labels, owners, usable, origins, planes, seeds = ([] for _ in range(9))
    kinds, orientations, areas, frames, orientation_volumes, orientation_grids = ([] for _ in range(6))
    for seed in range(first, first + count):
        s = training_sample(seed, heads=spec.heads, unusable_fraction=spec.unusable_fraction,
                            anatomy_seed=seed - seed % spec.views,
                            full_resolution=spec.full_resolution, max_blur_mm=spec.max_blur_mm,
                            brain_swell=spec.brain_swell)
        volumes.append(s.volume.tensor().astype(np.float16))
        brains.append(np.round(s.brain * 255).astype(np.uint8))
        images.append(s.images.astype(np.float16))
        labels.append(s.labels.astype(np.int8))
        owners.append(np.full(len(s.labels), len(seeds), np.int32))
        usable.append(s.usable)
        origins.append(s.volume.grid.origin.astype(np.float32))
        planes.append(plane_array(s.planes))
        seeds.append(seed)
        kinds.append(s.kind)
        orientations.extend(s.orientations)
        areas.append(s.brain_mm2)
        frames.append(s.image_frames)
        if s.orientation is None:  # no brain to plan on: no Orientation-Net input
            orientation_volumes.append(np.zeros((*ORIENTATION_SHAPE, 2), np.float16))
            orientation_grids.append(np.full(4, np.nan, np.float32))
        else:
            orientation_volumes.append(s.orientation.tensor().astype(np.float16))
            grid = s.orientation.grid
            orientation_grids.append(np.append(grid.origin, grid.spacing).astype(np.float32))
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, volumes=np.stack(volumes), brains=np.stack(brains),
                        images=np.concatenate(images), labels=np.concatenate(labels),
                        owners=np.concatenate(owners), usable=np.array(usable),
                        origins=np.stack(origins), planes=np.stack(planes), seeds=np.array(seeds),
                        kinds=np.array(kinds), orientations=np.array(orientations),
                        brain_mm2=np.concatenate(areas), image_frames=np.concatenate(frames),
                        orientation_volumes=np.stack(orientation_volumes),
                        orientation_grids=np.stack(orientation_grids))
    tmp.rename(path)
    return path


def _make_fine_shard(path: Path, first: int, count: int, spec: DatasetSpec) -> Path:
    from isp_node.simulation.tensors import fine_sample

    volumes, grids, planes, landmarks = [], [], [], []
    for seed in range(first, first + count):
        volume, truth, points = fine_sample(seed, head_frame=spec.head_frame,
                                            commissures=spec.commissures, heads=spec.heads,
                                            unusable_fraction=spec.unusable_fraction,
                                            anatomy_seed=seed - seed % spec.views)
        volumes.append(volume.tensor().astype(np.float16))
        grids.append(np.append(volume.grid.origin, volume.grid.spacing).astype(np.float32))
        planes.append(plane_array(truth))
        landmarks.append(points.astype(np.float32))
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, fine_volumes=np.stack(volumes), fine_grids=np.stack(grids),
                        planes=np.stack(planes), landmarks=np.stack(landmarks),
                        seeds=np.arange(first, first + count))
    tmp.rename(path)
    return path


def make_dataset(directory: Path, spec: DatasetSpec, processes: int = 2,
                 progress: bool = True) -> list[Path]:
    """Make the missing shards of `spec` in `directory`; return all shard paths."""
    from tqdm import tqdm

    directory.mkdir(parents=True, exist_ok=True)
    for leftover in directory.glob("*.tmp.npz"):  # from an interrupted run
        leftover.unlink()
    jobs = []
    paths = []
    for first in spec.shard_seeds():
        count = min(SHARD_SIZE, spec.first_seed + spec.count - first)
        path = directory / f"shard_v{FORMAT}_{first:08d}_{count}.npz"
        paths.append(path)
        if not path.exists():
            jobs.append((path, first, count, spec))
    if jobs:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            for _ in tqdm(pool.imap_unordered(_make_shard, jobs), total=len(jobs),
                          desc=f"simulating {directory.name}", unit="shard", disable=not progress):
                pass
    return paths


# the shard fields with one entry per image (the others have one per case)
IMAGE_FIELDS = ("images", "labels", "owners", "orientations", "brain_mm2", "image_frames")


def per_case(values: np.ndarray, owners: np.ndarray, cases: np.ndarray) -> list[np.ndarray]:
    """A per-image field of `load_shards`, split into one array for each of `cases`."""
    return [values[owners == case] for case in cases]


def load_shards(paths: list[Path], fields: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Concatenate `fields` of several shards (per-image fields re-indexed per case)."""
    out: dict[str, list] = {f: [] for f in fields}
    cases = 0
    for path in paths:
        with np.load(path) as shard:
            for f in fields:
                values = shard[f]
                out[f].append(values + cases if f == "owners" else values)
            cases += len(shard["seeds"])
    return {f: np.concatenate(v) for f, v in out.items()}
