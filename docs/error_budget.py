"""How much of stage 3's error the simulated anatomy leaves to be seen, against the node's.

    python docs/error_budget.py --models DIR [--heads mni pydeface] [--n 30]

Two measurements on usable simulated localizers (seeds 5,000,000+, apart from those
`isp-node evaluate orientation` reports):

- MSP: the symmetry search (`cascade.symmetry`) started on the true plane, on a 2 mm
  grid about the brain: how far the plane the localizer mirrors itself about lies
  from the midline landmarks' plane, as roll (about Posterior) and yaw (about
  Superior), signed, degrees. The node's MSP is that search's result, so its error
  cannot be much smaller than this.
- ACPC pitch: the true AC-PC plane against the true orbitomeatal plane (the outline's
  plane: canthi and ear canals) varies from individual to individual with the deep
  structures (`simulation.deformation`); a planner that cannot see the commissures
  does no better than that spread. The node's ACPC against the same OM plane shows
  how much of it the networks recover (correlation, error).

DIR holds the cascade's networks (stages 1-3).
"""

import argparse
from pathlib import Path

import numpy as np

from isp_node.cascade.evaluation import PLANNED_MM
from isp_node.cascade.planner import Cascade
from isp_node.cascade.symmetry import symmetry_plane
from isp_node.pipeline.volume import Grid, LocalizerStacks
from isp_node.simulation.cases import simulate_case

FIRST_SEED = 5_000_000
GRID = ((75, 75, 75), 2.0)  # 150 mm about a point 15 mm above the AC-PC midpoint


def signed_angle(a: np.ndarray, b: np.ndarray, axis: np.ndarray) -> float:
    """The angle (degrees) from `a` to `b` about `axis`, both projected across it."""
    a, b = a - (a @ axis) * axis, b - (b @ axis) * axis
    return float(np.degrees(np.arctan2(np.cross(a, b) @ axis, a @ b)))


def measure(cascade: Cascade, head: str, n: int) -> dict[str, np.ndarray]:
    """Per localizer: symmetry roll and yaw off the true MSP; true and planned ACPC pitch
    against the true OM plane."""
    rows = []
    for seed in range(FIRST_SEED, FIRST_SEED + n):
        case = simulate_case(seed, heads=(head,), kind="usable", resolution_mm=PLANNED_MM)
        left = case.planes["MSP"].normal / np.linalg.norm(case.planes["MSP"].normal)
        up = case.planes["ACPC"].normal - (case.planes["ACPC"].normal @ left) * left
        up = up / np.linalg.norm(up) * np.sign(up[2])
        centre = case.planes["ACPC"].centre + 15.0 * up
        volume = LocalizerStacks(case.slices).resample(Grid.centred(centre, *GRID))
        mirror = symmetry_plane(volume, centre, left, float(left @ case.planes["MSP"].centre))
        found = np.sign(mirror.normal @ left) * mirror.normal
        om = case.planes["OM"].normal * np.sign(case.planes["OM"].normal @ up)
        planned = {e["key"]: np.asarray(e["normal"]) for e in cascade.run(case.slices)["planes"]}
        true_acpc = case.planes["ACPC"].normal * np.sign(case.planes["ACPC"].normal @ up)
        node_acpc = planned["ACPC"] * np.sign(planned["ACPC"] @ up) if "ACPC" in planned else None
        rows.append([signed_angle(left, found, np.cross(up, left)), signed_angle(left, found, up),
                     signed_angle(om, true_acpc, left),
                     np.nan if node_acpc is None else signed_angle(om, node_acpc, left)])
    table = np.array(rows)
    return {"roll": table[:, 0], "yaw": table[:, 1], "true_pitch": table[:, 2], "node_pitch": table[:, 3]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=Path, required=True, help="the cascade's networks")
    parser.add_argument("--heads", nargs="+", default=["mni", "pydeface"])
    parser.add_argument("--n", type=int, default=30, help="localizers per head (default 30)")
    args = parser.parse_args()
    cascade = Cascade(args.models)
    if cascade.orientation is None:
        raise SystemExit(f"no Orientation-Net (orientation_net.keras) in {args.models}")
    for head in args.heads:
        m = measure(cascade, head, args.n)
        tilt = np.hypot(m["roll"], m["yaw"])
        planned = ~np.isnan(m["node_pitch"])
        true, node = m["true_pitch"][planned], m["node_pitch"][planned]
        spread = true - true.mean()
        print(f"{head} ({args.n} localizers)\n"
              f"  MSP by symmetry, started on the true plane: off it by {np.median(tilt):.2f} degrees "
              f"median, {np.percentile(tilt, 95):.2f} p95; roll {m['roll'].mean():+.2f} +- "
              f"{m['roll'].std():.2f}, yaw {m['yaw'].mean():+.2f} +- {m['yaw'].std():.2f}\n"
              f"  ACPC pitch against OM: true {true.mean():.2f} +- {true.std():.2f} degrees "
              f"(the mean relation misses it by {np.median(np.abs(spread)):.2f} median); "
              f"node's error {np.median(np.abs(node - true)):.2f} median, "
              f"{np.percentile(np.abs(node - true), 95):.2f} p95; correlation "
              f"{np.corrcoef(true, node)[0, 1]:.2f} ({planned.sum()} planned)")


if __name__ == "__main__":
    main()
