"""Choose the probability at which the node reads the brain's extent off Coverage-Net's map.

    python docs/extent_threshold.py --models DIR [--data var/data]

The node reads the map's extent (`cascade.brain.MAP_EXTENT_THRESHOLD`; the planner sizes
the planes from it) where the map's profile along each axis crosses a threshold, and the
truth's where its occupancy crosses 0.5. A network that fades towards the brain's thin
ends draws brains short at 0.5. This measures the extent error at thresholds 0.25-0.5 on
the usable localizers of the four training heads' tuning set (seeds 6,000,000+, the one
`image_class_thresholds.py` uses, made into DATA/tune_iq on first use), never on the
evaluation sets: per threshold the median error per axis and the share of localizers
with every extent within 3 mm, over all heads and per head, with the ends' median signed
error (predicted minus true, LPS mm: low x / y / z, then high).

DIR holds Coverage-Net.
"""

import argparse
from pathlib import Path

import numpy as np

from image_class_thresholds import FAST, HEADS
from isp_node.cascade.brain import MAP_EXTENT_THRESHOLD, brain_extent
from isp_node.cascade.datasets import load_shards, make_dataset
from isp_node.cascade.evaluation import predict_in_batches
from isp_node.cascade.inference import load_model
from isp_node.simulation.cases import head_of
from isp_node.simulation.tensors import GRID_SPACING_MM

THRESHOLDS = (0.5, 0.45, 0.4, 0.35, 0.3, 0.25)


def end_errors(maps: np.ndarray, truths: np.ndarray, threshold: float) -> np.ndarray:
    """(n, 6) signed errors (mm) of the low and high ends of each map's brain, read at
    `threshold`, against the truth's at 0.5."""
    errors = []
    for drawn, truth in zip(maps, truths):
        (pl, ph), (tl, th) = brain_extent(drawn, threshold), brain_extent(truth)
        errors.append(GRID_SPACING_MM * np.concatenate([pl - tl, ph - th]))
    return np.array(errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=Path, required=True, help="Coverage-Net")
    parser.add_argument("--data", type=Path, default=Path("var/data"), help="simulated data sets")
    args = parser.parse_args()
    d = load_shards(make_dataset(args.data / "tune_iq", FAST),
                    ("volumes", "brains", "usable", "seeds"))
    keep = d["usable"] & (d["brains"].reshape(len(d["brains"]), -1).max(axis=1) > 127)
    model = load_model(args.models / "coverage_net.keras")
    maps = predict_in_batches(model, d["volumes"][keep], 2)[..., 0]
    truths = d["brains"][keep].astype(np.float32) / 255
    heads = np.array([head_of(int(seed), HEADS) for seed in d["seeds"][keep]])
    found = [brain_extent(m, max(THRESHOLDS)) is not None for m in maps]
    maps, truths, heads = maps[found], truths[found], heads[found]
    print(f"{len(maps)} usable localizers ({', '.join(f'{h} {np.sum(heads == h)}' for h in HEADS)})")
    for threshold in THRESHOLDS:
        ends = end_errors(maps, truths, threshold)
        errors = np.maximum(np.abs(ends[:, :3]), np.abs(ends[:, 3:]))
        mark = "  <- the node's now" if threshold == MAP_EXTENT_THRESHOLD else ""
        print(f"{threshold:.2f}: x / y / z {np.round(np.median(errors, axis=0), 2)} mm, every "
              f"extent within 3 mm {np.mean((errors <= 3).all(axis=1)):.1%}{mark}")
        for head in HEADS:
            mine = heads == head
            print(f"      {head:10s} {np.round(np.median(errors[mine], axis=0), 2)} mm, ends "
                  f"{np.round(np.median(ends[mine], axis=0), 1)}")


if __name__ == "__main__":
    main()
