"""The cascade as the worker's planner: image quality, brain coverage and, where its
network is installed, the planes.

`make_planner()` loads the networks once per worker process; the returned
planner runs on each completed localizer series and returns the verdict, the
per-image classes, the brain's extent in patient coordinates and the planes
(stage 3 runs only when `orientation_net.keras` is among the models and the
localizer is usable).
"""

import hashlib
import os
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from isp_node.cascade.brain import (
    MAP_EXTENT_THRESHOLD, brain_points, brain_summary, image_brain_mm2, run_off_sides)
from isp_node.cascade.inference import load_model, warm_function
from isp_node.cascade.models import IQ_CLASSES
from isp_node.cascade.orientation import (
    COMMISSURE_LOOK_WEIGHT, COMMISSURE_SHARE, COMMISSURE_WEIGHT, FINE_KEYS, FINE_LANDMARKS,
    MSP_LANDMARKS, FittedPlane, commissure_grid, fine_grid, frame_from,
    head_frame_transform, iac_planes, landmark_points, moved_fit, orientation_grid,
    perpendicular_to, planes_from_outputs, planned_planes, within)
from isp_node.cascade.verdict import image_classes, localizer_verdict
from isp_node.pipeline.image_input import iq_inputs
from isp_node.pipeline.loader import LocalizerError, load_localizer
from isp_node.pipeline.planner import PlanRequest, Planner
from isp_node.geometry import PLANE_KEYS
from isp_node.geometry.catalogue import FRAME_NORMALS, frame_constrained_normal, make_plane
from isp_node.geometry.sizing import BRAIN_PLANES, sized_to_brain
from isp_node.pipeline.volume import Grid, LocalizerStacks, localizer_centre
from isp_node.simulation.tensors import GRID_SHAPE, GRID_SPACING_MM

MODELS_ENV = "ISP_NODE_MODELS"
IQ_MODEL = "localizer_iq_net.keras"
COVERAGE_MODEL = "coverage_net.keras"
ORIENTATION_MODEL = "orientation_net.keras"
FINE_MODEL = "orientation_fine_net.keras"
COMMISSURE_MODEL = "orientation_commissure_net.keras"  # the commissure look, where installed
HEADS = ("distance", "heat")  # the layers of Orientation-Net's two maps (`build_orientation_net`)
LANDMARK_HEAD = "landmarks"  # and of its fine stage's landmark head, where it has one
# the first stage looks twice: the second time in the head frame of its first MSP and AC-PC
# plane (the planes it keeps 0.3-2.6 degrees more consistent on the real heads, 0.2-1.3 closer
# on the unseen head; about 90 ms: models/orientation_net.md)
FIRST_PASSES = 2
# the fine stage looks twice: the second time in the head frame of its own first AC-PC plane
# (the hippocampal planes 0.2-0.5 degree better, the real heads' planes more consistent; about
# 65 ms: models/orientation_fine_net.md)
FINE_PASSES = 2


def models_dir() -> Path:
    """Where the trained networks are: $ISP_NODE_MODELS, the source checkout's models/,
    or the installed copy under <prefix>/share/isp-node/models."""
    candidates = [Path(os.environ[MODELS_ENV])] if os.environ.get(MODELS_ENV) else []
    candidates += [Path(__file__).resolve().parents[2] / "models",
                   Path(sys.prefix) / "share" / "isp-node" / "models"]
    for candidate in candidates:
        if (candidate / COVERAGE_MODEL).exists():
            return candidate
    raise FileNotFoundError(f"no trained models found (looked in {', '.join(map(str, candidates))}); "
                            f"set {MODELS_ENV}")


def model_version(path: Path) -> str:
    """A network's file name and the start of its SHA-256: which weights made a result."""
    return f"{path.name} sha256:{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"


