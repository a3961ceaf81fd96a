"""Draw the montage of the localizer simulator's image-formation effects on the MNI head and the non-head objects.

Usage: python docs/simulation_effects.py [OUT.png] [--seed N]

Rows: contrast families in three orientations; each artifact on one slice;
slice profiles; random mild and heavy artifact sets; the bottle phantom, the
knee and pure noise. Views are radiological (patient right on screen left,
anterior left on sagittal). Needs the ``docs`` extra (matplotlib).
"""

import argparse
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from scipy.ndimage import map_coordinates  # noqa: E402

from isp_node.simulation import artifacts, objects  # noqa: E402
from isp_node.simulation.anatomy import load_mni_head  # noqa: E402
from isp_node.simulation.contrast import ContrastMap, white_matter_level  # noqa: E402

MATRIX, SPACING = 224, 1.1
# (row direction, column direction) in LPS, as scanners write localizers
VIEWS = {
    "axial": (np.array([1.0, 0, 0]), np.array([0, 1.0, 0])),
    "sagittal": (np.array([0, 1.0, 0]), np.array([0, 0, -1.0])),
    "coronal": (np.array([1.0, 0, 0]), np.array([0, 0, -1.0])),
}
CENTRES = {"axial": (0, 10, 15), "sagittal": (2, 10, 5), "coronal": (0, 5, 5)}


def slice_points(view: str, centre, rows: int = MATRIX, cols: int = MATRIX, normal_offset: float = 0.0) -> np.ndarray:
    """LPS points (rows, cols, 3) of a slice of ``view`` through ``centre``."""
    row, col = VIEWS[view]
    normal = np.cross(row, col)
    i = (np.arange(rows) - (rows - 1) / 2) * SPACING
    j = (np.arange(cols) - (cols - 1) / 2) * SPACING
    return (np.asarray(centre, float) + normal_offset * normal
            + i[:, None, None] * col + j[None, :, None] * row).astype(np.float32)


def sample(volume: np.ndarray, affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Trilinear samples of ``volume`` at LPS ``points`` (zero outside)."""
    inverse = np.linalg.inv(affine)
    voxels = points @ inverse[:3, :3].T + inverse[:3, 3]
    return map_coordinates(volume, np.moveaxis(voxels, -1, 0), order=1, cval=0.0).astype(np.float32)


def thick_slice(volume, affine, view, centre, thickness, profile, rows=MATRIX, cols=MATRIX) -> np.ndarray:
    """Weighted average of sub-slices across the slice profile."""
    offsets, weights = artifacts.slice_profile_weights(thickness, 7, profile)
    return sum(w * sample(volume, affine, slice_points(view, centre, rows, cols, o)) for o, w in zip(offsets, weights))


def noisy(image: np.ndarray, rng: np.random.Generator, snr: float = 30.0) -> np.ndarray:
    """Rician noise at ``snr`` relative to the image's bright tissue."""
    return artifacts.rician_noise(image, np.percentile(image, 99) / snr, rng)


def render(out: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    head = load_mni_head()
    wm = white_matter_level(head.volume)
    maps = {family: ContrastMap.random(family, rng, reference=wm) for family in ("T1", "T2", "PD")}
    panels: list[tuple[str, np.ndarray]] = []

    def head_slice(view, family, thickness=6.0, profile="gaussian", rows=MATRIX, centre=None):
        raw = thick_slice(head.volume, head.affine, view, centre or CENTRES[view], thickness, profile, rows=rows)
        return maps[family](raw)

    for view in VIEWS:
        for family in maps:
            panels.append((f"{family} {view}", noisy(head_slice(view, family), rng)))

    base = head_slice("axial", "T2")
    points = slice_points("axial", CENTRES["axial"])
    panels.append(("Rician noise, SNR 6", noisy(base, rng, snr=6)))
    bias = artifacts.BiasField.random(rng, 0.4)
    panels.append(("bias field 40%", noisy(base * bias(points), rng)))
    panels.append(("motion ghosts (A-P)", noisy(artifacts.motion_ghosts(base, rng, 3, 0.25, 0, jitter=0.3), rng)))
    fold = 50  # acquired A-P field of view 154 mm of a 190 mm head: nose and occiput fold over
    wide = head_slice("axial", "T2", rows=140 + 2 * fold)
    panels.append(("wrap-around (A-P)", noisy(artifacts.wrap_around(wide, 0, fold), rng)))
    panels.append(("k-space spike", noisy(artifacts.spikes(base, rng, 1, 0.1), rng)))
    panels.append(("signal drop-out", noisy(artifacts.signal_dropout(base, rng, 1, (0.9, 0.95), (0.15, 0.2)), rng)))

    for thickness, profile in ((1.0, "box"), (10.0, "box"), (10.0, "gaussian"), (10.0, "sinc-like")):
        image = head_slice("sagittal", "T1", thickness, profile, centre=(25, 10, 5))
        panels.append((f"{profile} {thickness:g} mm", noisy(image, rng, 40)))
    shown_sets: list[list[str]] = []
    for severity, view, family in (("mild", "coronal", "T2"), ("heavy", "axial", "PD"), ("heavy", "sagittal", "T1")):
        # Show draws that did something, each a different set, so the panels say more.
        while True:
            image, applied = artifacts.apply_random_artifacts(head_slice(view, family), rng, severity)
            if applied and applied not in shown_sets:
                break
        shown_sets.append(applied)
        panels.append((f"{severity}: {', '.join(applied)}", noisy(image, rng)))

    looks = {family: ContrastMap.random(family, rng) for family in ("T1", "T2", "PD")}
    shown = ((objects.cylinder_phantom, 16, (("axial", "T1"), ("sagittal", "T2"))),
             (objects.cylinder_phantom, 8, (("coronal", "PD"),)),
             (objects.knee_like, 1, (("sagittal", "T1"), ("coronal", "T2"), ("axial", "PD"))))
    for make, object_seed, views in shown:
        volume, affine = make(np.random.default_rng(object_seed))
        middle = affine[:3, :3] @ ((np.array(volume.shape) - 1) / 2) + affine[:3, 3]
        name = make.__name__.split("_")[0]
        for view, family in views:
            centre = middle + (0, 0, 15) if view == "axial" else middle
            raw = thick_slice(volume, affine, view, centre, 5.0, "gaussian")
            panels.append((f"{name} {view} {family}", noisy(looks[family](raw), rng)))
    panels.append(("pure noise", objects.pure_noise((MATRIX, MATRIX), rng)))

    columns = 6
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.35 * rows))
    for ax in axes.flat:
        ax.axis("off")
    for ax, (title, image) in zip(axes.flat, panels):
        ax.imshow(image, cmap="gray", vmin=0, vmax=np.percentile(image, 99.7), interpolation="nearest")
        ax.set_title(title, fontsize=7)
    fig.tight_layout(pad=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=85)
    # 40 grey levels keep the noisy panels small enough for the repository.
    Image.open(buffer).convert("L").quantize(40, dither=Image.Dither.NONE).save(out, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="docs/simulation_effects.png")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    render(args.out, args.seed)


if __name__ == "__main__":
    main()
