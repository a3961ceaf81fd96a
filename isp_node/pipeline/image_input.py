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
from isp_node.pipeline.slices import ImageSlice, PixelStack, antialias_sigma

IQ_SIZE = 64


def iq_input(s: ImageSlice, size: int = IQ_SIZE) -> np.ndarray:
    """(size, size) float32 image covering the slice's field of view."""
    return iq_inputs([s], size)[0]


def iq_inputs(slices: list[ImageSlice], size: int = IQ_SIZE) -> np.ndarray:
    """(N, size, size) float32: `iq_input` of every slice, the slices of one matrix and pixel
    size taken together (two matrix products for a whole 3D scout instead of two per image)."""
    out = np.empty((len(slices), size, size), np.float32)
    stacks: dict[tuple, list[int]] = {}
    for i, s in enumerate(slices):
        stacks.setdefault((s.shape, tuple(s.spacing)), []).append(i)
    for ((rows, cols), spacing), members in stacks.items():
        step = max(rows * spacing[0], cols * spacing[1]) / size  # mm per output pixel, both axes
        stack = PixelStack.of([slices[i] for i in members], step)
        pixels, (_, rows, cols), spacing = stack.pixels, stack.pixels.shape, stack.spacing
        along_rows = _axis_operator(rows, spacing[0], step, size)  # (size, rows)
        along_cols = _axis_operator(cols, spacing[1], step, size)  # (size, cols)
        images = along_rows @ pixels.transpose(1, 0, 2).reshape(rows, -1)  # one product for all
        images = images.reshape(size, len(members), cols).transpose(1, 0, 2).reshape(-1, cols)
        out[members] = normalised((images @ along_cols.T).reshape(len(members), size, size))
    return out


def normalised(images: np.ndarray) -> np.ndarray:
    """Each image (last two axes) divided by its own 99th percentile (unchanged if that is
    not positive)."""
    scale = np.percentile(images, 99, axis=(-2, -1), keepdims=True)
    return images / np.where(scale > 0, scale, 1.0)


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
    operator = ((interpolation_matrix(position, n) @ blur) * inside[:, None]).astype(np.float32)
    operator.flags.writeable = False
    return operator
