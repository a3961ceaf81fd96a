"""Metrics of the cascade's networks on held-out simulated localizers."""

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from isp_node.cascade import datasets
from isp_node.cascade.brain import (
    MAP_EXTENT_THRESHOLD, RUN_OFF_MM, THRESHOLD, brain_extent, brain_points, brain_summary,
    image_brain_mm2, run_off_sides)
from isp_node.cascade.models import IQ_CLASSES
from isp_node.cascade.orientation import FINE_SPACING_MM, frame_from, plane_array
from isp_node.cascade.verdict import MIN_BRAIN_ML, image_classes, localizer_verdict
from isp_node.geometry import PLANE_KEYS
from isp_node.geometry.catalogue import make_plane
from isp_node.geometry.sizing import BRAIN_PLANES, EDGE_ALLOWANCE_MM, sized_to_brain
from isp_node.pipeline.loader import load_localizer
from isp_node.pipeline.volume import Grid
from isp_node.simulation.cases import ANATOMY_MIN_BRAIN_MM2, SimulatedCase, simulate_case
from isp_node.simulation.tensors import GRID_SHAPE, GRID_SPACING_MM


def predict_in_batches(model, x: np.ndarray, batch: int) -> np.ndarray:
    """Outputs of `model` (a network in inference mode, such as the node's warm function
    of it) for `x`, in fixed-size batches."""
    outputs = [model(x[i:i + batch].astype(np.float32)).numpy() for i in range(0, len(x), batch)]
    return np.concatenate(outputs)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return float(2 * np.logical_and(a, b).sum() / total) if total else 1.0


def evaluate_coverage(model, shards: list[Path]) -> dict:
    """Coverage-Net's `coverage_metrics` on the cases of `shards` whose images show brain, and
    `drawn_without_brain` on the others (noise-only, off-head and non-head localizers)."""
    data = datasets.load_shards(shards, ("volumes", "brains", "usable", "origins", "planes",
                                         "image_frames", "owners"))
    keep = data["brains"].reshape(len(data["brains"]), -1).max(axis=1) > 127
    truth = data["brains"][keep].astype(np.float32) / 255
    predicted = predict_in_batches(model, data["volumes"][keep], 2)[..., 0]
    results = coverage_metrics(predicted, truth, data["usable"][keep])
    usable = data["usable"][keep]  # of the kept cases
    cases = np.flatnonzero(keep)[usable]  # the same, as indices into the shards' cases
    results["brain_planes"] = brain_plane_coverage(
        predicted[usable], truth[usable], data["origins"][cases], data["planes"][cases])
    results["run_off"] = run_off_metrics(
        predicted[usable], truth[usable], data["origins"][cases],
        datasets.per_case(data["image_frames"], data["owners"], cases))
    results.update(drawn_without_brain(predict_in_batches(model, data["volumes"][~keep], 2)[..., 0]))
    return results


def brain_plane_coverage(predicted: np.ndarray, truth: np.ndarray, origins: np.ndarray,
                         planes: np.ndarray, allowance_mm: float = EDGE_ALLOWANCE_MM) -> dict:
    """How the planes of the whole brain, sized to brain maps (n, x, y, z) as the node sizes
    them (`geometry.sizing`), cover the true brain, per plane key: each true plane (centre and
    normal from `planes`, the shards' (n, K, 2, 3); row and column as the catalogue makes
    them), the true brain's voxels outside its field of view or slab (ml: the share of
    localizers with any, their 95th percentile and largest), and its slices against those the
    true brain needs with no allowance (median of the difference: what the allowance costs).
    `allowance_mm` as `sized_to_brain`'s, by default the node's."""
    voxel_ml = GRID_SPACING_MM**3 / 1000
    outside = {key: [] for key in BRAIN_PLANES}
    extra = {key: [] for key in BRAIN_PLANES}
    for p, t, origin, array in zip(predicted, truth, origins, planes):
        grid = Grid(GRID_SHAPE, GRID_SPACING_MM, np.asarray(origin, dtype=float))
        frame = frame_from(array[PLANE_KEYS.index("MSP"), 1], array[PLANE_KEYS.index("ACPC"), 1])
        drawn, true = brain_points(p, grid), brain_points(t, grid, THRESHOLD)
        for key in BRAIN_PLANES:
            centre, normal = array[PLANE_KEYS.index(key)]
            sized = sized_to_brain(make_plane(key, centre, normal, frame), drawn,
                                   allowance_mm=allowance_mm)
            offsets = (true - sized.centre) @ np.stack([sized.row, sized.col, sized.normal]).T
            half = np.array([*sized.fov_mm, sized.slab_mm]) / 2
            outside[key].append(float(np.any(np.abs(offsets) > half, axis=1).sum() * voxel_ml))
            needed = np.ceil(2 * np.abs(offsets[:, 2]).max(initial=0.0) / sized.spacing_mm)
            extra[key].append(sized.n_slices - needed)
    out = {}
    for key in BRAIN_PLANES:
        cut = np.array(outside[key])
        out[key] = {"cut_share": float(np.mean(cut > 0)) if len(cut) else None,
                    "outside_ml_p95": float(np.percentile(cut, 95)) if len(cut) else None,
                    "outside_ml_max": float(cut.max(initial=0.0)),
                    "extra_slices_median": float(np.median(extra[key])) if extra[key] else None}
    return out


