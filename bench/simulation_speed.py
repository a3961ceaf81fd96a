"""Cases per second of the simulator's two outputs, on one core.

    taskset -c 0 python bench/simulation_speed.py [--n 40] [--repeat 3]

Output 1: simulate a case at full resolution and write its DICOM files and
truth.json. Output 2 (the fast path): network inputs and targets without DICOM.
The first cases (anatomy loading, template maps, object pools) are run before
timing starts. The rate is per second of the process's CPU time, so other work
on the machine lowers it less; wall time is printed beside it. Each
measurement passes over the same cases several times and reports the fastest
pass (a shared machine's speed varies by 20-30% within an hour).
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from isp_node.simulation.cases import simulate_case  # noqa: E402
from isp_node.simulation.tensors import training_sample  # noqa: E402


def rate(label: str, n: int, repeat: int, run) -> None:
    """Cases per second of CPU time (what one core delivers, whatever else runs) and of wall
    time, over the same `n` cases `repeat` times: the fastest pass is the machine's speed
    (other load only ever slows a pass), the median shows the spread."""
    cpu, wall = [], []
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        for i in range(n):
            run(1000 + i)
        cpu.append((time.process_time() - cpu_started) / n)
        wall.append((time.perf_counter() - started) / n)
    print(f"{label:48s} {1 / min(cpu):5.2f} cases/s, median pass {1 / float(np.median(cpu)):5.2f} "
          f"({min(cpu) * 1000:.0f} ms CPU per case; wall {min(wall) * 1000:.0f} ms)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="cases per pass")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the same cases per measurement")
    args = parser.parse_args()
    for seed in range(12):  # warm: heads, template maps, object pools
        training_sample(seed)
    out = Path(tempfile.mkdtemp(prefix="isp-node-sim-"))
    rate("output 1: DICOM + truth.json, full resolution", args.n, args.repeat,
         lambda seed: simulate_case(seed).write(out / str(seed)))
    rate("output 2: tensors (64^3 at 4 mm, IQ images)", args.n, args.repeat, training_sample)
    rate("output 2, 2 views per individual", args.n, args.repeat,
         lambda seed: training_sample(seed, anatomy_seed=seed - seed % 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
