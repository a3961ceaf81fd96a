"""Per-localizer time of cascade stages 1-2 (LocalizerIQ-Net + Coverage-Net), warm.

    python bench/cascade_stages12.py [--n 50]

Simulates `--n` localizers (DICOM path: full resolution, as a scanner sends them),
reads them with the node's loader, then times `Cascade.run` on each (loading the
networks and a warm-up call are not counted). Prints median and p95.
"""

import argparse
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
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="isp-node-bench-"))
    localizers = []
    for i in range(args.n):
        case = simulate_case(500_000 + i, kind="usable")
        localizers.append(load_localizer(case.write(work / str(i))).slices)
    cascade = Cascade()
    cascade.run(localizers[0])  # warm-up: traces the tf.functions
    times = []
    for slices in localizers:
        started = time.perf_counter()
        cascade.run(slices)
        times.append(time.perf_counter() - started)
    images = [len(s) for s in localizers]
    print(f"{args.n} localizers ({min(images)}-{max(images)} images each), stages 1-2 warm: "
          f"median {statistics.median(times) * 1000:.0f} ms, "
          f"p95 {np.percentile(times, 95) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
