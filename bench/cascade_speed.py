"""Per-localizer time of the cascade as installed (stages 1-2, and stage 3 when
Orientation-Net is among the models), warm, and the process's peak memory.

    python bench/cascade_speed.py [--n 50] [--models DIR] [--parts]

Simulates `--n` localizers (DICOM path: full resolution, as a scanner sends them),
reads them with the node's loader, then times `Cascade.run` on each (loading the
networks and a warm-up call are not counted). Prints median and p95. With `--parts`,
runs them all once more under the profiler and prints where the time goes, per
localizer (work on the node's other threads shows as the main thread's wait for it).
"""

import argparse
import cProfile
import pstats
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from isp_node.cascade.brain import image_brain_mm2
from isp_node.cascade.orientation import planes_from_outputs
from isp_node.cascade.planner import Cascade
from isp_node.cascade.symmetry import symmetry_plane
from isp_node.pipeline.loader import load_localizer
from isp_node.pipeline.volume import LocalizerStacks
from isp_node.simulation.cases import simulate_case

# what `--parts` reports: the main thread's time in these functions (the networks: TensorFlow's
# calls, Coverage-Net's and stage 3's; LocalizerIQ-Net runs on a thread of its own)
NETWORKS = "TFE_Py_Execute"
PARTS = {"networks": NETWORKS, "  of them, stage 3": Cascade._outputs,
         "resamplings": LocalizerStacks.resample, "plane decodings": planes_from_outputs,
         "  of them, the symmetry": symmetry_plane, "image areas": image_brain_mm2}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--models", type=Path, help="networks (default: the node's)")
    parser.add_argument("--parts", action="store_true", help="then time the parts, profiled")
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
    if args.parts:
        print_parts(cascade, localizers)
    return 0


def print_parts(cascade: Cascade, localizers: list) -> None:
    """Each of `PARTS`' time per localizer, from one profiled run of the cascade on each."""
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.runcall(lambda: [cascade.run(slices) for slices in localizers])
    total = time.perf_counter() - started
    stats = pstats.Stats(profile).stats  # (file, line, name) -> (.., .., .., cumulative, ..)
    print(f"profiled: {total / len(localizers) * 1000:.0f} ms per localizer, of it")
    for part, function in PARTS.items():
        if function == NETWORKS:
            seconds = sum(row[3] for (_, _, name), row in stats.items() if NETWORKS in name)
        else:
            code = function.__code__
            where = (code.co_filename, code.co_firstlineno, code.co_name)
            seconds = sum(row[3] for key, row in stats.items() if key == where)
        print(f"  {part:26s} {seconds / len(localizers) * 1000:6.1f} ms")


if __name__ == "__main__":
    raise SystemExit(main())