def run_off_metrics(predicted: np.ndarray, truth: np.ndarray, origins: np.ndarray,
                    frames: list[np.ndarray], beyond_mm: float = RUN_OFF_MM) -> dict:
    """How well the verdict's warning of a brain running off the localizer's images
    (`brain.run_off_sides` on brain maps (n, x, y, z), each localizer's image `frames`,
    the map reaching `beyond_mm` past them) finds the localizers whose true brain runs over
    `RUN_OFF_MM` past them: how many there are, how many are warned of, how many of those
    are found, and the sides named where the truth does not run off."""
    truly = warned = found = wrong = 0
    for p, t, origin, f in zip(predicted, truth, origins, frames):
        grid = Grid(GRID_SHAPE, GRID_SPACING_MM, np.asarray(origin, dtype=float))
        named = set(run_off_sides(brain_summary(p, grid, MAP_EXTENT_THRESHOLD), f, beyond_mm))
        real = set(run_off_sides(brain_summary(t, grid), f, RUN_OFF_MM + 1e-6))
        truly, warned, found = truly + bool(real), warned + bool(named), found + bool(real & named)
        wrong += len(named - real)
    return {"localizers": len(frames), "brain_runs_off": truly, "warned": warned,
            "warned_and_runs_off": found, "sides_named_wrongly": wrong}


def drawn_without_brain(predicted: np.ndarray) -> dict:
    """How much brain maps (n, x, y, z) draw for localizers that show none (ml): a map
    should be empty there, and one over the verdict's `MIN_BRAIN_ML` reads as a brain
    covered."""
    grid = Grid(tuple(np.shape(predicted)[1:]), GRID_SPACING_MM, np.zeros(3))
    ml = np.array([brain_summary(p, grid)["volume_ml"] for p in predicted])
    if not len(ml):
        return {"no_brain_cases": 0, "no_brain_drawn_ml_median": None,
                "no_brain_drawn_ml_max": None, "no_brain_drawn_over_min_ml": None}
    return {"no_brain_cases": int(len(ml)), "no_brain_drawn_ml_median": float(np.median(ml)),
            "no_brain_drawn_ml_max": float(ml.max()),
            "no_brain_drawn_over_min_ml": float(np.mean(ml >= MIN_BRAIN_ML))}


