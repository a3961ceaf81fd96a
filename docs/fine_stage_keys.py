"""Which planes the fine stage should give: every key from the first stage alone and
from the fine stage, on the same simulated localizers.

    python docs/fine_stage_keys.py --models DIR [--n 100]

DIR holds the four networks (stages 1-2, Orientation-Net and its fine stage). The
localizers are new MNI individuals (seeds 6,000,000+, usable ones only), apart
from those `isp-node evaluate orientation` reports, so choosing the keys does not
tune the reported figures. Prints per key the median and p95 angle (degrees) and
distance (mm) of both; `orientation.FINE_KEYS` holds the keys chosen from it.
"""

import argparse
from pathlib import Path

from isp_node.cascade.evaluation import cascade_plan, evaluate_orientation
from isp_node.cascade.planner import Cascade
from isp_node.geometry import PLANE_KEYS

FIRST_SEED = 6_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=Path, required=True, help="the four networks")
    parser.add_argument("--n", type=int, default=100, help="localizers (default 100)")
    args = parser.parse_args()
    cascade = Cascade(args.models)
    if cascade.fine is None:
        raise SystemExit(f"no fine stage (orientation_fine_net.keras) in {args.models}")
    seeds = range(FIRST_SEED, FIRST_SEED + args.n)
    cascade.fine_keys = PLANE_KEYS
    fine = evaluate_orientation(cascade_plan(cascade), seeds, "mni", unusable_fraction=0.0)
    cascade.fine = None
    first = evaluate_orientation(cascade_plan(cascade), seeds, "mni", unusable_fraction=0.0)
    print(f"{first['cases']} localizers; angle (deg) / distance (mm), median [p95]")
    print(f"{'key':12} {'first stage':>24} {'fine stage':>24}")
    for key in PLANE_KEYS:
        row = [f"{r['angle_deg_median_p95_max'][key][0]:5.2f} / {r['distance_mm_median_p95_max'][key][0]:4.2f} "
               f"[{r['angle_deg_median_p95_max'][key][1]:5.2f} / {r['distance_mm_median_p95_max'][key][1]:5.2f}]"
               for r in (first, fine)]
        print(f"{key:12} {row[0]:>24} {row[1]:>24}")


if __name__ == "__main__":
    main()
