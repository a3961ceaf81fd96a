"""Image-formation effects of the localizer simulator: contrast families, artifacts, non-head objects."""

import numpy as np
import pytest

from isp_node.simulation import artifacts, objects
from isp_node.simulation.contrast import ContrastMap, lesion_intensity, white_matter_level

# Tissue levels in T1 template units (white matter = 1), as documented in contrast.py.
AIR, BONE, CSF, GM, WM, FAT = 0.0, 0.1, 0.3, 0.7, 1.0, 1.2


def head_like_slice(size: int = 128) -> np.ndarray:
    """An ellipse of 'brain' with texture inside a bright rim, on an empty background."""
    y, x = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
    r = np.sqrt((x / 0.7) ** 2 + (y / 0.85) ** 2)
    image = np.where(r < 0.9, 0.7 + 0.3 * np.sin(12 * x) * np.cos(9 * y), 0.0) + np.where((r >= 0.9) & (r < 1), 1.2, 0)
    return image.astype(np.float32)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# Every effect that takes a random generator, as (name, call(image, rng)).
RANDOM_EFFECTS = [
    ("rician_noise", lambda im, g: artifacts.rician_noise(im, 0.05, g)),
    ("motion_ghosts", lambda im, g: artifacts.motion_ghosts(im, g, 2, 0.2, 0, jitter=0.3)),
    ("spikes", lambda im, g: artifacts.spikes(im, g, 2, 0.1)),
    ("signal_dropout", lambda im, g: artifacts.signal_dropout(im, g, 2)),
    ("apply_random_artifacts", lambda im, g: artifacts.apply_random_artifacts(im, g, "heavy", 1)[0]),
]


@pytest.mark.parametrize("name,effect", RANDOM_EFFECTS, ids=[n for n, _ in RANDOM_EFFECTS])
def test_effects_are_deterministic_and_keep_shape_dtype_and_input(name, effect):
    for dtype in (np.float32, np.float64):
        image = head_like_slice().astype(dtype)
        before = image.copy()
        first, again, other = effect(image, rng(7)), effect(image, rng(7)), effect(image, rng(8))
        np.testing.assert_array_equal(first, again)
        assert not np.array_equal(first, other)
        assert first.shape == image.shape and first.dtype == dtype
        assert np.all(first >= 0) and np.all(np.isfinite(first))
        np.testing.assert_array_equal(image, before)


def test_integer_input_gives_float32():
    image = (head_like_slice() * 1000).astype(np.uint16)
    assert artifacts.rician_noise(image, 5.0, rng()).dtype == np.float32
    assert artifacts.wrap_around(image, 0, 10).dtype == np.float32


# --- contrast -------------------------------------------------------------------------------------------

def tissue_levels(family: str, seed: int) -> dict[str, float]:
    reference = 2345.0
    contrast = ContrastMap.random(family, rng(seed), reference=reference)
    values = np.array([AIR, BONE, CSF, GM, WM, FAT], dtype=np.float32) * reference
    return dict(zip(("air", "bone", "csf", "gm", "wm", "fat"), contrast(values)))


@pytest.mark.parametrize("seed", range(40))
def test_contrast_ordering_per_family(seed):
    t1, t2, pd = (tissue_levels(f, seed) for f in ("T1", "T2", "PD"))
    assert t1["wm"] > t1["gm"] > t1["csf"] > t1["bone"] >= t1["air"]
    assert t2["csf"] > t2["gm"] > t2["wm"] > t2["bone"]
    assert t2["fat"] > t2["wm"]
    assert t2["gm"] / t2["wm"] >= 1.1
    assert pd["csf"] > pd["gm"] > pd["wm"] > pd["bone"]
    assert pd["gm"] / pd["wm"] < 1.3  # low grey/white contrast
    for levels in (t1, t2, pd):
        assert levels["air"] == 0.0
        assert levels["bone"] < 0.2 * max(levels.values())


def test_contrast_draws_vary_within_a_family_and_are_reproducible():
    maps = [ContrastMap.random("T2", rng(seed)) for seed in range(5)]
    assert len({m.levels for m in maps}) == 5
    assert ContrastMap.random("T2", rng(3)) == maps[3]


def test_contrast_map_keeps_shape_is_float32_and_does_not_touch_input():
    contrast = ContrastMap.random("PD", rng(), reference=100.0)
    volume = np.linspace(0, 150, 60, dtype=np.float64).reshape(3, 4, 5)
    before = volume.copy()
    out = contrast(volume)
    assert out.shape == volume.shape and out.dtype == np.float32 and np.all(out >= 0)
    np.testing.assert_array_equal(volume, before)


