"""Per-image network input: one localizer image resampled to a fixed square grid.

LocalizerIQ-Net judges each image on its own. Its input is the whole field of
view resampled to `size` x `size` pixels (aspect kept by padding), intensity
divided by the image's own 99th percentile, so any matrix and field of view
looks alike to the network and a dark or bright image is still judged by its
content.
"""

import numpy as np

from isp_node.pipeline.interpolation import sample_bilinear
from isp_node.pipeline.slices import ImageSlice

IQ_SIZE = 64


def iq_input(s: ImageSlice, size: int = IQ_SIZE) -> np.ndarray:
    """(size, size) float32 image covering the slice's field of view."""
    rows, cols = s.shape
    extent = max(rows * s.spacing[0], cols * s.spacing[1])
    step = extent / size  # mm per output pixel, same on both axes
    centre_r, centre_c = (rows - 1) / 2, (cols - 1) / 2
    offsets = (np.arange(size) - (size - 1) / 2) * step
    r = centre_r + offsets[:, None] / s.spacing[0]
    c = centre_c + offsets[None, :] / s.spacing[1]
    pixels = s.antialiased(step)
    rr, cc = np.broadcast_to(r, (size, size)), np.broadcast_to(c, (size, size))
    # pixels cover half a pixel beyond their centres; only beyond that is outside
    inside = (rr > -0.5) & (rr < rows - 0.5) & (cc > -0.5) & (cc < cols - 0.5)
    out = sample_bilinear(pixels, rr, cc) * inside
    scale = float(np.percentile(out, 99))
    return (out / scale if scale > 0 else out).astype(np.float32)
