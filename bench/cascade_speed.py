"""Per-localizer time of the cascade as installed (stages 1-2, and stage 3 when
Orientation-Net is among the models), warm, and the process's peak memory.

    python bench/cascade_speed.py [--n 50] [--models DIR]

Simulates `--n` localizers (DICOM path: full resolution, as a scanner sends them),
reads them with the node's loader, then times `Cascade.run` on each (loading the
networks and a warm-up call are not counted). Prints median and p95.
"""

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from isp_node.cascade.planner import Cascade
from isp_node.pipeline.loader import load_localizer
from isp_node.simulation.cases import simulate_case


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--models", type=Path, help="networks (default: the node's)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="isp-node-bench-"))
    localizers = []
    for i in range(args.n):
        case = simulate_case(500_000 + i, kind="usable")
        localizers.append(load_localizer(case.write(work / str(i))).slices)
    cascade = Cascade(args.models)
    cascade.run(localizers[0])  # warm-up: traces the tf.functions
    times = []
    for slices in localizers:
        started = time.perf_counter()
        cascade.run(slices)
        times.append(time.perf_counter() - started)
    images = [len(s) for s in localizers]
    stages = "stages 1-3" if cascade.orientation else "stages 1-2"
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.n} localizers ({min(images)}-{max(images)} images each), {stages} warm: "
          f"median {statistics.median(times) * 1000:.0f} ms, "
          f"p95 {np.percentile(times, 95) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms; "
          f"peak memory {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