class Cascade:
    """The cascade's networks loaded and warm (Orientation-Net and its fine stage only if
    installed)."""

    def __init__(self, directory: Path | None = None) -> None:
        directory = directory or models_dir()
        self.iq = warm_function(load_model(directory / IQ_MODEL))
        self.coverage = warm_function(load_model(directory / COVERAGE_MODEL))
        self.models = {"LocalizerIQ-Net": model_version(directory / IQ_MODEL),
                       "Coverage-Net": model_version(directory / COVERAGE_MODEL)}
        # stage 1 runs beside the resampling for stage 2: each leaves the cores partly idle
        # (with two smaller savings, p95 150-152 -> 134-142 ms: bench/cascade_speed.py)
        self._stage_one = ThreadPoolExecutor(1, thread_name_prefix="isp-node-stage-one")
        self.orientation = self.fine = None
        self.fine_keys = FINE_KEYS  # the planes the fine stage gives (the first stage the others)
        self.fine_landmarks = False  # whether the fine stage finds landmarks (and so the MSP)
        self.commissure = None  # the commissure look (AC and PC again, finer), if installed
        if (directory / ORIENTATION_MODEL).exists():
            self.orientation = warm_function(load_model(directory / ORIENTATION_MODEL), HEADS)
            self.models["Orientation-Net"] = model_version(directory / ORIENTATION_MODEL)
            if (directory / FINE_MODEL).exists():
                fine = load_model(directory / FINE_MODEL)
                self.fine_landmarks = LANDMARK_HEAD in {layer.name for layer in fine.layers}
                self.fine = warm_function(fine, HEADS + ((LANDMARK_HEAD,) if self.fine_landmarks else ()))
                self.models["Orientation-Net fine stage"] = model_version(directory / FINE_MODEL)
                if self.fine_landmarks and (directory / COMMISSURE_MODEL).exists():
                    self.commissure = warm_function(load_model(directory / COMMISSURE_MODEL))
                    self.models["Orientation-Net commissure look"] = model_version(
                        directory / COMMISSURE_MODEL)

    def planes(self, stacks: LocalizerStacks, brain: dict, brain_lps: np.ndarray) -> list[dict]:
        """Stage 3: the planes (planner JSON entries) on the grid centred on the brain, looked
        at `FIRST_PASSES` times (from the second on, in the head frame of the MSP and ACPC
        found so far); then, with the fine stage installed, the `fine_keys` on the fine grid
        about the AC-PC midpoint, in the head frame too (`FINE_PASSES` times; a look before the
        last gives only the AC-PC plane that the next is centred on and turned by; where it
        finds the midline landmarks, each look turns the first stage's MSP towards them, and
        the last one's MSP is kept). The first
        stage fits a fine key itself only where the fine stage's last look could not. The IAC
        planes are then pitched by the AC-PC plane, and the optic nerves' sagittal planes
        made perpendicular to OPTIC_AX, as the catalogue defines them. The planes of the
        whole brain are sized to the map's brain voxels `brain_lps` (`geometry.sizing`)."""
        size = float(np.max(np.subtract(brain["high_lps"], brain["low_lps"])))
        grid = orientation_grid(np.asarray(brain["centre_lps"]), size)
        first_keys = PLANE_KEYS if self.fine is None else tuple(
            k for k in PLANE_KEYS if k not in self.fine_keys or k in ("MSP", "ACPC"))
        decode = self._look(self.orientation, stacks, grid)
        frame_only = FIRST_PASSES > 1  # the first look gives the frame, the last the planes
        fitted = decode(("MSP", "ACPC") if frame_only else first_keys)
        msp = fitted.get("MSP")  # the first look's, refined by the symmetry, is kept
        for _ in range(FIRST_PASSES - 1):
            if not fitted:
                break
            turned = self._look(self.orientation, stacks, grid, fitted)
            found = turned(first_keys, msp=msp)
            if not found:
                break
            decode, fitted, frame_only = turned, found, False
        if fitted and frame_only:  # no look in the head frame found anything
            fitted = decode(first_keys)
        if self.fine is not None and fitted:
            symmetric = fitted["MSP"]
            turned_msp = ("MSP",) if self.fine_landmarks else ()
            for fine_pass in range(1, FINE_PASSES + 1):
                fine = self._look(self.fine, stacks, fine_grid(fitted["ACPC"].plane.centre), fitted,
                                  centre_from_acpc_mm=(0.0, 0.0, 0.0))
                fitted |= fine(turned_msp + (self.fine_keys if fine_pass == FINE_PASSES else ("ACPC",)),
                               msp=symmetric)
            missing = tuple(k for k in self.fine_keys if k not in fitted)
            if missing:
                fitted |= decode(missing, msp=msp)
            if self.fine_landmarks:  # the first stage's planes that the catalogue ties to the
                # MSP follow the one the fine stage turned (turning the others too loses 0.1-0.3
                # degree on them: models/orientation_fine_net.md)
                frame = frame_from(fitted["MSP"].plane.normal, fitted["ACPC"].plane.normal)
                tied = [key for key in FRAME_NORMALS if key != "MSP" and key in fitted
                        and (key not in self.fine_keys or key in missing)]
                for key in tied:
                    plane = fitted[key].plane
                    fitted[key] = replace(fitted[key], plane=make_plane(
                        key, plane.centre, frame_constrained_normal(key, plane.normal, frame), frame))
        if fitted:  # with the MSP and ACPC
            frame = frame_from(fitted["MSP"].plane.normal, fitted["ACPC"].plane.normal)
            if fitted.keys() >= {"IAC_AX", "IAC_COR"}:
                fitted["IAC_AX"], fitted["IAC_COR"] = iac_planes(fitted["IAC_AX"], fitted["IAC_COR"], frame)
            for key in ("OPTIC_SAG_L", "OPTIC_SAG_R"):
                if key in fitted and "OPTIC_AX" in fitted:
                    fitted[key] = perpendicular_to(fitted[key], key, fitted["OPTIC_AX"].plane.normal, frame)
        for key in set(BRAIN_PLANES) & set(fitted):
            fitted[key] = replace(fitted[key], plane=sized_to_brain(fitted[key].plane, brain_lps))
        return planned_planes({k: fitted[k] for k in PLANE_KEYS if k in fitted})

    def _look(self, network, stacks: LocalizerStacks, grid: Grid,
              fitted: dict[str, FittedPlane] | None = None,
              **options):
        """`network`'s outputs on `grid`, the localizer turned about the grid's centre into
        the head frame of the `fitted` MSP and ACPC if given (the head upright: the fine stage
        learnt it so, and the first stage's planes agree better with themselves so); returns
        their decoder: (keys, an MSP found before) ->
        fitted planes, carried back into the scanner's frame."""
        to_head = np.eye(4) if fitted is None else head_frame_transform(
            fitted["MSP"].fit.normal, fitted["ACPC"].fit.normal, grid.centre)
        volume = stacks.resample(grid, to_head)
        distance, heat, *landmarks = self._outputs(network, volume)
        points = landmark_points(landmarks[0], grid) if landmarks else None
        commissures, weight = None if points is None else points[:2], COMMISSURE_WEIGHT
        if points is not None and self.commissure is not None:
            commissures = self._commissures(stacks, to_head, points[:2])
            weight = COMMISSURE_LOOK_WEIGHT
        back = np.linalg.inv(to_head)

        def decode(keys: tuple[str, ...], msp: FittedPlane | None = None) -> dict[str, FittedPlane]:
            found = self._decode(grid, distance, heat, volume, points, commissures, keys=keys,
                                 **options, commissure_weight=weight,
                                 msp=None if msp is None else moved_fit(msp, to_head))
            return {key: moved_fit(plane, back) for key, plane in found.items()}

        return decode

    def _commissures(self, stacks: LocalizerStacks, to_head: np.ndarray,
                     ac_pc: np.ndarray) -> np.ndarray:
        """AC and PC (2, 3) found again by the commissure look on its 1 mm grid about their
        midpoint, in the same head frame, and averaged with `ac_pc` as found before."""
        grid = commissure_grid(ac_pc.mean(axis=0))
        logits = np.asarray(self.commissure(stacks.resample(grid, to_head).tensor()[None]))[0]
        return (1 - COMMISSURE_SHARE) * ac_pc + COMMISSURE_SHARE * landmark_points(logits, grid)[:2]

    @staticmethod
    def _outputs(network, volume) -> tuple[np.ndarray, ...]:
        """A network's distance and heat maps (X, Y, Z, K each), and its landmark logits if it
        has a landmark head, on its input volume, read-only: views of the tensors' buffers
        (`.numpy()` would copy 7-15 MB each, 3-4 ms)."""
        return tuple(np.asarray(head)[0] for head in network(volume.tensor()[None]))

    @staticmethod
    def _decode(grid: Grid, distance: np.ndarray, heat: np.ndarray, volume,
                points: np.ndarray | None, commissures: np.ndarray | None,
                **options) -> dict[str, FittedPlane]:
        """The planes of a network's maps; where its landmark head found the `points`
        (`FINE_LANDMARKS`), the ACPC plane through the `commissures` (AC, PC: the points' own,
        or the commissure look's) and the MSP turned towards the `MSP_LANDMARKS` found inside
        the grid."""
        if points is not None:
            options["commissures"] = (commissures[0], commissures[1])
            midline = points[[FINE_LANDMARKS.index(k) for k in MSP_LANDMARKS]]
            options["midline"] = midline[within(grid, midline)]
        return planes_from_outputs(grid, distance, heat, volume=volume, **options)

    def run(self, slices) -> dict:
        """Verdict, per-image classes, brain coverage and planes of one localizer's slices."""
        started = time.perf_counter()
        judged = self._stage_one.submit(lambda: self.iq(iq_inputs(slices)[..., None]).numpy())
        grid = Grid.centred(localizer_centre(slices), GRID_SHAPE, GRID_SPACING_MM)
        stacks = LocalizerStacks(slices)
        volume = stacks.resample(grid)
        probability = self.coverage(volume.tensor()[None]).numpy()[0, ..., 0]
        probabilities = judged.result()
        brain = brain_summary(probability, grid, MAP_EXTENT_THRESHOLD)
        frames = np.stack([s.frame for s in slices])
        areas = image_brain_mm2(probability, grid, frames)
        classes = [IQ_CLASSES[i] for i in image_classes(probabilities, areas)]
        verdict = localizer_verdict(classes, [s.orientation for s in slices], brain["volume_ml"],
                                    run_off_sides(brain, frames))
        result = {
            "usable": verdict.usable,
            "message": verdict.message,
            "image_classes": verdict.counts,
            "images": [{"uid": s.uid, "orientation": s.orientation, "class": c,
                        "probabilities": [round(float(v), 4) for v in p],
                        "brain_mm2": round(float(a))}
                       for s, c, p, a in zip(slices, classes, probabilities, areas)],
            "brain": brain,
            "planes": (self.planes(stacks, brain, brain_points(probability, grid))
                       if self.orientation and verdict.usable else []),
            "models": self.models,
        }
        result["seconds"] = round(time.perf_counter() - started, 4)
        return result


def plan_files(cascade: Cascade, files: Iterable[Path]) -> dict:
    """The planner's result for one localizer's DICOM files: files that cannot be read
    are listed in "skipped_files"; with no readable localizer image the result is not
    usable and says why."""
    try:
        loaded = load_localizer(files)
    except LocalizerError as exc:
        return {"planner": "cascade", "usable": False, "message": str(exc), "planes": []}
    result = cascade.run(loaded.slices)
    result["planner"] = "cascade"
    result["skipped_files"] = loaded.problems
    return result


def make_planner() -> Planner:
    """Worker entry point (``[jobs] planner = "isp_node.cascade.planner:make_planner"``)."""
    cascade = Cascade()

    def plan(request: PlanRequest) -> dict:
        return plan_files(cascade, request.files + request.companions)

    return plan