def test_contrast_rejects_unknown_family():
    with pytest.raises(ValueError, match="family"):
        ContrastMap.random("FLAIR", rng())
    with pytest.raises(ValueError, match="family"):
        lesion_intensity("CT", rng())


def test_lesions_are_t2_bright_and_t1_dark():
    for seed in range(20):
        t1, t2 = tissue_levels("T1", seed), tissue_levels("T2", seed)
        assert t1["csf"] * 0.8 < lesion_intensity("T1", rng(seed)) < 0.7 * t1["wm"]
        assert lesion_intensity("T2", rng(seed)) > t2["wm"]
        assert lesion_intensity("PD", rng(seed)) > tissue_levels("PD", seed)["wm"]


def test_white_matter_level_of_a_layered_head():
    r = np.sqrt(np.sum(np.mgrid[-50:50, -60:60, -50:50].astype(np.float32) ** 2, axis=0))
    layers = [(45, FAT), (40, BONE), (37, CSF), (34, GM), (25, WM)]
    volume = np.zeros(r.shape, np.float32)
    for radius, value in layers:
        volume[r < radius] = value * 800
    assert white_matter_level(volume) == pytest.approx(WM * 800, rel=0.05)


# --- noise, bias ---------------------------------------------------------------------------------------

def test_rician_noise_background_is_rayleigh_and_bright_signal_keeps_its_mean():
    image = np.zeros((256, 256), np.float32)
    image[:, 128:] = 100.0
    out = artifacts.rician_noise(image, 5.0, rng())
    assert out[:, :128].mean() == pytest.approx(5.0 * np.sqrt(np.pi / 2), rel=0.03)
    assert out[:, 128:].mean() == pytest.approx(100.0, rel=0.01)
    assert out[:, 128:].std() == pytest.approx(5.0, rel=0.05)


def test_bias_field_stays_within_strength_reaches_it_and_is_smooth():
    grid = np.linspace(-150, 150, 31)
    points = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), axis=-1)
    for seed in range(10):
        strength = 0.1 + 0.03 * seed
        field = artifacts.BiasField.random(rng(seed), strength)
        values = field(points)
        assert values.shape == points.shape[:-1] and values.dtype == np.float32
        assert values.min() >= 1 - strength - 1e-6 and values.max() <= 1 + strength + 1e-6
        assert np.abs(values - 1).max() >= 0.8 * strength
        assert abs(values.mean() - 1) < 0.5 * strength
        # 10 mm steps change the field by a small fraction of its range: smooth over the head.
        steps = [np.abs(np.diff(values, axis=a)).max() for a in range(3)]
        assert max(steps) < 0.35 * strength


def test_bias_field_is_the_same_on_every_slice_through_a_point():
    field = artifacts.BiasField.random(rng(), 0.3)
    a, b = np.meshgrid(np.arange(-100, 101, 2.0), np.arange(-100, 101, 2.0), indexing="ij")
    axial = np.stack([a, b, np.full_like(a, 20.0)], axis=-1)
    sagittal = np.stack([np.zeros_like(a), a, b], axis=-1)
    # The axial slice at z = 20 and the sagittal slice at x = 0 share the line x = 0, z = 20.
    np.testing.assert_allclose(field(axial)[50, :], field(sagittal)[:, 60], rtol=1e-5)
    assert np.ptp(field(axial)) > 0.05
    np.testing.assert_array_equal(field(axial[:3, :3]), field(axial)[:3, :3])


# --- k-space artifacts ---------------------------------------------------------------------------------

def point_image(size: int = 128) -> np.ndarray:
    image = np.zeros((size, size), np.float32)
    image[60:68, 60:68] = 1.0
    return image


@pytest.mark.parametrize("axis", [0, 1])
def test_motion_ghosts_sit_at_multiples_of_the_spacing_along_the_phase_axis(axis):
    image = point_image()
    out = artifacts.motion_ghosts(image, rng(), n_ghosts=2, amplitude=0.3, phase_axis=axis, spacing_px=20)

    def at(offset_phase: int, offset_read: int = 0) -> float:
        shift = (offset_phase, offset_read) if axis == 0 else (offset_read, offset_phase)
        return float(out[64 + shift[0], 64 + shift[1]])

    for offset in (20, -20):
        assert 0.1 < at(offset) < 0.4
    for offset in (40, -40):
        assert 0.05 < at(offset) < 0.25
    assert at(30) < 0.02 and at(0, 20) < 0.02 and at(0, -40) < 0.02
    assert at(0) > 0.6


def test_motion_ghosts_random_spacing_shows_in_the_autocorrelation():
    image = point_image()
    out = artifacts.motion_ghosts(image, rng(4), n_ghosts=1, amplitude=0.3, phase_axis=0)
    profile = out[:, 60:68].max(axis=1)
    outside = np.r_[profile[:56], profile[72:]]
    assert outside.max() > 0.1, "a ghost must appear along the phase axis"
    assert out[60:68, :56].max() < 0.02 and out[60:68, 72:].max() < 0.02


