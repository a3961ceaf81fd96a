"""The threads a worker gives one localizer's numerical work outside the networks.

Smoothing slices (scipy), fitting planes and searching the symmetry (compiled with
numba) release the GIL, so two threads run them side by side on this project's
two-core machines; the networks have TensorFlow's own threads.
"""

from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

THREADS = 2


@lru_cache(maxsize=1)
def thread_pool() -> ThreadPoolExecutor:
    """The process's pool, started on first use."""
    return ThreadPoolExecutor(THREADS, thread_name_prefix="isp-node-numerics")
