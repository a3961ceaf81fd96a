"""MR image-formation effects for simulated localizer slices: noise, bias, ghosts, aliasing, spikes, drop-out.

Every function takes a 2D magnitude slice (non-negative, any scale), returns a
new array of the same shape and floating dtype (float32 for integer input) and
never changes its input. Random choices come from the ``rng`` passed in, so a
seed reproduces a slice exactly. Amplitudes are relative to the image itself
(its maximum) except the noise level, which the caller sets in image units.

A plausible order for the caller: contrast, bias field, slice-profile averaging,
wrap-around (needs a wider sampled field of view), ghosts / spikes / drop-out,
Rician noise last.
"""

from dataclasses import dataclass

import numpy as np
from scipy import special
from scipy import fft

SEVERITIES = ("mild", "heavy")
PROFILES = ("box", "gaussian", "sinc-like")


def _out_dtype(image: np.ndarray) -> np.dtype:
    return image.dtype if np.issubdtype(image.dtype, np.floating) else np.dtype(np.float32)


def _as_float(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"expected a 2D slice, got shape {image.shape}")
    return image.astype(_out_dtype(image), copy=False)


def rician_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of the image plus complex Gaussian noise of ``sigma`` per channel (Rician; Rayleigh where empty)."""
    image = np.asarray(image)
    dtype = _out_dtype(image)
    real, imag = rng.standard_normal((2, *image.shape), dtype=np.float32) * np.float32(sigma)
    real += image
    return np.hypot(real, imag).astype(dtype, copy=False)


def _rician_mean_table(upto: float = 8.0, step: float = 0.002) -> tuple[np.ndarray, np.ndarray]:
    """Mean of Rician magnitudes (sigma 1) for signals 0..`upto`, every `step`: interpolated
    within 1e-7 of the Bessel-function formula, which costs ~70 ns a pixel."""
    signal = np.arange(0.0, upto + step / 2, step)
    x = signal**2 / 4
    return signal, np.sqrt(np.pi / 2) * ((1 + 2 * x) * special.i0e(x) + 2 * x * special.i1e(x))


RICIAN_TABLE = _rician_mean_table()


def averaged_rician_noise(image: np.ndarray, sigma: float, samples: float,
                          rng: np.random.Generator) -> np.ndarray:
    """What `samples` native pixels of Rician noise (`sigma` per channel) average to.

    For rendering coarser than the scanner's pixels: the average keeps the Rician
    mean, with its magnitude floor where there is no signal (sigma*sqrt(pi/2)),
    and shrinks the spread by sqrt(samples), as the node's own downsampling does.
    """
    image = np.asarray(image, dtype=np.float64)
    ratio = image / sigma
    far = np.maximum(ratio, RICIAN_TABLE[0][-1])  # asymptotic series beyond the table, within 6e-6 sigma
    mean = sigma * np.where(ratio <= RICIAN_TABLE[0][-1], np.interp(ratio, *RICIAN_TABLE),
                            far + 1 / (2 * far) + 1 / (8 * far**3))
    spread = np.sqrt(np.clip(2 * sigma**2 + image**2 - mean**2, 0, None) / max(samples, 1.0))
    noisy = mean + spread * rng.standard_normal(image.shape)
    return np.clip(noisy, 0, None).astype(_out_dtype(image))


@dataclass(frozen=True)
class BiasField:
    """Smooth multiplicative receive-field in patient space (LPS mm): a gradient plus a few broad Gaussian bumps.

    Defined on patient coordinates so every slice of one localizer sees the same
    field. Values stay within ``[1 - strength, 1 + strength]``.
    """

    strength: float
    gradient: tuple[float, float, float]  # per mm, before scaling
    centres: tuple[tuple[float, float, float], ...]  # LPS mm
    widths: tuple[float, ...]  # mm
    weights: tuple[float, ...]
    scale: float  # normalises the raw field to at most 1 in magnitude over the extent
    offset: float  # raw-field mean over the extent, removed so the field averages about 1

    @classmethod
    def random(cls, rng: np.random.Generator, strength: float = 0.25, centre: tuple[float, float, float] = (0, 0, 0),
               extent_mm: float = 300.0, n_bumps: int = 3) -> "BiasField":
        """A random field whose variation over a cube of ``extent_mm`` around ``centre`` spans about +-``strength``."""
        if not 0 <= strength < 1:
            raise ValueError("strength must be in [0, 1)")
        half = extent_mm / 2
        direction = rng.normal(size=3)
        gradient = direction / np.linalg.norm(direction) / half * rng.uniform(0.2, 1.0)
        centres = np.asarray(centre, float) + rng.uniform(-half, half, size=(n_bumps, 3))
        widths = rng.uniform(0.25, 0.7, size=n_bumps) * extent_mm
        weights = rng.uniform(0.5, 1.0, size=n_bumps) * rng.choice([-1.0, 1.0], size=n_bumps)
        unscaled = cls(float(strength), tuple(gradient), tuple(map(tuple, centres)), tuple(widths),
                       tuple(weights), 1.0, 0.0)
        grid = np.linspace(-half, half, 13)
        points = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), axis=-1) + np.asarray(centre, float)
        raw = unscaled._raw(points)
        offset = float(raw.mean())
        scale = float(np.abs(raw - offset).max()) or 1.0
        return cls(float(strength), tuple(gradient), tuple(map(tuple, centres)), tuple(widths), tuple(weights),
                   scale, offset)

    def _raw(self, points: np.ndarray) -> np.ndarray:
        centres = np.asarray(self.centres, dtype=points.dtype)
        # |p - c|^2 = |p|^2 - 2 p.c + |c|^2, one matrix product for all bumps
        squared = np.einsum("...i,...i->...", points, points)[..., None] - 2 * points @ centres.T
        squared += np.einsum("ij,ij->i", centres, centres)
        squared *= np.asarray([-0.5 / (w * w) for w in self.widths], dtype=points.dtype)
        raw = np.exp(squared) @ np.asarray(self.weights, dtype=points.dtype)
        raw += points @ np.asarray(self.gradient, dtype=points.dtype)
        return raw

    def __call__(self, points_lps: np.ndarray) -> np.ndarray:
        """Field value (float32) at each point of ``points_lps`` (shape ``[..., 3]``, LPS mm)."""
        points = np.asarray(points_lps, dtype=np.float32)
        if points.shape[-1] != 3:
            raise ValueError("points must have a last axis of length 3")
        raw = self._raw(points)
        unit = np.clip((raw - self.offset) / self.scale, -1.0, 1.0)
        return (1.0 + self.strength * unit).astype(np.float32)


def _phase_lines(n: int) -> np.ndarray:
    """Signed k-space line index of each FFT bin along an axis of length ``n``."""
    return fft.fftfreq(n) * n


def _along(vector: np.ndarray, axis: int) -> np.ndarray:
    """``vector`` shaped to broadcast along ``axis`` of a 2D array."""
    return vector[:, None] if axis == 0 else vector[None, :]


def motion_ghosts(image: np.ndarray, rng: np.random.Generator, n_ghosts: int = 2, amplitude: float = 0.15,
                  phase_axis: int = 0, spacing_px: float | None = None, jitter: float = 0.0) -> np.ndarray:
    """Ghost replicas along the phase-encode axis from periodic motion, made in k-space.

    Each phase-encode line is modulated periodically, which places replicas of
    the object at multiples of ``spacing_px`` (random when None) on both sides,
    the n-th pair with about ``amplitude / n`` of the object's intensity.
    ``jitter`` adds random per-line phase errors (radians) that smear the image
    along the phase axis, as irregular motion does.
    """
    image = _as_float(image)
    n = image.shape[phase_axis]
    if spacing_px is None:
        spacing_px = rng.uniform(0.12, 0.5) * n
    lines = _phase_lines(n)
    modulation = np.ones(n, dtype=np.complex128)
    for order in range(1, n_ghosts + 1):
        for sign in (1, -1):
            coefficient = amplitude / order * rng.uniform(0.6, 1.0) * np.exp(2j * np.pi * rng.uniform())
            modulation += coefficient * np.exp(-2j * np.pi * sign * order * spacing_px * lines / n)
    if jitter > 0:
        # Spare the central lines so the object stays recognisable; errors grow towards the k-space edge.
        ramp = np.minimum(np.abs(lines) / (0.1 * n), 1.0)
        modulation *= np.exp(1j * jitter * ramp * rng.standard_normal(n))
    spectrum = fft.fft(image, axis=phase_axis)
    spectrum *= _along(modulation.astype(np.complex64), phase_axis)
    return np.abs(fft.ifft(spectrum, axis=phase_axis, overwrite_x=True)).astype(image.dtype, copy=False)


def wrap_around(image: np.ndarray, phase_axis: int, fold_px: int) -> np.ndarray:
    """Fold an image sampled ``fold_px`` wider on each side of the phase axis back into the acquired field of view.

    Signal outside the field of view aliases to the opposite side (position
    modulo the field of view), as with no phase oversampling. Returns the
    central, acquired part.
    """
    image = _as_float(image)
    if fold_px < 0 or 2 * fold_px >= image.shape[phase_axis]:
        raise ValueError("fold_px must be non-negative and leave a central field of view")
    if fold_px == 0:
        return image.copy()
    moved = np.moveaxis(image, phase_axis, 0)
    n = moved.shape[0] - 2 * fold_px
    # Row p of the wide image lands on row (p - fold_px) mod n of the acquired one: place it at
    # p + lead in a buffer of whole fields of view, with lead = -fold_px mod n, and add them up.
    lead = -fold_px % n
    copies = -(-(moved.shape[0] + lead) // n)
    buffer = np.zeros((copies * n, moved.shape[1]), dtype=image.dtype)
    buffer[lead:lead + moved.shape[0]] = moved
    folded = buffer.reshape(copies, n, moved.shape[1]).sum(axis=0)
    return np.moveaxis(folded, 0, phase_axis).astype(image.dtype, copy=False)


def spikes(image: np.ndarray, rng: np.random.Generator, n_spikes: int = 1, amplitude: float = 0.1,
           positions: list[tuple[int, int]] | None = None) -> np.ndarray:
    """Herringbone stripes from isolated k-space spikes (a bad data point each).

    A spike at k-space position (u, v) adds a complex plane wave to the image;
    its amplitude is ``amplitude`` times the image maximum. ``positions`` are
    signed k-space indices (rows, cols); random (away from the centre) when None.
    """
    image = _as_float(image)
    rows, cols = image.shape
    if positions is None:
        positions = []
        for _ in range(n_spikes):
            while True:
                u, v = int(rng.integers(-rows // 2, rows // 2)), int(rng.integers(-cols // 2, cols // 2))
                if abs(u) > rows // 16 or abs(v) > cols // 16:
                    break
            positions.append((u, v))
    scale = float(image.max()) * amplitude
    r = np.arange(rows, dtype=np.float32) / rows
    c = np.arange(cols, dtype=np.float32) / cols
    wave = np.zeros((rows, cols), dtype=np.complex64)
    for u, v in positions:
        a = scale * rng.uniform(0.7, 1.0) * np.exp(2j * np.pi * rng.uniform())
        wave += np.outer(a * np.exp(2j * np.pi * u * r), np.exp(2j * np.pi * v * c)).astype(np.complex64)
    wave += image
    return np.abs(wave).astype(image.dtype, copy=False)


def signal_dropout(image: np.ndarray, rng: np.random.Generator, n_regions: int = 1,
                   depth: tuple[float, float] = (0.5, 0.95), size: tuple[float, float] = (0.08, 0.3),
                   spread: float = 0.35) -> np.ndarray:
    """Smooth regional signal loss (susceptibility, failing coil element): the image times a smooth mask.

    Each region is a rotated elliptical flat-topped blob; ``depth`` is the range
    of signal fraction lost at its centre, ``size`` the range of its radius as a
    fraction of the image width; centres lie within ``spread`` of the image size
    from the image centre.
    """
    image = _as_float(image)
    rows, cols = image.shape
    extent = max(rows, cols)
    y = (np.arange(rows, dtype=np.float32) - rows / 2)[:, None]
    x = (np.arange(cols, dtype=np.float32) - cols / 2)[None, :]
    mask = np.ones((rows, cols), dtype=np.float32)
    for _ in range(n_regions):
        cy, cx = rng.uniform(-spread, spread, size=2) * (rows, cols)
        ry, rx = rng.uniform(*size, size=2) * extent
        angle = rng.uniform(0, np.pi)
        cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
        dy, dx = y - np.float32(cy), x - np.float32(cx)
        q = ((cos * dy + sin * dx) / np.float32(ry)) ** 2 + ((cos * dx - sin * dy) / np.float32(rx)) ** 2
        mask *= 1 - np.float32(rng.uniform(*depth)) * np.exp(-q ** np.float32(rng.uniform(1.0, 2.0)))
    return (image * mask).astype(image.dtype, copy=False)


def slice_profile_weights(thickness_mm: float, n_samples: int = 5, profile: str = "box") -> tuple[np.ndarray, np.ndarray]:
    """Offsets (mm, along the slice normal) and weights that sum to 1, for averaging sub-slices of a thick slice.

    ``box`` is an ideal slice; ``gaussian`` has a FWHM of the thickness and is
    sampled over twice that; ``sinc-like`` is the excitation profile of a
    Hamming-windowed sinc pulse (time-bandwidth 4), a rounded box with soft
    edges, sampled over 1.5 times the thickness.
    """
    if n_samples < 1 or thickness_mm <= 0:
        raise ValueError("need at least one sample and a positive thickness")
    if profile == "box":
        offsets = ((np.arange(n_samples) + 0.5) / n_samples - 0.5) * thickness_mm
        weights = np.ones(n_samples)
    elif profile == "gaussian":
        offsets = np.linspace(-1.0, 1.0, n_samples) * thickness_mm if n_samples > 1 else np.zeros(1)
        sigma = thickness_mm / (2 * np.sqrt(2 * np.log(2)))
        weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    elif profile in ("sinc-like", "sinc"):
        offsets = np.linspace(-0.75, 0.75, n_samples) * thickness_mm if n_samples > 1 else np.zeros(1)
        weights = _windowed_sinc_profile(offsets / thickness_mm)
    else:
        raise ValueError(f"unknown slice profile {profile!r}; expected one of {PROFILES}")
    weights = np.clip(weights, 0, None)
    return offsets.astype(np.float64), weights / weights.sum()


def _windowed_sinc_profile(z: np.ndarray, time_bandwidth: float = 4.0) -> np.ndarray:
    """Small-tip excitation profile (Fourier transform of the pulse) at ``z`` in units of the nominal thickness."""
    t = np.linspace(-0.5, 0.5, 257)
    pulse = np.sinc(time_bandwidth * t) * (0.54 + 0.46 * np.cos(2 * np.pi * t))
    # The pulse's bandwidth (time_bandwidth over its duration) is one slice thickness.
    return (pulse[None, :] * np.cos(2 * np.pi * time_bandwidth * np.outer(z, t))).sum(axis=1) / pulse.sum()


def apply_random_artifacts(image: np.ndarray, rng: np.random.Generator, severity: str = "mild",
                           phase_axis: int | None = None, margin_px: int = 0) -> tuple[np.ndarray, list[str]]:
    """Apply a plausible random subset of artifacts; returns the image and the names of what was applied.

    ``mild`` keeps a localizer usable (faint ghosts, shallow drop-out, rare weak
    spikes); ``heavy`` makes it artifact-dominated (at least one of strong
    ghosting or smearing, spikes, deep drop-out or very low SNR). Wrap-around folds
    the margin onto the field of view's edges, away from the brain, so it never
    dominates an image: at either severity it comes with the same chance, alone only
    when mild.
    When ``margin_px`` > 0 the image was sampled that much wider on each side of
    the phase axis: the margins are folded in (wrap-around) or cropped (phase
    oversampling), so the result is ``2 * margin_px`` shorter along that axis.
    The phase axis is random unless given. Rician noise for ordinary SNR is left
    to the caller.
    """
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}; expected one of {SEVERITIES}")
    image = _as_float(image).copy()
    axis = int(rng.integers(2)) if phase_axis is None else phase_axis
    heavy = severity == "heavy"
    dominating = ["motion_ghosts", "spikes", "signal_dropout", "noise"]
    candidates = ["wrap_around", *dominating]
    chances = {"wrap_around": 0.3, "motion_ghosts": 0.35, "spikes": 0.05, "signal_dropout": 0.2, "noise": 0.0}
    if heavy:
        chosen = set(rng.choice(dominating, size=int(rng.integers(1, 3)), replace=False))
        if rng.uniform() < chances["wrap_around"]:
            chosen.add("wrap_around")
    else:
        chosen = {name for name in candidates if rng.uniform() < chances[name]}
    applied = []
    if margin_px > 0:
        if "wrap_around" in chosen:
            image = wrap_around(image, axis, margin_px)
            applied.append("wrap_around")
        else:
            image = np.moveaxis(np.moveaxis(image, axis, 0)[margin_px:-margin_px], 0, axis).copy()
    peak = float(image.max()) or 1.0
    if "motion_ghosts" in chosen:
        if heavy:
            image = motion_ghosts(image, rng, int(rng.integers(2, 5)), rng.uniform(0.25, 0.6), axis,
                                  jitter=rng.uniform(0.0, 1.5))
        else:
            image = motion_ghosts(image, rng, int(rng.integers(1, 3)), rng.uniform(0.02, 0.08), axis,
                                  jitter=rng.uniform(0.0, 0.2))
        applied.append("motion_ghosts")
    if "spikes" in chosen:
        if heavy:
            image = spikes(image, rng, int(rng.integers(1, 4)), rng.uniform(0.1, 0.35))
        else:
            image = spikes(image, rng, 1, rng.uniform(0.01, 0.03))
        applied.append("spikes")
    if "signal_dropout" in chosen:
        if heavy:
            image = signal_dropout(image, rng, int(rng.integers(1, 3)), (0.9, 1.0), (0.3, 0.5), spread=0.15)
        else:
            image = signal_dropout(image, rng, 1, (0.2, 0.45), (0.08, 0.2))
        applied.append("signal_dropout")
    if "noise" in chosen:
        image = rician_noise(image, rng.uniform(0.15, 0.4) * peak, rng)
        applied.append("noise")
    return image, applied
