"""Contrast families for simulated localizers: pointwise transfer functions from T1 template intensity.

The training anatomy is T1-weighted. A ``ContrastMap`` turns its intensities into
a T1-, T2- or PD-like look with ``np.interp`` over a few control points, drawn at
random within each family so that a network never sees one fixed template look.

Input intensities are first divided by a reference, the template's white-matter
level (see ``white_matter_level``), so that the control points are written in
"T1 template units" where white matter is 1. The tissue levels assumed there,
measured on the MNI152 2009c template and the pydeface mean head:

=========================  ===========  ==========================================
tissue                     T1 units     remark
=========================  ===========  ==========================================
air, background            0 - 0.06     MNI background sits near 0.05, not 0
cortical bone, skull       0.08 - 0.13  also dura, tendons, air/tissue edges
CSF                        0.2 - 0.45   ventricles 0.25 (MNI), 0.45 (blurred mean head)
muscle                     0.45 - 0.6   cannot be told from CSF/GM partial volume
grey matter                0.62 - 0.78  scalp on the MNI template sits here too
white matter               1            by definition
fat (scalp, marrow, orbit) 1.1 - 1.3    pydeface scalp; MNI scalp is GM-like
=========================  ===========  ==========================================

A pointwise map cannot separate tissues that share a T1 intensity: on T2 and PD
looks, muscle comes out CSF/GM-bright rather than dark, and partial-volume edges
between skull and scalp show a thin bright line. Outputs are in relative units
where white matter of a T1 look is about 1; the caller picks the final scale.
"""

from dataclasses import dataclass

import numpy as np

FAMILIES = ("T1", "T2", "PD")

# Lesion (oedema, tumour) intensity per family, in the same relative units as a
# ContrastMap output: bright on T2 and PD, dark on T1.
LESION_RANGES = {"T1": (0.25, 0.55), "T2": (1.6, 2.4), "PD": (1.05, 1.4)}


@dataclass(frozen=True)
class ContrastMap:
    """Piecewise-linear intensity transfer: ``knots`` in T1 template units -> ``levels`` (relative)."""

    family: str
    knots: tuple[float, ...]
    levels: tuple[float, ...]
    reference: float = 1.0

    def __post_init__(self) -> None:
        if len(self.knots) != len(self.levels) or len(self.knots) < 2:
            raise ValueError("knots and levels must be equally long, at least two")
        if np.any(np.diff(self.knots) <= 0):
            raise ValueError("knots must increase strictly")
        if self.reference <= 0:
            raise ValueError("reference must be positive")

    @classmethod
    def random(cls, family: str, rng: np.random.Generator, reference: float = 1.0) -> "ContrastMap":
        """Draw a map of ``family`` (T1, T2 or PD) for a template whose white matter is at ``reference``."""
        if family not in FAMILIES:
            raise ValueError(f"unknown contrast family {family!r}; expected one of {FAMILIES}")
        u = rng.uniform
        # Tissue positions on the input axis, jittered so boundaries move between draws. CSF is a
        # plateau, so that ventricles read as CSF on a sharp template and on a blurred mean head.
        air, bone, csf_lo, csf_hi, gm, wm, fat = (
            u(0.03, 0.06), u(0.09, 0.13), u(0.18, 0.24), u(0.34, 0.44), u(0.62, 0.76), 1.0, u(1.12, 1.25))
        if family == "T1":
            bone_out, csf_out, gm_out, wm_out = u(0.02, 0.10), u(0.10, 0.32), u(0.55, 0.78), u(0.95, 1.05)
            fat_out = u(1.02, 1.4)
        elif family == "T2":
            wm_out = 1.0
            gm_out = wm_out * u(1.2, 1.6)
            bone_out, csf_out, fat_out = u(0.02, 0.08), gm_out * u(1.3, 1.8), gm_out * u(0.9, 1.4)
        else:  # PD
            wm_out = u(0.80, 0.92)
            gm_out = wm_out * u(1.06, 1.2)
            bone_out, csf_out, fat_out = u(0.05, 0.15), gm_out * u(1.03, 1.2), gm_out * u(1.1, 1.5)
        knots = (0.0, air, bone, csf_lo, csf_hi, gm, wm, fat, 4.0)
        levels = (0.0, 0.0, bone_out, csf_out, csf_out, gm_out, wm_out, fat_out, fat_out)
        return cls(family, tuple(float(k) for k in knots), tuple(float(v) for v in levels), float(reference))

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """Map template intensities to this contrast (float32, same shape, never negative)."""
        values = np.asarray(values, dtype=np.float32)
        scaled = values * np.float32(1.0 / self.reference)
        return np.interp(scaled, self.knots, self.levels).astype(np.float32)


def white_matter_level(volume: np.ndarray) -> float:
    """Robust white-matter intensity of a T1 head volume: a high percentile of its central region.

    The centre of a head's foreground is deep brain, where white matter is the
    brightest tissue; scalp fat, which can be brighter, lies outside that box.
    """
    volume = np.asarray(volume, dtype=np.float32)
    foreground = volume > 0.15 * np.percentile(volume, 99.5)
    if not foreground.any():
        raise ValueError("volume has no foreground")
    index = np.nonzero(foreground)
    lo = np.array([i.min() for i in index])
    hi = np.array([i.max() for i in index])
    centre = np.array([np.median(i) for i in index])
    half = np.maximum(0.15 * (hi - lo), 2).astype(int)
    box = tuple(slice(max(int(c) - h, 0), int(c) + h + 1) for c, h in zip(centre, half))
    return float(np.percentile(volume[box], 90))


def lesion_intensity(family: str, rng: np.random.Generator) -> float:
    """Intensity of a simulated lesion (oedema/tumour) in ``family``, in ContrastMap output units."""
    if family not in FAMILIES:
        raise ValueError(f"unknown contrast family {family!r}; expected one of {FAMILIES}")
    return float(rng.uniform(*LESION_RANGES[family]))