def test_wrap_around_folds_margins_to_the_opposite_side():
    wide = np.zeros((140, 50), np.float32)
    wide[2:6, 10:20] = 1.0  # above the field of view: folds to the bottom
    wide[-5:-1, 30:40] = 2.0  # below: folds to the top
    wide[60:70, 20:30] = 3.0  # inside
    out = artifacts.wrap_around(wide, 0, 20)
    assert out.shape == (100, 50)
    np.testing.assert_array_equal(out[82:86, 10:20], 1.0)
    np.testing.assert_array_equal(out[15:19, 30:40], 2.0)
    np.testing.assert_array_equal(out[40:50, 20:30], 3.0)
    assert out.sum() == pytest.approx(wide.sum())
    sideways = artifacts.wrap_around(wide.T, 1, 20)
    np.testing.assert_array_equal(sideways, out.T)


def test_wrap_around_of_a_very_wide_field_folds_more_than_once():
    wide = np.ones((90, 8), np.float32)
    out = artifacts.wrap_around(wide, 0, 35)
    assert out.shape == (20, 8)
    assert out.sum() == pytest.approx(wide.sum())
    with pytest.raises(ValueError):
        artifacts.wrap_around(wide, 0, 45)


def test_spike_adds_energy_at_its_k_space_position():
    image = head_like_slice()
    out = artifacts.spikes(image, rng(), amplitude=0.05, positions=[(10, -20)])
    gain = np.abs(np.fft.fft2(out)) - np.abs(np.fft.fft2(image))
    # The empty background is lifted by the spike's magnitude: that only adds low frequencies.
    low = np.abs(np.fft.fftfreq(128) * 128) <= 3
    gain[low[:, None] & low[None, :]] = 0
    peak = np.unravel_index(np.argmax(gain), gain.shape)
    assert peak in {(10, 128 - 20), (128 - 10, 20)}  # the spike or its Hermitian mirror
    assert gain[peak] > 10 * np.median(np.abs(gain))


def test_random_spikes_make_stripes_away_from_the_k_space_centre():
    image = head_like_slice()
    out = artifacts.spikes(image, rng(2), n_spikes=1, amplitude=0.1)
    gain = np.abs(np.fft.fft2(out)) - np.abs(np.fft.fft2(image))
    low = np.abs(np.fft.fftfreq(128) * 128) <= 3
    gain[low[:, None] & low[None, :]] = 0
    u, v = np.unravel_index(np.argmax(gain), gain.shape)
    u, v = min(u, 128 - u), min(v, 128 - v)
    assert max(u, v) > 128 // 16


def test_signal_dropout_only_removes_signal_smoothly():
    image = np.ones((128, 128), np.float32)
    out = artifacts.signal_dropout(image, rng(), n_regions=1, depth=(0.8, 0.9), size=(0.15, 0.2))
    assert np.all(out <= image) and out.min() < 0.3
    assert max(np.abs(np.diff(out, axis=a)).max() for a in (0, 1)) < 0.1


# --- slice profile -------------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", artifacts.PROFILES)
@pytest.mark.parametrize("n", [1, 4, 7])
def test_slice_profile_weights_sum_to_one_and_are_symmetric(profile, n):
    offsets, weights = artifacts.slice_profile_weights(6.0, n, profile)
    assert offsets.shape == weights.shape == (n,)
    assert weights.sum() == pytest.approx(1.0)
    assert np.all(weights >= 0)
    np.testing.assert_allclose(offsets, -offsets[::-1], atol=1e-12)
    np.testing.assert_allclose(weights, weights[::-1], rtol=1e-9)


def test_slice_profiles_have_their_shapes():
    offsets, weights = artifacts.slice_profile_weights(6.0, 6, "box")
    assert np.abs(offsets).max() < 3.0 and np.allclose(weights, 1 / 6)
    offsets, weights = artifacts.slice_profile_weights(6.0, 9, "gaussian")
    assert weights[4] / weights[0] > 10  # tails at twice the FWHM are small
    assert np.interp(3.0, offsets, weights) == pytest.approx(weights[4] / 2, rel=0.05)  # half maximum at FWHM/2
    offsets, weights = artifacts.slice_profile_weights(6.0, 13, "sinc-like")
    inside = weights[np.abs(offsets) < 2.0]
    assert inside.min() > 0.8 * inside.max()  # flat top, unlike a Gaussian
    assert weights[np.abs(offsets) > 4.0].max() < 0.1 * weights.max()
    with pytest.raises(ValueError):
        artifacts.slice_profile_weights(6.0, 5, "triangle")


