"""Montage of simulated localizers with their true plane lines: docs/simulated_localizers.png.

    PYTHONPATH=. python docs/simulated_localizers.py

One row per case (protocols, contrasts, poses and kinds vary); each row shows
the middle sagittal, coronal and axial images (or three slices of a 3D scout)
with the lines where the true MSP, ACPC, HIPPO_AX and OM planes cross them.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from isp_node.geometry.intersections import plane_image_line  # noqa: E402
from isp_node.simulation.cases import simulate_case  # noqa: E402

CASES = [  # seed, options
    (11, {"protocol": "three_plane", "kind": "usable"}),
    (12, {"protocol": "separate_stacks", "kind": "usable"}),
    (13, {"protocol": "scout_3d", "kind": "usable"}),
    (14, {"protocol": "three_plane", "kind": "usable", "head": "pydeface"}),
    (15, {"protocol": "separate_stacks", "kind": "usable"}),
    (16, {"protocol": "three_plane", "kind": "artifact"}),
    (17, {"protocol": "three_plane", "kind": "miss"}),
    (18, {"protocol": "separate_stacks", "kind": "object"}),
]
LINES = {"MSP": "tab:red", "ACPC": "tab:cyan", "HIPPO_AX": "tab:orange", "OM": "tab:green"}


def _shown(case) -> list[int]:
    """Indices of three images to show: the middle one of each stack."""
    by_orientation: dict[str, list[int]] = {}
    for i, s in enumerate(case.slices):
        by_orientation.setdefault(s.orientation, []).append(i)
    if len(by_orientation) >= 3:
        return [v[len(v) // 2] for v in by_orientation.values()][:3]
    (only,) = by_orientation.values()
    return [only[len(only) // 4], only[len(only) // 2], only[3 * len(only) // 4]]


def main() -> None:
    fig, axes = plt.subplots(len(CASES), 3, figsize=(7.5, 2.5 * len(CASES)))
    for row, (seed, options) in enumerate(CASES):
        case = simulate_case(seed, **options)
        for col, index in enumerate(_shown(case)):
            ax = axes[row, col]
            s = case.slices[index]
            ax.imshow(s.pixels, cmap="gray", vmin=0, vmax=np.percentile(s.pixels, 99.5))
            for key, colour in LINES.items():
                if key in case.planes:
                    line = plane_image_line(case.planes[key], s)
                    if line is not None:
                        ax.plot(line[:, 1], line[:, 0], color=colour, lw=0.8)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{s.orientation} [{case.labels[index]}]", fontsize=6)
        axes[row, 0].set_ylabel(f"seed {seed}\n{case.protocol.name}\n{case.kind}, {case.family}"
                                f"\n{case.head}", fontsize=6)
    handles = [plt.Line2D([], [], color=c, label=k) for k, c in LINES.items()]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=7)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    out = Path(__file__).parent / "simulated_localizers.png"
    fig.savefig(out, dpi=72)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
