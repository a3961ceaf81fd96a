"""LocalizerIQ-Net's per-image input matches its definition: anti-alias, sample the field
of view on a square grid (zero beyond the image), divide by the 99th percentile."""

import numpy as np
import pytest
from scipy import ndimage

from isp_node.pipeline.image_input import iq_input
from isp_node.pipeline.slices import ImageSlice, antialias_sigma


@pytest.mark.parametrize("shape, spacing", [((200, 150), (1.1, 1.3)), ((40, 52), (5.0, 4.0)),
                                            ((64, 64), (4.0, 4.0))])
def test_iq_input_is_antialiased_bilinear_sampling_of_the_field_of_view(shape, spacing):
    pixels = np.random.default_rng(1).gamma(2.0, 100.0, shape).astype(np.float32)
    s = ImageSlice(pixels, np.zeros(3), [1, 0, 0], [0, 1, 0], spacing, 5.0)
    size = 64
    step = max(shape[0] * spacing[0], shape[1] * spacing[1]) / size
    smooth = ndimage.gaussian_filter(pixels, [antialias_sigma(step, sp) for sp in spacing])
    centred = (np.arange(size) - (size - 1) / 2) * step
    r = (shape[0] - 1) / 2 + centred / spacing[0]
    c = (shape[1] - 1) / 2 + centred / spacing[1]
    rr, cc = np.meshgrid(r, c, indexing="ij")
    expected = ndimage.map_coordinates(smooth, [rr, cc], order=1, mode="nearest")
    expected *= (rr > -0.5) & (rr < shape[0] - 0.5) & (cc > -0.5) & (cc < shape[1] - 0.5)
    expected /= np.percentile(expected, 99)
    np.testing.assert_allclose(iq_input(s, size), expected, atol=1e-5)
    assert (iq_input(s, size) == 0).any() == (shape[0] * spacing[0] != shape[1] * spacing[1])
