"""Stages 1-2 on two real heads the networks never saw: a figure and a table.

What: each validation head (``chris_t1.nii.gz``, ``clinical_t1_electrodes.nii.gz``,
real whole-head T1 volumes) is imaged by six simulated localizers (three-plane,
separate stacks and 3D scout protocols; T1, T2 and PD looks; poses up to 20
degrees; one localizer centred 70 mm to the left, so it covers the brain only in
part). Each
localizer goes through ``Cascade.run`` exactly as in service. The figure shows,
per localizer, a few of its images titled with their predicted class and
probability, and the Coverage-Net brain mask (> 0.5) as a contour on the three
mid-slices of the 64^3 x 4 mm network input; the verdict, class counts, brain
volume and extent are printed, then a summary table.

Why: the networks were trained on simulated localizers of template heads only.
Real individuals tell whether they learned anatomy rather than the template:
brain masks should cover the brain (not scalp, face or neck) and images through
the brain should be classed anatomy. There is no ground truth here (these heads
carry no brain mask or landmarks): the figure is for looking at. The heads are
used as they are, without deformation.

The heads are for validation only: never copy them, or anything made from them,
into the repository (the figure goes to var/, which git ignores).

How, from the repository root (re-run with ``--models DIR`` for newer networks):

    TF_ENABLE_ONEDNN_OPTS=1 PYTHONPATH=. python docs/validation_heads.py \\
        [HEADS_DIR] [--models DIR] [--out var/validation_heads_stages12.png]

With ``--consistency`` (and Orientation-Net among the models) it instead images
each head in 8 poses (tilts up to 30 degrees, the three protocols) and prints,
per plane key, how far the planes found disagree once carried back into head
coordinates: stage 3's consistency measured on real anatomy.
"""

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from isp_node.cascade.evaluation import plane_spread  # noqa: E402
from isp_node.cascade.models import IQ_CLASSES  # noqa: E402
from isp_node.cascade.planner import Cascade  # noqa: E402
from isp_node.geometry.rotations import head_rotation, rigid  # noqa: E402
from isp_node.pipeline.slices import ImageSlice  # noqa: E402
from isp_node.pipeline.volume import Grid, localizer_centre, resample  # noqa: E402
from isp_node.simulation import anatomy, artifacts, contrast  # noqa: E402
from isp_node.simulation.acquisition import Subject, render, slice_geometry  # noqa: E402
from isp_node.simulation.cases import MAX_SIGNAL, PROFILE_SAMPLES  # noqa: E402
from isp_node.simulation.protocols import random_protocol  # noqa: E402
from isp_node.simulation.tensors import GRID_SHAPE, GRID_SPACING_MM  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HEADS = ("chris_t1.nii.gz", "clinical_t1_electrodes.nii.gz")
SNR = 30.0
BRAIN_DEPTH_MM = 75.0  # brain centre below the top of the head, roughly
CONSISTENCY_POSES = 8
PROTOCOLS = ("three_plane", "separate_stacks", "scout_3d")


@dataclass(frozen=True)
class Localizer:
    protocol: str
    family: str
    pose_deg: tuple[float, float, float]  # pitch, roll, yaw
    centre_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)  # localizer centre, scanner LPS

    @property
    def name(self) -> str:
        shift = " off-centre" if any(self.centre_mm) else ""
        return f"{self.protocol} {self.family} {'/'.join(f'{a:g}' for a in self.pose_deg)}{shift}"


LOCALIZERS = (
    Localizer("three_plane", "T1", (0, 0, 0)),
    Localizer("separate_stacks", "T2", (15, 0, 5)),
    Localizer("scout_3d", "T1", (-10, 8, 0)),
    Localizer("three_plane", "PD", (20, -10, 10)),
    Localizer("separate_stacks", "T1", (-20, 5, -15)),
    Localizer("three_plane", "T2", (5, 0, 0), centre_mm=(70, 0, 0)),  # partial coverage
)


