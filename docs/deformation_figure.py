"""Draw docs/deformation.png: the MNI head resampled through random deformations, with their landmarks.

Usage: python docs/deformation_figure.py OUT.png [--seeds 1 2 3 4 5] [--lesion-seed 7]

Rows: the template itself, one row per random deformation, one deformation
with a lesion (core tinted orange, oedema yellow). Columns: axial
through the AC-PC midpoint, axial through the lateral ventricles, mid-sagittal
and coronal through the hippocampal heads, each a plane of the deformed
("subject") head placed on that head's own landmarks. Red: AC and PC; cyan:
hippocampal AFIDs (AM temporal horns, indusium griseum origins); small grey
crosses: where AC and PC would be if only the global affine had acted (so the
distance from red to grey is the interior moving against the outline).
Axial and coronal are radiological (patient right on the image left),
sagittal has anterior on the left. Needs the ``docs`` extra (matplotlib).
"""

import argparse
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from scipy.ndimage import map_coordinates  # noqa: E402

from isp_node.simulation.anatomy import Head, load_mni_head  # noqa: E402
from isp_node.simulation.deformation import Deformation, identity_deformation, random_deformation  # noqa: E402
from isp_node.simulation.lesions import random_lesion  # noqa: E402

HALF_MM = 100.0
STEP_MM = 1.0
NEAR_MM = 4.0
QUANTIZE_COLOURS = 256  # landmarks closer than this to the slice are drawn
RED = ("AFID:AC", "AFID:PC")
CYAN = tuple(f"AFID:{s} {part}" for s in "LR" for part in (
    "superior AM temporal horn", "inferior AM temporal horn", "indusium griseum origin"))
# (title, screen-right, screen-up, how to place the slice centre from subject landmarks)
VIEWS = (
    ("axial AC-PC", np.array([1.0, 0, 0]), np.array([0, -1.0, 0]), lambda lm: (lm["AFID:AC"] + lm["AFID:PC"]) / 2),
    ("axial ventricles", np.array([1.0, 0, 0]), np.array([0, -1.0, 0]),
     lambda lm: (lm["AFID:L LV at AC"] + lm["AFID:R LV at PC"]) / 2 - [0.0, 0.0, 8.0]),
    ("sagittal", np.array([0, 1.0, 0]), np.array([0, 0, 1.0]), lambda lm: (lm["AFID:AC"] + lm["AFID:PC"]) / 2),
    ("coronal hippocampi", np.array([1.0, 0, 0]), np.array([0, 0, 1.0]),
     lambda lm: np.mean([lm[f"AFID:{s} superior AM temporal horn"] for s in "LR"], axis=0)),
)


def resample(head: Head, deformation: Deformation, centre: np.ndarray, right: np.ndarray,
             up: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image of the deformed head on a subject-space plane, its subject and template points (H, W, 3)."""
    grid = np.arange(-HALF_MM, HALF_MM + 1e-6, STEP_MM)
    u, v = np.meshgrid(grid, grid)
    points = centre + u[..., None] * right + v[..., None] * up
    template = deformation.to_template(points)
    inverse = np.linalg.inv(head.affine)
    voxels = np.moveaxis(template @ inverse[:3, :3].T + inverse[:3, 3], -1, 0)
    return map_coordinates(head.volume, voxels, order=1), points, template


def overlay(gray: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """RGB image: grey anatomy, lesion core tinted orange and oedema yellow by their weights."""
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    for weight, colour, alpha in ((weights[..., 1], (1.0, 0.9, 0.2), 0.25), (weights[..., 0], (1.0, 0.4, 0.0), 0.35)):
        a = alpha * weight[..., None]
        rgb = rgb * (1 - a) + a * np.array(colour)
    return np.clip(rgb, 0.0, 1.0)


def save_small_png(fig, out: str, dpi: int) -> None:
    """Save ``fig`` as a palette PNG (smooth grey images compress poorly as true colour)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format="png")
    buffer.seek(0)
    image = Image.open(buffer).convert("RGB")
    image.quantize(colors=QUANTIZE_COLOURS, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(
        out, optimize=True)


def draw_points(ax, points: dict[str, np.ndarray], keys, centre, right, up, normal, **style) -> None:
    for key in keys:
        rel = points[key] - centre
        if abs(rel @ normal) < NEAR_MM:
            ax.plot(rel @ right, rel @ up, **style)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3, 4, 5])
    parser.add_argument("--lesion-seed", type=int, default=4)
    parser.add_argument("--dpi", type=int, default=64)
    args = parser.parse_args()

    head = load_mni_head()
    cases = [("template", identity_deformation(head))]
    for seed in args.seeds:
        cases.append((f"seed {seed}", random_deformation(head, np.random.default_rng(seed))))
    rng = np.random.default_rng(args.lesion_seed)
    lesion = random_lesion(head, rng)
    cases.append((f"seed {args.lesion_seed} + lesion r={lesion.radius_mm:.0f} mm",
                  random_deformation(head, rng, lesion=lesion)))

    lo, hi = np.percentile(head.volume, [1, 99.5])
    fig, axes = plt.subplots(len(cases), len(VIEWS), figsize=(3.2 * len(VIEWS), 3.2 * len(cases)))
    for row, (name, deformation) in enumerate(cases):
        landmarks = deformation.landmarks_to_subject(head.landmarks)
        affine_only = {k: np.linalg.solve(deformation.matrix, head.landmarks[k] - deformation.offset) for k in RED}
        if deformation.lesion is not None:
            lesion_centre = deformation.lesion.centre
        for col, (title, right, up, place) in enumerate(VIEWS):
            centre = place(landmarks)
            if deformation.lesion is not None and col == 1:
                centre = np.array([centre[0], centre[1], lesion_centre[2]])  # the lesion's own axial slice
            normal = np.cross(right, up)
            image, points, template = resample(head, deformation, centre, right, up)
            weights = deformation.lesion_weight(points, template)
            ax = axes[row, col]
            ax.imshow(overlay(np.clip((image - lo) / (hi - lo), 0, 1), weights), origin="lower",
                      extent=(-HALF_MM, HALF_MM, -HALF_MM, HALF_MM), interpolation="bilinear")
            extent = (-HALF_MM, HALF_MM, -HALF_MM, HALF_MM)
            for channel, colour in ((1, "gold"), (0, "orangered")):
                if weights[..., channel].max() > 0.5:
                    ax.contour(weights[..., channel], [0.5], colors=colour, linewidths=0.8, extent=extent)
            draw_points(ax, affine_only, RED, centre, right, up, normal, marker="+", color="0.55", ms=9, mew=1.5)
            draw_points(ax, landmarks, RED, centre, right, up, normal, marker="o", color="red", ms=5, mec="k", mew=0.5)
            draw_points(ax, landmarks, CYAN, centre, right, up, normal, marker="o", color="cyan", ms=5, mec="k",
                        mew=0.5)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=10)
            if col == 0:
                ax.set_ylabel(name, fontsize=10)
    fig.suptitle("MNI152 2009c head through random deformations (rows). Red: AC, PC; cyan: hippocampal AFIDs;\n"
                 "grey +: AC, PC under the global affine alone; orange / yellow: lesion core / oedema", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.975))
    save_small_png(fig, args.out, args.dpi)


if __name__ == "__main__":
    main()
