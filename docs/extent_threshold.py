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
from isp_node.cascade.datasets import IMAGE_FIELDS, load_shards, make_dataset, per_case
from isp_node.cascade.evaluation import coverage_metrics, predict_in_batches
from isp_node.cascade.inference import load_model
from isp_node.simulation.cases import head_of

THRESHOLDS = (0.5, 0.45, 0.4, 0.35, 0.3, 0.25)


def tuning_maps(description: str, fields: tuple[str, ...] = ()
                ) -> tuple[np.ndarray, np.ndarray, dict]:
    """From the command line's --models and --data: Coverage-Net's maps and the truth on the
    usable localizers (showing brain) of the tuning set, and the shards' `fields` of them
    (per-image fields as one array per localizer)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--models", type=Path, required=True, help="Coverage-Net")
    parser.add_argument("--data", type=Path, default=Path("var/data"), help="simulated data sets")
    args = parser.parse_args()
    d = load_shards(make_dataset(args.data / "tune_iq", FAST),
                    ("volumes", "brains", "usable", "owners") + fields)
    keep = d["usable"] & (d["brains"].reshape(len(d["brains"]), -1).max(axis=1) > 127)
    model = load_model(args.models / "coverage_net.keras")
    maps = predict_in_batches(model, d["volumes"][keep], 2)[..., 0]
    cases = np.flatnonzero(keep)
    return maps, d["brains"][keep].astype(np.float32) / 255, {
        f: per_case(d[f], d["owners"], cases) if f in IMAGE_FIELDS else d[f][keep]
        for f in fields}


def main() -> None:
    maps, truths, d = tuning_maps(__doc__.split("\n")[0], ("seeds",))
    heads = np.array([head_of(int(seed), HEADS) for seed in d["seeds"]])
    found = [brain_extent(m, max(THRESHOLDS)) is not None for m in maps]
    maps, truths, heads = maps[found], truths[found], heads[found]
    print(f"{len(maps)} usable localizers ({', '.join(f'{h} {np.sum(heads == h)}' for h in HEADS)})")
    for threshold in THRESHOLDS:
        every = coverage_metrics(maps, truths, np.ones(len(maps), bool), threshold)
        mark = "  <- the node's now" if threshold == MAP_EXTENT_THRESHOLD else ""
        print(f"{threshold:.2f}: x / y / z {np.round(every['extent_error_mm_median'], 2)} mm, "
              f"every extent within 3 mm {every['extent_within_3mm']:.1%}{mark}")
        for head in HEADS:
            mine = heads == head
            one = coverage_metrics(maps[mine], truths[mine], np.ones(mine.sum(), bool), threshold)
            ends = one["end_error_mm_median_usable"]
            print(f"      {head:10s} {np.round(one['extent_error_mm_median'], 2)} mm, ends "
                  f"{np.round(np.concatenate([ends['low'], ends['high']]), 1)}")


if __name__ == "__main__":
    main()