def head_centre(volume: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """LPS point near the brain centre: the head's x/y centroid, BRAIN_DEPTH_MM below its top."""
    foreground = np.argwhere(volume > 0.15 * np.percentile(volume, 99.5))
    points = foreground @ affine[:3, :3].T + affine[:3, 3]
    top = points[:, 2].max()
    upper = points[points[:, 2] > top - 2 * BRAIN_DEPTH_MM]
    return np.array([*upper[:, :2].mean(axis=0), top - BRAIN_DEPTH_MM])


def head_pose(volume: np.ndarray, affine: np.ndarray, spec: Localizer) -> np.ndarray:
    """Head -> scanner (4x4): turned by the localizer's pose, brain centre at the origin."""
    rotation = head_rotation(*spec.pose_deg)
    return rigid(rotation, -rotation @ head_centre(volume, affine))


def simulate(volume: np.ndarray, affine: np.ndarray, spec: Localizer, seed: int) -> list[ImageSlice]:
    """Slices of one clean localizer of the undeformed head, brain centre at the scanner origin."""
    rng = np.random.default_rng(seed)
    subject = Subject(
        volume=volume, affine=affine, pose=head_pose(volume, affine, spec),
        contrast=contrast.ContrastMap.random(spec.family, rng,
                                             reference=contrast.white_matter_level(volume)),
        bias=artifacts.BiasField.random(rng, strength=0.2))
    slices = []
    for stack in random_protocol(rng, spec.protocol, np.array(spec.centre_mm)).stacks:
        offsets, weights = artifacts.slice_profile_weights(stack.thickness, PROFILE_SAMPLES, "box")
        geometries = [slice_geometry(stack, index) for index in range(stack.n_slices)]
        signals = render(subject, geometries, offsets, weights, phase_axis=stack.phase_axis) * MAX_SIGNAL
        for g, signal in zip(geometries, signals):
            pixels = artifacts.rician_noise(signal, MAX_SIGNAL / SNR, rng)
            slices.append(ImageSlice(pixels, g.position, g.row, g.col, g.spacing, g.thickness,
                                     uid=f"{seed}:{len(slices)}"))
    return slices


def consistency(cascade: Cascade, volume: np.ndarray, affine: np.ndarray,
                seed: int) -> dict[str, tuple[float, float, int]]:
    """Stage 3 on one head in `CONSISTENCY_POSES` poses (tilts up to 30 degrees, the three
    protocols): per plane key, the spread of the planes carried back into head
    coordinates (RMS angle in degrees, SD of position in mm) and how often it was found."""
    rng = np.random.default_rng(seed)
    found: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for i in range(CONSISTENCY_POSES):
        spec = Localizer(PROTOCOLS[i % len(PROTOCOLS)], "T1",
                         tuple(float(a) for a in rng.uniform(-1, 1, 3) * (30, 15, 15)))
        back = np.linalg.inv(head_pose(volume, affine, spec))
        for plane in cascade.run(simulate(volume, affine, spec, seed + i))["planes"]:
            normal, centre = np.asarray(plane["normal"]), np.asarray(plane["centre"])
            found.setdefault(plane["key"], []).append((back[:3, :3] @ normal,
                                                       back[:3, :3] @ centre + back[:3, 3]))
    return {key: (*plane_spread(planes), len(planes)) for key, planes in found.items()
            if len(planes) >= 2}


def shown_images(slices: list[ImageSlice], result: dict, n: int = 4) -> list[int]:
    """The middle image of each orientation (quartiles of a single stack), plus the image
    least likely to be anatomy."""
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(slices):
        groups.setdefault(s.orientation, []).append(i)
    picks = [g[len(g) // 2] for g in groups.values()] if len(groups) > 1 else \
        [groups[slices[0].orientation][k * len(slices) // 4] for k in (1, 2, 3)]
    anatomy_p = [img["probabilities"][IQ_CLASSES.index("anatomy")] for img in result["images"]]
    least = int(np.argmin(anatomy_p))
    return (picks + [least] if least not in picks else picks)[:n]


def draw_row(axes, slices: list[ImageSlice], result: dict, image: np.ndarray,
             brain: np.ndarray, label: str) -> None:
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax, i in zip(axes[:4], shown_images(slices, result)):
        s, info = slices[i], result["images"][i]
        ax.imshow(s.pixels, cmap="gray", vmin=0, vmax=np.percentile(s.pixels, 99.5))
        p = max(info["probabilities"])
        ax.set_title(f"{s.orientation[:3]} #{i}: {info['class']} {p:.2f}", fontsize=7,
                     color="black" if info["class"] == "anatomy" else "red")
    mid = [n // 2 for n in image.shape]
    views = {"sagittal": (np.s_[mid[0], :, :], "lower"), "coronal": (np.s_[:, mid[1], :], "lower"),
             "axial": (np.s_[:, :, mid[2]], "upper")}
    for ax, (view, (cut, origin)) in zip(axes[4:], views.items()):
        ax.imshow(image[cut].T, cmap="gray", origin=origin, vmin=0, vmax=1)
        if brain[cut].any():
            ax.contour(brain[cut].T.astype(float), levels=[0.5], colors="lime", linewidths=0.8,
                       origin=origin)
        ax.set_title(f"input {view}", fontsize=7)
    axes[0].set_ylabel(label, fontsize=7)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("heads", nargs="?", type=Path, default=ROOT.parent / "shared" / "validation-heads",
                        help="folder holding the validation heads (default: ../shared/validation-heads)")
    parser.add_argument("--models", type=Path, default=None, help="trained networks (default: Cascade's)")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "validation_heads_stages12.png")
    parser.add_argument("--consistency", action="store_true",
                        help="instead: stage 3 on each head in 8 poses, the spread of its planes")
    args = parser.parse_args()
    missing = [h for h in HEADS if not (args.heads / h).is_file()]
    if missing:
        sys.exit(f"validation heads not found: {', '.join(str(args.heads / h) for h in missing)} "
                 "(give the folder holding them as the first argument)")

    cascade = Cascade(args.models)
    if args.consistency:
        if cascade.orientation is None:
            sys.exit("--consistency needs Orientation-Net among the models")
        for h, head in enumerate(HEADS):
            volume, affine = anatomy.read_nifti(args.heads / head)
            print(f"{head}: {CONSISTENCY_POSES} poses; plane key, RMS angle (deg), SD position "
                  "(mm), times found")
            for key, (angle, distance, n) in consistency(cascade, volume, affine, 1000 * h).items():
                print(f"  {key:12} {angle:6.2f} {distance:6.2f} {n:3d}")
        return
    n_rows = len(HEADS) * len(LOCALIZERS)
    fig, axes = plt.subplots(n_rows, 7, figsize=(15, 2.3 * n_rows))
    table = []
    for h, head in enumerate(HEADS):
        volume, affine = anatomy.read_nifti(args.heads / head)
        for k, spec in enumerate(LOCALIZERS):
            slices = simulate(volume, affine, spec, seed=100 * h + k)
            result = cascade.run(slices)
            grid = Grid.centred(localizer_centre(slices), GRID_SHAPE, GRID_SPACING_MM)
            tensor = resample(slices, grid).tensor()
            brain = cascade.coverage(tensor[None]).numpy()[0, ..., 0] > 0.5
            b = result["brain"]
            size = np.subtract(b["high_lps"], b["low_lps"]) if "low_lps" in b else np.zeros(3)
            print(f"{head} | {spec.name}: {len(slices)} images\n"
                  f"  verdict  {'usable' if result['usable'] else 'NOT usable'}: {result['message']}\n"
                  f"  classes  {result['image_classes']}\n"
                  f"  brain    {b['volume_ml']} ml, extent {b.get('low_lps')} to {b.get('high_lps')} "
                  f"mm LPS (size {size.round(0).tolist()} mm)")
            counts = result["image_classes"]
            table.append((head.split(".")[0][:9], spec.name, len(slices), counts["anatomy"],
                          counts["artifact"], counts["irrelevant"], b["volume_ml"],
                          "x".join(f"{v:.0f}" for v in size), "yes" if result["usable"] else "no"))
            draw_row(axes[len(LOCALIZERS) * h + k], slices, result, tensor[..., 0], brain,
                     f"{head.split('.')[0]}\n{spec.name}\n{b['volume_ml']:.0f} ml, "
                     f"{'usable' if result['usable'] else 'NOT usable'}")
    print(f"\n{'head':9} {'localizer':32} {'n':>3} {'anat':>4} {'art':>4} {'irr':>4} "
          f"{'brain ml':>8} {'size mm':>12} usable")
    for row in table:
        print(f"{row[0]:9} {row[1]:32} {row[2]:3d} {row[3]:4d} {row[4]:4d} {row[5]:4d} "
              f"{row[6]:8.0f} {row[7]:>12} {row[8]}")
    fig.suptitle(f"Stages 1-2 on validation heads (models: {args.models or 'default'}); "
                 "green: Coverage-Net brain > 0.5 on the 64^3 x 4 mm input", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.99))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=70)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
