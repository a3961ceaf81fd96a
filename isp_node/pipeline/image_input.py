"""Per-image network input: one localizer image resampled to a fixed square grid.

LocalizerIQ-Net judges each image on its own. Its input is the whole field of
view resampled to `size` x `size` pixels (aspect kept by padding), intensity
divided by the image's own 99th percentile, so any matrix and field of view
looks alike to the network and a dark or bright image is still judged by its
content.
"""

from functools import lru_cache

import numpy as np
from scipy import ndimage

from isp_node.pipeline.interpolation import interpolation_matrix
from isp_node.pipeline.slices import ImageSlice, antialias_sigma

IQ_SIZE = 64


def iq_input(s: ImageSlice, size: int = IQ_SIZE) -> np.ndarray:
    """(size, size) float32 image covering the slice's field of view."""
    rows, cols = s.shape
    step = max(rows * s.spacing[0], cols * s.spacing[1]) / size  # mm per output pixel, both axes
    out = (_axis_operator(rows, s.spacing[0], step, size) @ s.pixels.astype(np.float32)
           @ _axis_operator(cols, s.spacing[1], step, size).T)
    return normalised(out).astype(np.float32)


def normalised(image: np.ndarray) -> np.ndarray:
    """`image` divided by its own 99th percentile (unchanged if that is not positive)."""
    scale = float(np.percentile(image, 99))
    return image / scale if scale > 0 else image


@lru_cache(maxsize=64)
def _axis_operator(n: int, spacing_mm: float, step_mm: float, size: int) -> np.ndarray:
    """(size, n) linear map along one image axis: the pixels anti-aliased as
    `ImageSlice.antialiased` does, then sampled bilinearly at `size` points `step_mm`
    apart centred on the image; zero for points beyond the pixels' outer edges (a
    pixel covers half a pixel beyond its centre). Cached: a series shares it."""
    sigma = antialias_sigma(step_mm, spacing_mm)
    blur = ndimage.gaussian_filter1d(np.eye(n), sigma, axis=0) if sigma > 0 else np.eye(n)
    position = (n - 1) / 2 + (np.arange(size) - (size - 1) / 2) * step_mm / spacing_mm
    inside = (position > -0.5) & (position < n - 0.5)
    operator = (interpolation_matrix(position, n) @ blur) * inside[:, None]
    operator.flags.writeable = False
    return operator