def coverage_metrics(predicted: np.ndarray, truth: np.ndarray, usable: np.ndarray,
                     extent_threshold: float = MAP_EXTENT_THRESHOLD) -> dict:
    """Dice and brain-extent error of brain maps (n, x, y, z) on the LPS-aligned grid against
    the truth (the map's extent read at `extent_threshold`, by default as the node reads
    it): per axis the larger of the two ends' errors (mm, sub-voxel), over all cases and
    over the usable localizers alone (the only ones the planner sizes planes from; a
    localizer that misses part of the brain cannot show where it ends), and where the ends
    lie on the usable ones (median signed error, predicted minus true, LPS mm); and, on the
    usable ones, the slope of the predicted brain size on the true one per axis (1 where the
    network follows each individual, under 1 where it draws brains towards its training
    heads' size)."""
    usable = np.asarray(usable, dtype=bool)
    dices, ends, sizes = [], [], []
    for p, t in zip(predicted, truth):
        dices.append(dice(p > 0.5, t > 0.5))
        ep, et = brain_extent(p, extent_threshold), brain_extent(t)
        ends.append(np.full(6, np.inf) if ep is None else
                    GRID_SPACING_MM * np.concatenate([ep[0] - et[0], ep[1] - et[1]]))
        sizes.append(np.full((2, 3), np.nan) if ep is None else
                     GRID_SPACING_MM * np.stack([ep[1] - ep[0], et[1] - et[0]]))
    dices, ends, sizes = np.array(dices), np.array(ends).reshape(-1, 6), np.array(sizes)
    errors = np.maximum(np.abs(ends[:, :3]), np.abs(ends[:, 3:]))
    found = usable & np.isfinite(ends).all(axis=1)
    signed = np.median(ends[found], axis=0) if found.any() else np.full(6, np.nan)
    slopes = [float(np.polyfit(sizes[found, 1, axis], sizes[found, 0, axis], 1)[0])
              if found.sum() > 2 and np.ptp(sizes[found, 1, axis]) > 0 else None
              for axis in range(3)]
    return {"cases": int(len(dices)), "dice_median": float(np.median(dices)),
            "dice_p5": float(np.percentile(dices, 5)), "dice_min": float(dices.min()),
            "extent_error_mm_median": np.median(errors, axis=0).tolist(),
            "extent_error_mm_p95": np.percentile(errors, 95, axis=0).tolist(),
            "extent_within_3mm": float(np.mean(np.all(errors <= 3.0, axis=1))),
            "usable_cases": int(usable.sum()),
            "extent_error_mm_median_usable": (np.median(errors[usable], axis=0).tolist()
                                              if usable.any() else None),
            "end_error_mm_median_usable": {"low": signed[:3].tolist(), "high": signed[3:].tolist()},
            "size_slope_usable": slopes}


def evaluate_iq(iq_model, coverage_model, shards: list[Path]) -> dict:
    """Per-image accuracy and the study-level verdict against the simulated truth, with the
    classes as the node gives them (`verdict.image_classes`: LocalizerIQ-Net's, irrelevant
    where Coverage-Net finds no brain) and, apart, the network's alone."""
    data = datasets.load_shards(shards, ("images", "labels", "owners", "usable", "volumes",
                                         "origins", "orientations", "brain_mm2", "image_frames",
                                         "kinds"))
    probabilities = predict_in_batches(iq_model, data["images"][..., None], 256)
    brain = predict_in_batches(coverage_model, data["volumes"], 2)[..., 0]
    usable = data["usable"]
    predicted = np.zeros(len(probabilities), int)
    flagged = np.zeros(len(usable), bool)
    missed_kinds: list[str] = []
    for case in range(len(usable)):
        images = data["owners"] == case
        grid = Grid(GRID_SHAPE, GRID_SPACING_MM, data["origins"][case].astype(float))
        predicted[images] = image_classes(
            probabilities[images], image_brain_mm2(brain[case], grid, data["image_frames"][images]))
        classes = [IQ_CLASSES[c] for c in predicted[images]]
        verdict = localizer_verdict(classes, list(data["orientations"][images]),
                                    brain_summary(brain[case], grid)["volume_ml"])
        flagged[case] = not verdict.usable
        if not usable[case] and verdict.usable:
            missed_kinds.append(str(data["kinds"][case]))
    labels = data["labels"]
    confusion = np.zeros((3, 3), int)
    np.add.at(confusion, (labels, predicted), 1)
    area = data["brain_mm2"] / ANATOMY_MIN_BRAIN_MM2
    clear = ~((area > 0.5) & (area < 1.5))
    return {
        "images": int(len(labels)),
        "accuracy": float(np.mean(predicted == labels)),
        "accuracy_network_alone": float(np.mean(probabilities.argmax(axis=1) == labels)),
        "accuracy_clear_images": float(np.mean(predicted[clear] == labels[clear])),
        "borderline_images": int((~clear).sum()),
        "recall_per_class": {c: float(confusion[i, i] / max(confusion[i].sum(), 1))
                             for i, c in enumerate(IQ_CLASSES)},
        "confusion_rows_truth_cols_predicted": confusion.tolist(),
        "cases": int(len(usable)),
        "unusable_cases": int((~usable).sum()),
        "unusable_flagged": float(flagged[~usable].mean()) if (~usable).any() else 1.0,
        "unusable_missed_kinds": missed_kinds,
        "usable_flagged": float(flagged[usable].mean()) if usable.any() else 0.0,
    }


