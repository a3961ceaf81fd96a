"""Time the localizer simulator's image-formation effects on one core.

    python bench/simulation_effects.py [--size 256] [--repeats 300]

Prints milliseconds per slice (median over repeats) for every effect on a
float32 slice of ``--size`` squared, and seconds per non-head object volume.
"""

import argparse
import os
import statistics
import time

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

import numpy as np  # noqa: E402

from isp_node.simulation import artifacts, objects  # noqa: E402
from isp_node.simulation.contrast import ContrastMap  # noqa: E402


def median_ms(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def test_slice(size: int, rng: np.random.Generator) -> np.ndarray:
    """An ellipse of tissue-like intensities with texture, in template units."""
    y, x = np.mgrid[-1:1:size * 1j, -1:1:size * 1j].astype(np.float32)
    inside = (x / 0.7) ** 2 + (y / 0.85) ** 2 < 1
    return (inside * (0.7 + 0.3 * np.sin(20 * x) * np.cos(15 * y)) + rng.uniform(0, 0.05, (size, size))).astype(
        np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    size = args.size
    image = test_slice(size, rng)
    wide = test_slice(size + 64, rng)[:, 32:-32]
    t2 = ContrastMap.random("T2", rng)
    bias = artifacts.BiasField.random(rng, 0.3)
    grid = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="ij"), -1).astype(np.float32)
    points = np.concatenate([grid - size / 2, np.full((size, size, 1), 10, np.float32)], axis=-1)

    effects = {
        "contrast map (T2)": lambda: t2(image),
        "rician_noise": lambda: artifacts.rician_noise(image, 0.05, rng),
        "bias field (evaluate + multiply)": lambda: image * bias(points),
        "motion_ghosts (3 pairs, jitter)": lambda: artifacts.motion_ghosts(image, rng, 3, 0.2, 0, jitter=0.5),
        "wrap_around (32 px margins)": lambda: artifacts.wrap_around(wide, 0, 32),
        "spikes (2)": lambda: artifacts.spikes(image, rng, 2, 0.1),
        "signal_dropout (2 regions)": lambda: artifacts.signal_dropout(image, rng, 2),
        "slice_profile_weights": lambda: artifacts.slice_profile_weights(8.0, 7, "sinc-like"),
        "apply_random_artifacts mild": lambda: artifacts.apply_random_artifacts(image, rng, "mild"),
        "apply_random_artifacts heavy": lambda: artifacts.apply_random_artifacts(image, rng, "heavy"),
    }
    print(f"ms per {size}x{size} float32 slice (median of {args.repeats}), one thread:")
    for name, function in effects.items():
        print(f"  {name:36s} {median_ms(function, args.repeats):7.3f}")
    print("seconds per object volume (median of 5):")
    for name, make in (("cylinder_phantom", objects.cylinder_phantom), ("knee_like", objects.knee_like)):
        seconds = median_ms(lambda: make(np.random.default_rng(int(rng.integers(1000)))), 5) / 1000
        print(f"  {name:36s} {seconds:7.3f}")
    print(f"  {'pure_noise 256x256 (ms)':36s} {median_ms(lambda: objects.pure_noise((size, size), rng), 50):7.3f}")


if __name__ == "__main__":
    main()