# --- random artifact sets ------------------------------------------------------------------------------

def test_random_artifacts_name_what_they_apply_and_heavy_always_applies_something():
    names = {"wrap_around", "motion_ghosts", "spikes", "signal_dropout", "noise"}
    image = head_like_slice()
    mild_counts = []
    for seed in range(30):
        out, applied = artifacts.apply_random_artifacts(image, rng(seed), "heavy")
        assert applied and set(applied) <= names and out.shape == image.shape
        out, applied = artifacts.apply_random_artifacts(image, rng(seed), "mild")
        assert set(applied) <= names
        mild_counts.append(len(applied))
        if not applied:
            np.testing.assert_array_equal(out, image)
    assert 0 < np.mean(mild_counts) < 2


def test_random_artifacts_crop_or_fold_the_sampling_margin():
    wide = head_like_slice(160)
    for seed in range(10):
        out, applied = artifacts.apply_random_artifacts(wide, rng(seed), "mild", phase_axis=1, margin_px=16)
        assert out.shape == (160, 128)
    with pytest.raises(ValueError):
        artifacts.apply_random_artifacts(wide, rng(), "catastrophic")


def test_a_heavy_artifact_is_never_wrap_around_alone():
    # the fold lands at the field of view's edge: alone it leaves the brain clean
    wide = head_like_slice(160)
    folded = 0
    for seed in range(60):
        _, applied = artifacts.apply_random_artifacts(wide, rng(seed), "heavy", phase_axis=1, margin_px=16)
        assert set(applied) - {"wrap_around"}
        folded += "wrap_around" in applied
    assert 0 < folded < 60


def test_heavy_artifacts_change_the_image_much_more_than_mild():
    image = head_like_slice()

    def change(severity: str) -> float:
        diffs = [np.abs(artifacts.apply_random_artifacts(image, rng(s), severity)[0] - image).mean()
                 for s in range(30)]
        return float(np.mean(diffs))

    assert change("heavy") > 5 * change("mild")


# --- objects -------------------------------------------------------------------------------------------

def extent_mm(volume: np.ndarray, affine: np.ndarray, threshold: float) -> np.ndarray:
    """Size (mm) along x, y, z of the voxels above ``threshold`` of the maximum (axis-aligned affine)."""
    index = np.nonzero(volume > threshold * volume.max())
    return np.array([(i.max() - i.min() + 1) * abs(affine[a, a]) for a, i in enumerate(index)])


@pytest.mark.parametrize("seed", range(4))
def test_cylinder_phantom_is_a_bottle_of_realistic_size(seed):
    volume, affine = objects.cylinder_phantom(rng(seed))
    again, _ = objects.cylinder_phantom(rng(seed))
    np.testing.assert_array_equal(volume, again)
    assert volume.dtype == np.float32 and volume.ndim == 3 and np.all(volume >= 0)
    assert affine.shape == (4, 4) and 1.0 <= abs(affine[0, 0]) <= 1.5
    size = np.sort(extent_mm(volume, affine, 0.05))
    assert 90 <= size[0] and size[1] - size[0] < 5 and size[1] <= 205  # round cross-section
    assert 150 <= size[2] <= 305  # length
    centre = affine[:3, :3] @ ((np.array(volume.shape) - 1) / 2) + affine[:3, 3]
    assert np.all(np.abs(centre) < 30)


@pytest.mark.parametrize("seed", range(3))
def test_knee_is_a_leg_of_realistic_size_with_dark_bone_cortex(seed):
    volume, affine = objects.knee_like(rng(seed))
    assert volume.dtype == np.float32 and np.all(volume >= 0)
    x, y, z = extent_mm(volume, affine, 0.5)
    assert 90 <= x <= 185 and 85 <= y <= 185  # across the leg
    assert 130 <= z <= 260  # along it, where the knee coil sees it
    assert z > max(x, y)
    # Along the leg axis at the joint centre there is bone: marrow bright, cortex near zero.
    centre = np.round(np.linalg.solve(affine[:3, :3], -affine[:3, 3])).astype(int)
    column = volume[centre[0], centre[1] - 10: centre[1] + 10, centre[2] + 20]
    assert column.max() > 0.9 and volume[centre[0], :, centre[2] + 20].min() < 0.1


def test_pure_noise_is_rayleigh_like_and_non_negative():
    image = objects.pure_noise((256, 256), rng(), sigma=3.0)
    again = objects.pure_noise((256, 256), rng(), sigma=3.0)
    np.testing.assert_array_equal(image, again)
    assert image.dtype == np.float32 and image.shape == (256, 256) and np.all(image >= 0)
    assert np.median(image) == pytest.approx(3.0 * np.sqrt(2 * np.log(2)), rel=0.2)