def evaluate_through_dicom(cascade, seeds: range, head: str, unusable_fraction: float = 0.5,
                           progress: bool = True) -> dict:
    """Per-image classes and the verdict on localizers written as DICOM at full resolution
    and read back by the node's loader: what the node sees in service, not the fast path;
    the per-image accuracy also by the usable localizers' protocol and contrast (a 3D scout
    has ten times the images of three-plane slices, and weighs as much in the total)."""
    confusion = np.zeros((3, 3), int)
    by_kind: dict[str, list[int]] = {}  # "protocol contrast" or the unusable kind -> right, all
    flagged = {True: [], False: []}
    missed: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="isp-node-eval-"))
    try:
        for seed in tqdm(seeds, desc=f"through DICOM ({head})", unit="localizer",
                         disable=not progress):
            case = simulate_case(seed, head=head, unusable_fraction=unusable_fraction)
            truth = {image["sop_instance_uid"]: image["label"] for image in case.truth()["images"]}
            result = cascade.run(load_localizer(case.write(work / str(seed))).slices)
            shutil.rmtree(work / str(seed))
            tally = by_kind.setdefault(f"{case.protocol.name} {case.family}" if case.usable
                                       else f"unusable: {case.kind}", [0, 0])
            for image in result["images"]:
                confusion[IQ_CLASSES.index(truth[image["uid"]]), IQ_CLASSES.index(image["class"])] += 1
                tally[0] += truth[image["uid"]] == image["class"]
                tally[1] += 1
            flagged[case.usable].append(not result["usable"])
            if not case.usable and result["usable"]:
                missed.append(case.kind)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    images = int(confusion.sum())
    return {"localizers": len(seeds), "images": images,
            "accuracy": float(np.trace(confusion) / max(images, 1)),
            "confusion_rows_truth_cols_predicted": confusion.tolist(),
            "accuracy_by_kind": {kind: {"images": n, "accuracy": round(right / max(n, 1), 4)}
                                 for kind, (right, n) in sorted(by_kind.items())},
            "unusable_flagged": float(np.mean(flagged[False])) if flagged[False] else 1.0,
            "unusable_missed_kinds": missed,
            "usable_flagged": float(np.mean(flagged[True])) if flagged[True] else 0.0}


TILT_BANDS_DEG = {"under 10": (0.0, 10.0), "10-20": (10.0, 20.0), "20 or more": (20.0, 91.0)}
TILT_KEYS = ("MSP", "ACPC", "HIPPO_AX", "HIPPO_COR")
PLANNED_MM = FINE_SPACING_MM  # localizers to plan are rendered no finer than the finest grid
# a plane this far off (either) should not be OK (the status's calibration target)
BAD_ANGLE_DEG, BAD_DISTANCE_MM = 3.0, 3.0


def is_bad_plane(angle_deg: float, distance_mm: float) -> bool:
    """Whether a plane's error makes it one the status must not call OK."""
    return angle_deg > BAD_ANGLE_DEG or distance_mm > BAD_DISTANCE_MM

Plan = Callable[[SimulatedCase], list[dict]]  # a simulated localizer -> the planner's plane entries


def cascade_plan(cascade) -> Plan:
    """The planes the node's cascade gives a simulated localizer (none where it judges it unusable)."""
    return lambda case: cascade.run(case.slices)["planes"]


