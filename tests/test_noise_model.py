"""The averaged Rician noise model against brute-force averages of Rician pixels."""

import numpy as np
import pytest

from isp_node.simulation.artifacts import averaged_rician_noise, rician_noise


@pytest.mark.parametrize("signal", [0.0, 1.0, 3.0, 10.0])
def test_averaged_rician_matches_averaging_native_pixels(signal):
    rng = np.random.default_rng(0)
    image = np.full((200, 200), signal)
    brute = np.mean([rician_noise(image, 1.0, rng) for _ in range(16)], axis=0)
    model = averaged_rician_noise(image, 1.0, 16, rng)
    assert model.mean() == pytest.approx(brute.mean(), rel=0.01)
    assert model.std() == pytest.approx(brute.std(), rel=0.05)
    if signal == 0.0:  # the magnitude floor of an empty field of view
        assert model.mean() == pytest.approx(np.sqrt(np.pi / 2), rel=0.01)
