"""LocalizerIQ-Net's per-image input matches its definition: anti-alias, sample the field
of view on a square grid (zero beyond the image), divide by the 99th percentile."""

import numpy as np
import pytest
from scipy import ndimage

from isp_node.pipeline.image_input import IQ_SIZE, iq_input, iq_inputs
from isp_node.pipeline.slices import ImageSlice, PixelStack, antialias_sigma, binning_factor


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


def test_binning_factor_is_the_largest_divisor_within_a_third_of_the_step():
    assert binning_factor(512, 0.47, 4.0) == 2  # 0.94 mm pixels for a 4 mm grid
    assert binning_factor(512, 0.2, 4.0) == 4  # 6 fits the step, but 512 is not a multiple of 5 or 6
    assert binning_factor(300, 0.2, 4.0) == 6
    assert binning_factor(149, 1.93, 4.0) == 1  # a 3D scout's pixels: none
    assert binning_factor(101, 0.2, 4.0) == 1  # a prime matrix: none


def test_pixel_stack_averages_blocks_and_places_them_at_their_centres():
    """A linear function of patient position stays that function after binning, read at
    the binned pixels' own geometry; the pixels of each slice stay apart."""
    row, col = np.array([0.6, 0.8, 0.0]), np.array([0.0, 0.0, -1.0])
    slices = []
    for k, position in enumerate(([10.0, -4.0, 30.0], [12.0, -4.0, 30.0])):
        s = ImageSlice(np.zeros((64, 96), np.float32), position, row, col, (0.4, 0.3), 2.0)
        points = s.pixel_grid()
        slices.append(ImageSlice((100 * k + 2.0 * points[..., 0] - points[..., 1] + 0.5 * points[..., 2])
                                 .astype(np.float32), position, row, col, (0.4, 0.3), 2.0))
    stack = PixelStack.of(slices, 4.0)
    assert stack.pixels.shape == (2, 32, 24) and stack.spacing == (0.8, 1.2)  # blocks of 2 x 4
    for k, s in enumerate(slices):
        binned = ImageSlice(stack.pixels[k], s.position + stack.offset, row, col, stack.spacing, 2.0)
        points = binned.pixel_grid()
        expected = 100 * k + 2.0 * points[..., 0] - points[..., 1] + 0.5 * points[..., 2]
        np.testing.assert_allclose(stack.pixels[k], expected, atol=1e-3)


def test_iq_inputs_of_mixed_matrices_are_each_slices_own():
    rng = np.random.default_rng(2)
    slices = [ImageSlice(rng.gamma(2.0, 100.0, shape).astype(np.float32), np.zeros(3), [1, 0, 0],
                         [0, 1, 0], spacing, 5.0)
              for shape, spacing in (((64, 64), (4.0, 4.0)), ((512, 512), (0.47, 0.47)),
                                     ((64, 64), (4.0, 4.0)), ((200, 150), (1.1, 1.3)))]
    together = iq_inputs(slices)
    for s, image in zip(slices, together):
        np.testing.assert_allclose(image, iq_input(s), atol=1e-6)
    np.testing.assert_allclose(together[0], iq_inputs([slices[0]])[0], atol=1e-6)
    assert not np.allclose(together[0], together[2])


def test_a_fine_matrix_gives_the_input_its_coarser_twin_gives():
    """Binning a 512 matrix before the anti-aliasing changes the network input little: a
    smooth image seen at 0.47 mm and at 0.94 mm gives the same LocalizerIQ-Net input."""
    def smooth(n: int, spacing: float) -> ImageSlice:
        mm = (np.arange(n) - (n - 1) / 2) * spacing
        r, c = np.meshgrid(mm, mm, indexing="ij")
        pixels = 100 + 80 * np.exp(-((r - 20) ** 2 + (c + 30) ** 2) / (2 * 25.0 ** 2)) + 0.2 * r
        return ImageSlice(pixels.astype(np.float32), np.zeros(3), [1, 0, 0], [0, 1, 0],
                          (spacing, spacing), 5.0)
    fine, coarse = smooth(512, 0.47), smooth(256, 0.94)
    assert binning_factor(512, 0.47, 512 * 0.47 / IQ_SIZE) == 2
    np.testing.assert_allclose(iq_input(fine), iq_input(coarse), atol=2e-3)