class PlaneScores:
    """Errors of planned planes against the truth, gathered localizer by localizer: per
    plane key the angle (degrees) between planned and true normals and the distance (mm)
    from the true centre to the planned plane."""

    def __init__(self, records: list[dict] | None = None) -> None:
        self.records = records  # every measured plane, if given (to calibrate the confidence)
        self.angles = {key: [] for key in PLANE_KEYS}
        self.distances = {key: [] for key in PLANE_KEYS}
        self.by_tilt = {band: {key: [] for key in TILT_KEYS} for band in TILT_BANDS_DEG}
        self.by_protocol: dict[str, dict[str, list[tuple[float, float]]]] = {}
        self.unusable = {key: ([], []) for key in TILT_KEYS}  # angles, distances
        self.bad_flagged, self.good_flagged = [], []
        self.cases, self.refused, self.unusable_cases, self.unusable_planned, self.missing = 0, 0, 0, 0, 0

    def add(self, entries: list[dict], truth: np.ndarray, usable: bool, protocol: str = "") -> None:
        """One localizer's plane entries against its true planes (`orientation.plane_array`),
        made by the simulator's `protocol`."""
        if not usable:
            self.unusable_cases += 1
            self.unusable_planned += bool(entries)
        else:
            self.cases += 1
            self.refused += not entries
        if not entries:
            return
        found = {e["key"]: e for e in entries}
        acpc = truth[PLANE_KEYS.index("ACPC"), 1]
        tilt = float(np.degrees(np.arccos(min(1.0, abs(float(acpc[2]) / np.linalg.norm(acpc))))))
        band = next(b for b, (low, high) in TILT_BANDS_DEG.items() if low <= tilt < high)
        for k, key in enumerate(PLANE_KEYS):
            if key not in found:
                self.missing += int(usable)
                continue
            normal, centre = np.asarray(found[key]["normal"]), np.asarray(found[key]["centre"])
            angle = float(np.degrees(np.arccos(min(1.0, abs(float(normal @ truth[k, 1]))))))
            distance = abs(float((truth[k, 0] - centre) @ normal))
            if not usable:
                if key in TILT_KEYS:
                    self.unusable[key][0].append(angle)
                    self.unusable[key][1].append(distance)
                continue
            self.angles[key].append(angle)
            self.distances[key].append(distance)
            if key in TILT_KEYS:
                self.by_tilt[band][key].append(angle)
                self.by_protocol.setdefault(protocol, {k: [] for k in TILT_KEYS})[key].append(
                    (angle, distance))
            bad = is_bad_plane(angle, distance)
            (self.bad_flagged if bad else self.good_flagged).append(found[key]["status"] != "OK")
            if self.records is not None:
                self.records.append({"key": key, "angle_deg": angle, "distance_mm": distance,
                                     "confidence": found[key]["confidence"],
                                     "status": found[key]["status"]})

    def summary(self) -> dict:
        """Median / p95 / max per key over the usable localizers; how many the planner
        refused and how many planes it left out; the key planes' median angle by how far
        the head is tilted (the true ACPC against the scanner's axial plane: a network can
        learn to draw planes towards the scanner's axes) and their median angle and distance
        by protocol (thick three-plane slices against 3D scouts); the key planes on unusable
        localizers that were planned all the same, apart; and whether the status flags the
        bad planes (error above 3 degrees or 3 mm should not be OK)."""

        def stats(values: list[float]) -> list[float]:
            return [round(float(np.median(values)), 2), round(float(np.percentile(values, 95)), 2),
                    round(float(np.max(values)), 2)] if values else []

        bad, good = self.bad_flagged, self.good_flagged
        return {"cases": self.cases, "refused": self.refused, "planes_missing": self.missing,
                "angle_deg_median_p95_max": {key: stats(v) for key, v in self.angles.items()},
                "distance_mm_median_p95_max": {key: stats(v) for key, v in self.distances.items()},
                "angle_deg_median_by_tilt": {
                    band: {"cases": len(v["ACPC"]),
                           **{key: round(float(np.median(a)), 2) for key, a in v.items() if a}}
                    for band, v in self.by_tilt.items()},
                "angle_deg_distance_mm_median_by_protocol": {
                    protocol: {"cases": len(v["MSP"]),
                               **{key: [round(float(m), 2) for m in np.median(e, axis=0)]
                                  for key, e in v.items() if e}}
                    for protocol, v in sorted(self.by_protocol.items())},
                "unusable_planned": {
                    "cases": self.unusable_planned, "of": self.unusable_cases,
                    "angle_deg_median": {k: round(float(np.median(a)), 2)
                                         for k, (a, _) in self.unusable.items() if a},
                    "distance_mm_median": {k: round(float(np.median(d)), 2)
                                           for k, (_, d) in self.unusable.items() if d}},
                "bad_planes_not_ok": float(np.mean(bad)) if bad else 1.0,
                "bad_planes": len(bad),
                "good_planes_not_ok": float(np.mean(good)) if good else 0.0}


