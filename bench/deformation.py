"""Time the deformation model on one core: making a deformation and mapping sample points.

    python bench/deformation.py [--points 1000000] [--repeats 20]

Prints the one-off cost of deriving the template maps, the time of
``random_deformation`` (plain, outline only, with a lesion), ``to_template``
in ms per million points (random points in the head, float64 and float32, and
a three-plane localizer-like lattice) and ``to_subject`` for the landmarks.
Thread pools are limited to one thread before numpy is imported.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from isp_node.simulation.anatomy import load_mni_head  # noqa: E402
from isp_node.simulation.deformation import random_deformation  # noqa: E402
from isp_node.simulation.lesions import random_lesion  # noqa: E402
from isp_node.simulation.masks import template_maps  # noqa: E402


def timed(fn, repeats: int) -> list[float]:
    """Wall times (s) of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def localizer_lattice(n_points: int) -> np.ndarray:
    """Points of a three-plane localizer (sagittal, coronal, axial slices, 1 mm pixels, 5 samples through each)."""
    side = 256
    per_slice = side * side * 5
    n_slices = max(1, n_points // per_slice)
    grid = np.arange(side) - side / 2 + 0.5
    u, v, w = np.meshgrid(grid, grid, np.linspace(-2.5, 2.5, 5), indexing="ij")
    orientations = (((0, 1, 0), (0, 0, -1)), ((1, 0, 0), (0, 0, -1)), ((1, 0, 0), (0, 1, 0)))
    slices = []
    for index in range(n_slices):
        row, col = (np.array(a, dtype=float) for a in orientations[index % 3])
        normal = np.cross(row, col)
        offset = (index // 3 - 1) * 8.0
        slices.append(u[..., None] * row + v[..., None] * col + (w[..., None] + offset) * normal)
    return np.concatenate([s.reshape(-1, 3) for s in slices])


def report(name: str, seconds: list[float], per_million: float | None = None) -> None:
    median = statistics.median(seconds)
    if per_million is None:
        print(f"{name:48s} {median * 1e3:8.1f} ms  (min {min(seconds) * 1e3:.1f})")
    else:
        print(f"{name:48s} {median * 1e3 / per_million:8.1f} ms per million points  "
              f"(min {min(seconds) * 1e3 / per_million:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    head = load_mni_head()
    start = time.perf_counter()
    template_maps(head)
    print(f"{'template maps (first use per head)':48s} {(time.perf_counter() - start) * 1e3:8.1f} ms")

    seeds = iter(range(10**6))
    report("random_deformation", timed(lambda: random_deformation(head, np.random.default_rng(next(seeds))),
                                       args.repeats))
    report("random_deformation(interior=False)", timed(
        lambda: random_deformation(head, np.random.default_rng(next(seeds)), interior=False), args.repeats))

    def with_lesion():
        rng = np.random.default_rng(next(seeds))
        random_deformation(head, rng, lesion=random_lesion(head, rng))

    report("random_lesion + random_deformation(lesion=)", timed(with_lesion, args.repeats))

    deformation = random_deformation(head, np.random.default_rng(1))
    rng = np.random.default_rng(0)
    lo, hi = np.array([-90.0, -120.0, -75.0]), np.array([90.0, 110.0, 100.0])
    points = lo + rng.random((args.points, 3)) * (hi - lo)
    millions = args.points / 1e6
    repeats = max(3, args.repeats // 4)
    report("to_template, random points, float64", timed(lambda: deformation.to_template(points), repeats), millions)
    points32 = points.astype(np.float32)
    report("to_template, random points, float32", timed(lambda: deformation.to_template(points32), repeats), millions)
    lattice = localizer_lattice(args.points)
    report(f"to_template, localizer lattice ({len(lattice) / 1e6:.2f} M)",
           timed(lambda: deformation.to_template(lattice), repeats), len(lattice) / 1e6)
    landmarks = np.stack(list(head.landmarks.values()))
    report(f"to_subject, {len(landmarks)} landmarks", timed(lambda: deformation.to_subject(landmarks), args.repeats))


if __name__ == "__main__":
    main()