def evaluate_orientation(plan: Plan, seeds: range, head: str, unusable_fraction: float = 0.35,
                         records: list[dict] | None = None, progress: bool = True) -> dict:
    """Stage 3 as the node runs it: `plan` (e.g. `cascade_plan`) on simulated localizers of
    `head` (a share of them unusable), scored by `PlaneScores`."""
    scores = PlaneScores(records)
    for seed in tqdm(seeds, desc=f"planning ({head})", unit="localizer", disable=not progress):
        case = simulate_case(seed, heads=(head,), unusable_fraction=unusable_fraction,
                             resolution_mm=PLANNED_MM)
        if case.planes:  # not a phantom or an object
            scores.add(plan(case), plane_array(case.planes), case.usable, case.protocol.name)
    return scores.summary()


def evaluate_consistency(plan: Plan, head: str, individuals: range, poses: int = 8,
                         progress: bool = True) -> dict:
    """One head in `poses` poses (and protocols, contrasts): the planes `plan` finds,
    carried back into head coordinates, should coincide. Per plane key, the spread over
    poses of the normal (RMS angle to the mean normal, degrees) and of the position
    (standard deviation of the signed distance from the mean centre, mm), median over
    `individuals`."""
    angle_spread = {key: [] for key in PLANE_KEYS}
    distance_spread = {key: [] for key in PLANE_KEYS}
    for individual in tqdm(individuals, desc=f"consistency ({head})", unit="head",
                           disable=not progress):
        found: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {key: [] for key in PLANE_KEYS}
        for view in range(poses):
            case = simulate_case(individual * poses + view, anatomy_seed=individual * poses,
                                 kind="usable", heads=(head,), resolution_mm=PLANNED_MM)
            back = np.linalg.inv(case.pose)  # scanner -> head
            for entry in plan(case):
                found[entry["key"]].append((back[:3, :3] @ np.asarray(entry["normal"]),
                                            back[:3, :3] @ np.asarray(entry["centre"]) + back[:3, 3]))
        for key, planes in found.items():
            if len(planes) >= 2:
                angle, distance = plane_spread(planes)
                angle_spread[key].append(angle)
                distance_spread[key].append(distance)
    return {"head": head, "individuals": len(individuals), "poses": poses,
            "angle_sd_deg": {k: round(float(np.median(v)), 2) for k, v in angle_spread.items() if v},
            "distance_sd_mm": {k: round(float(np.median(v)), 2) for k, v in distance_spread.items() if v}}


def plane_spread(planes: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """Spread of one plane found several times, as (normal, centre) pairs in one frame:
    RMS angle (degrees) of the normals to their mean, and standard deviation (mm) of
    the signed distance of the mean centre to each plane."""
    normals = np.array([n for n, _ in planes], dtype=float)
    normals *= np.sign(normals @ normals[0])[:, None]  # a plane's normal may point either way
    centres = np.array([c for _, c in planes], dtype=float)
    mean = normals.mean(axis=0) / np.linalg.norm(normals.mean(axis=0))
    angles = np.degrees(np.arccos(np.clip(normals @ mean, -1, 1)))
    offsets = np.einsum("ij,ij->i", centres.mean(axis=0) - centres, normals)
    return float(np.sqrt(np.mean(angles**2))), float(np.std(offsets))
